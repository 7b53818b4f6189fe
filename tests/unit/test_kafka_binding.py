"""Both CloudEvents content modes give the same event, through the official SDK's binding.

Records are made by the CloudEvents Python SDK (`cloudevents.v1.kafka`: `to_binary`,
`to_structured`), not by our own encoder, and read back through `structured` + the one
decoder: every seed event comes out as the event its line is. A bad binary record is
rejected with the code its structured twin gets, and what only binary mode can get wrong
(headers) is `schema`.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import from_binary, to_binary, to_structured

from streams.engine import Engine
from streams.events import Rejection, decode
from streams.events.fast import fast_decode, flatten
from streams.events.kafka_binding import (
    cloudevent_headers,
    structured,
)
from streams.events.kafka_binding import (
    to_binary as our_to_binary,
)

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "scale-ai-2025.ndjson"
LINES = [line for line in SEED.read_bytes().splitlines() if line.strip()]


def sdk_event(raw: bytes) -> CloudEvent:
    doc = orjson.loads(raw)
    data = doc.pop("data")
    return CloudEvent.create(doc, data)


def headers_of(message) -> list[tuple[str, bytes]]:
    return list(message.headers.items())


def flat(raw: bytes):
    event = decode(raw)
    assert not isinstance(event, Rejection), event
    return flatten(event)


@pytest.mark.parametrize("make", [to_binary, to_structured], ids=["binary", "structured"])
def test_every_seed_event_made_by_the_sdk_reads_as_its_line(make) -> None:
    for raw in LINES:
        message = make(sdk_event(raw))
        event = structured(message.value, headers_of(message))
        assert not isinstance(event, Rejection), (raw, event)
        assert flat(event) == flat(raw)


def test_binary_events_take_the_fast_path() -> None:
    """A binary record becomes bytes the fast path accepts (the hot path stays fast)."""
    for raw in LINES:
        message = to_binary(sdk_event(raw))
        event = structured(message.value, headers_of(message))
        assert fast_decode(event) == flat(raw)


def test_records_without_ce_specversion_are_structured_as_they_are() -> None:
    value = LINES[0]
    headers = [("content-type", b"application/cloudevents+json"), ("ce_id", b"x")]
    assert structured(value, headers) is value


def test_our_binary_records_read_back_with_the_sdk() -> None:
    """`replay --mode binary`'s records are what the SDK's `from_binary` understands."""
    for raw in LINES:
        headers, value = our_to_binary(raw)
        event = from_binary(_message(headers, value))
        doc = orjson.loads(raw)
        assert event["id"] == doc["id"] and event["type"] == doc["type"]
        assert event.data == doc["data"]
        assert flat(structured(value, headers)) == flat(raw)


def _message(headers, value):
    from cloudevents.v1.kafka import KafkaMessage

    return KafkaMessage(dict(headers), None, value)


def _binary(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """A structured event (possibly broken) in binary mode, attribute by attribute."""
    doc = orjson.loads(raw)
    data = doc.pop("data", None)
    doc.pop("datacontenttype", None)
    headers = [("content-type", b"application/json")]
    headers += [(f"ce_{k}", str(v).encode()) for k, v in doc.items()]
    return headers, orjson.dumps(data)


GOOD = orjson.loads(LINES[-1])


def _with(**changes) -> bytes:
    doc = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


@pytest.mark.parametrize(
    "raw",
    [
        _with(type="merger.rumoured"),
        _with(time="yesterday"),
        _with(specversion="0.3"),
        _with(id=None),
        _with(data={**GOOD["data"], "percent": 101}),
        _with(data={"owner": "meta", "asset": "meta", "percent": 5}),
        _with(data=[1, 2]),
    ],
    ids=["unknown type", "bad time", "specversion", "no id", "percent", "same party", "list"],
)
def test_a_bad_binary_record_gets_its_structured_twins_code(raw: bytes) -> None:
    twin = decode(raw)
    assert isinstance(twin, Rejection)
    event = structured(*reversed(_binary(raw)))
    got = event if isinstance(event, Rejection) else decode(event)
    assert isinstance(got, Rejection)
    assert got.code == twin.code


def test_a_value_that_is_not_json_is_invalid_json() -> None:
    headers, _ = _binary(LINES[-1])
    got = decode(structured(b"{not json", headers))
    assert isinstance(got, Rejection) and got.code == "invalid_json"


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ([("ce_id", b"again")], "given twice"),
        ([("ce_source", b"\xff\xfe")], "not UTF-8"),
        ([("ce_data", b"{}")], "ce_data cannot be a header"),
        ([("content-type", b"application/json")], "content-type given twice"),
    ],
)
def test_what_only_binary_can_get_wrong_is_schema(extra, detail) -> None:
    headers, value = _binary(LINES[-1])
    got = structured(value, headers + extra)
    assert isinstance(got, Rejection) and got.code == "schema" and detail in got.detail


def test_data_must_be_json_by_its_content_type() -> None:
    headers, value = _binary(LINES[-1])
    headers[0] = ("content-type", b"text/plain")
    got = structured(value, headers)
    assert isinstance(got, Rejection) and got.code == "schema" and "text/plain" in got.detail
    headers[0] = ("Content-Type", b"application/cloudevents+json; charset=utf-8")
    assert not isinstance(decode(structured(value, headers)), Rejection)


def test_a_binary_record_over_the_limit_is_too_large() -> None:
    headers, _ = _binary(LINES[-1])
    value = orjson.dumps({"owner": "meta", "asset": "scale-ai", "percent": 5, "x": "y" * 70_000})
    got = structured(value, headers)
    assert isinstance(got, Rejection) and got.code == "too_large"


def test_the_seed_case_through_binary_records_fires_the_same_alerts() -> None:
    one, two = Engine(), Engine()
    for raw in LINES:
        message = to_binary(sdk_event(raw))
        got = one.process(structured(message.value, headers_of(message)))
        want = two.process(raw)
        assert [r.to_dict() for r in got.records] == [r.to_dict() for r in want.records]
    assert one.open.keys() == two.open.keys() != set()


def test_alert_attributes_read_with_the_sdk() -> None:
    headers = cloudevent_headers(
        "firing", "/stakewatch/p", "t/0/5/a|b|c", "2025-06-12T14:00:00Z", "a|b|c"
    )
    value = orjson.dumps({"dedup_key": "a|b|c", "status": "firing"})
    event = from_binary(_message(headers, value))
    assert event["type"] == "io.stakewatch.alert.firing"
    assert event["source"] == "/stakewatch/p" and event["id"] == "t/0/5/a|b|c"
    assert event["subject"] == "a|b|c" and event["datacontenttype"] == "application/json"
    assert event.data == {"dedup_key": "a|b|c", "status": "firing"}
