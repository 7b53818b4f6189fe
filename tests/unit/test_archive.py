"""The embedded mode's event archive: exact bytes, torn writes, concurrent appenders."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import pytest

from streams.kafka.archive import Archive, ArchivedRecord, ReadStats, decode_line, encode_line
from streams.kafka.topics import TopicSpec

RECORDS = [
    ArchivedRecord("p.ownership", b"scale-ai", b'{"id":"e1"}', 1_704_067_200_000, (), 3),
    ArchivedRecord(
        "p.dead-letter",
        None,
        b"\xff\xfe not utf-8 \n with a newline",
        1_700_000_000_123,
        (("reason", b"invalid_json: x"), ("raw", b"\x00\x80")),
    ),
    ArchivedRecord("p.spend", b"\xc3\x28", b"", 0),  # binary key, empty value
]


def test_every_field_round_trips_byte_for_byte() -> None:
    for record in RECORDS:
        line = encode_line(record)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode_line(line) == record


def test_text_stays_readable_and_binary_is_base64() -> None:
    text, binary = encode_line(RECORDS[0]), encode_line(RECORDS[1])
    assert b'"value":"{\\"id\\":\\"e1\\"}"' in text
    assert b'"value":{"b64":' in binary and b'"key":null' in binary


def test_append_then_read_in_order(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "data")
    assert list(archive.read()) == []  # no file yet
    assert archive.append(RECORDS[:2]) == 2
    assert archive.append([]) == 0
    assert archive.append(RECORDS[2:]) == 1
    stats = ReadStats()
    assert list(archive.read(stats)) == RECORDS
    assert (stats.records, stats.skipped) == (3, 0)


def test_a_torn_last_line_is_skipped_with_a_warning_and_ended_by_the_next_append(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(tmp_path)
    archive.append(RECORDS[:1])
    with archive.path.open("ab") as f:  # a writer died mid-line
        f.write(encode_line(RECORDS[1])[:25])
    with caplog.at_level(logging.WARNING, logger="streams.kafka.archive"):
        stats = ReadStats()
        assert list(archive.read(stats)) == RECORDS[:1]
    assert stats.skipped_lines == [2]
    assert "line 2 skipped: torn last line" in caplog.text

    archive.append(RECORDS[2:])  # must not glue itself to the torn line
    stats = ReadStats()
    assert list(archive.read(stats)) == [RECORDS[0], RECORDS[2]]
    assert stats.skipped_lines == [2]


def test_a_complete_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    archive.path.write_bytes(encode_line(RECORDS[0]).rstrip(b"\n"))
    assert list(archive.read()) == RECORDS[:1]
    archive.append(RECORDS[1:2])
    assert list(archive.read()) == RECORDS[:2]


def test_corrupt_lines_anywhere_never_stop_the_read(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    good = encode_line(RECORDS[0])
    archive.path.write_bytes(
        good + b"{not json\n" + b'{"topic":"t","key":null,"value":{"b64":"!!"},"ts":1}\n'
        b'{"topic":"t","key":null,"value":"v","ts":"soon"}\n' + b"\n" + good
    )
    stats = ReadStats()
    assert list(archive.read(stats)) == [RECORDS[0], RECORDS[0]]
    assert stats.skipped_lines == [2, 3, 4]


def _append_many(path: str, writer: int) -> None:
    archive = Archive(path)
    for batch in range(50):
        archive.append(
            ArchivedRecord("t", f"{writer}".encode(), f"{writer}-{batch}-{i}".encode() * 40, i)
            for i in range(20)
        )


def test_two_processes_appending_at_once_interleave_whole_batches(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    stats = ReadStats()
    records = list(Archive(tmp_path).read(stats))
    assert stats.skipped == 0 and len(records) == 2 * 50 * 20
    for writer in (b"1", b"2"):  # each writer's records keep their order
        mine = [r.value for r in records if r.key == writer]
        assert mine == [
            f"{writer.decode()}-{b}-{i}".encode() * 40 for b in range(50) for i in range(20)
        ]


def test_topic_specs_are_remembered_and_merged_by_name(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    assert archive.topic_specs() == []
    archive.remember_topics([TopicSpec("a.spend", 3), TopicSpec("a.alerts", 1)])
    archive.remember_topics([TopicSpec("a.spend", 5, config={"retention.ms": "1000"})])
    specs = {s.name: s for s in archive.topic_specs()}
    assert specs["a.spend"].partitions == 5 and specs["a.alerts"].partitions == 1
    assert specs["a.spend"].config["retention.ms"] == "1000"


def test_an_unreadable_topics_file_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(tmp_path)
    archive.topics_path.write_text("{oops")
    with caplog.at_level(logging.WARNING, logger="streams.kafka.archive"):
        assert archive.topic_specs() == []
    assert "unreadable" in caplog.text
