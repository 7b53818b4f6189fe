"""The pure parts of `stakewatch replay`: line splitting across reads, event-time stamps."""

from __future__ import annotations

import datetime as dt
import io

from streams.kafka.replay import event_time_ms, read_blocks


async def _collect(data: bytes, block: int) -> tuple[list[tuple[int, bytes]], int]:
    lines: list[tuple[int, bytes]] = []
    consumed = 0
    async for first, chunk, n in read_blocks(io.BytesIO(data), block=block):
        lines += list(enumerate(chunk, start=first))
        consumed += n
    return lines, consumed


async def test_lines_are_numbered_and_joined_across_reads_of_any_size() -> None:
    data = b'{"a":1}\r\n\n{"b":"' + b"x" * 50 + b'"}\nlast line without newline'
    expected = [
        (1, b'{"a":1}'),
        (2, b""),
        (3, b'{"b":"' + b"x" * 50 + b'"}'),
        (4, b"last line without newline"),
    ]
    for block in (1, 3, 7, 64, 1 << 20):
        assert await _collect(data, block) == (expected, len(data))


async def test_a_trailing_newline_adds_no_empty_line() -> None:
    assert await _collect(b"a\nb\n", 2) == ([(1, b"a"), (2, b"b")], 4)
    assert await _collect(b"", 8) == ([], 0)


def test_event_time_is_exact_epoch_milliseconds() -> None:
    utc = dt.UTC
    assert event_time_ms(dt.datetime(2024, 1, 1, tzinfo=utc)) == 1_704_067_200_000
    # floats would round 0.999 ms away; the floor keeps sub-millisecond parts out
    when = dt.datetime(2025, 6, 13, 9, 30, 0, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert event_time_ms(when) == 1_749_799_800_999
