"""``POST /v1/events`` at the HTTP boundary: media types, limits, all-or-nothing decoding,
duplicates, and write rights (the tokens file's `write`, and its clients for scoped writers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams import query
from streams.api import MAX_BODY, build_api
from streams.api.auth import Access
from streams.api.tokens import parse_tokens
from streams.kafka.archive import ArchivedRecord
from streams.kafka.topics import TopicNames

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"
LINES = SEED.read_bytes().splitlines()
TOKEN = "writer-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BATCH = {"Content-Type": "application/cloudevents-batch+json", **AUTH}


class MemorySink:
    def __init__(self) -> None:
        self.records: list[ArchivedRecord] = []

    async def publish(self, records: Sequence[ArchivedRecord]) -> None:
        self.records.extend(records)


def tokens_file(**tokens: tuple[str, bool]) -> Access:
    """Access from a tokens file: name -> (clients, write), each token its name."""
    import hashlib

    text = "".join(
        f'[[token]]\nsha256 = "{hashlib.sha256(name.encode()).hexdigest()}"\n'
        f"clients = [{clients}]\nwrite = {str(write).lower()}\n"
        for name, (clients, write) in tokens.items()
    )
    return Access.of(None, parse_tokens(text))


def bearer(token: str) -> dict[str, str]:
    return {
        "Content-Type": "application/cloudevents-batch+json",
        "Authorization": f"Bearer {token}",
    }


def deal(n: int, percent: float = 30) -> dict:
    return {
        "specversion": "1.0",
        "id": f"deal-{n}",
        "source": "/analyst",
        "type": "ownership.stake",
        "time": "2025-06-21T09:00:00Z",
        "data": {"owner": "meta", "asset": "labelbox", "percent": percent, "status": "announced"},
    }


@pytest.fixture
async def post():
    """``post(body, headers, access=None, token=TOKEN)`` → (status, json, sink)."""
    clients = []

    async def make(body, headers, *, access=None, token=TOKEN, upto=60):
        state = query.load_lines(LINES[:upto])
        sink = MemorySink()
        app = web.Application(client_max_size=MAX_BODY)
        events = (sink, TopicNames("p"))
        app.add_subapp("/v1", build_api(state, api_token=token, access=access, events=events))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        response = await client.post("/v1/events", data=data, headers=headers)
        return response.status, await response.json(), sink

    yield make
    for client in clients:
        await client.close()


async def test_a_batch_is_published_to_its_topics_with_event_time(post) -> None:
    status, body, sink = await post([deal(1), deal(2, 40)], BATCH)
    assert status == 202
    assert body == {"accepted": 2, "ids": ["deal-1", "deal-2"], "duplicates": []}
    assert [(r.topic, r.key) for r in sink.records] == [("p.ownership", b"labelbox")] * 2
    assert {r.timestamp_ms for r in sink.records} == {1750496400000}
    assert sink.records[0].headers == (("content-type", b"application/cloudevents+json"),)
    assert orjson.loads(sink.records[1].value) == deal(2, 40)


async def test_ndjson_and_a_single_structured_event(post) -> None:
    lines = orjson.dumps(deal(1)) + b"\n\n" + orjson.dumps(deal(2)) + b"\n"
    status, body, _ = await post(lines, {"Content-Type": "application/x-ndjson", **AUTH})
    assert (status, body["accepted"]) == (202, 2)
    one = {"Content-Type": "application/cloudevents+json", **AUTH}
    status, body, _ = await post(deal(3), one)
    assert (status, body["ids"]) == (202, ["deal-3"])


async def test_one_bad_event_publishes_nothing_and_names_each_bad_one(post) -> None:
    bad = deal(2, 140)
    worse = {**deal(3), "type": "merger.rumoured"}
    status, body, sink = await post([deal(1), bad, worse], BATCH)
    assert status == 400 and sink.records == []
    assert [(e["index"], e["code"]) for e in body["events"]] == [(1, "schema"), (2, "unknown_type")]
    assert body["error"].startswith("events[1]: schema: data.percent")
    assert "none published" in body["error"]


async def test_already_applied_and_repeated_events_are_duplicates_not_published(post) -> None:
    seed_event = orjson.loads(LINES[0])
    status, body, sink = await post([seed_event, deal(1), deal(1)], BATCH)
    assert status == 202
    assert body == {"accepted": 1, "ids": ["deal-1"], "duplicates": [seed_event["id"], "deal-1"]}
    assert len(sink.records) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        ([deal(1)], {"Content-Type": "application/json", **AUTH}, 415, "Content-Type"),
        (b"[{", BATCH, 400, "not JSON"),
        ({"events": []}, BATCH, 400, "JSON array"),
        ([], BATCH, 400, "no events"),
        ([deal(i) for i in range(1001)], BATCH, 413, "at most 1000 events"),
        (b"[" + b" " * (MAX_BODY + 10) + b"]", BATCH, 413, "over 1 MiB"),
    ],
)
async def test_bodies_that_are_not_events_or_too_many(post, body, headers, status, words) -> None:
    got, answer, sink = await post(body, headers)
    assert got == status and words in answer["error"] and sink.records == []


async def test_writing_needs_write_rights(post) -> None:
    """A token of the file with `write = false` reads but may not post; one with it may."""
    access = tokens_file(reader=('"*"', False), writer=('"*"', True))
    status, body, sink = await post([deal(1)], bearer("reader"), access=access)
    assert status == 403 and "write rights" in body["error"] and sink.records == []
    status, _, sink = await post([deal(1)], bearer("writer"), access=access)
    assert status == 202 and len(sink.records) == 1
    # no token configured at all: nobody may write
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    status, _, sink = await post([deal(1)], headers, token=None)
    assert status == 403 and sink.records == []
    # a token configured and not sent: 401 before anything else
    status, _, _ = await post([deal(1)], headers)
    assert status == 401


async def test_a_scoped_writer_posts_market_facts_and_its_own_clients_events_only(post) -> None:
    """OpenAI's writer may post a stake (a market fact) and OpenAI's spend; Google's spend
    or an amendment of Google's contract is refused as an unknown contract would be, and
    the whole post is refused with it (nothing published)."""
    access = tokens_file(openai=('"openai"', True))
    spend = {**deal(2), "type": "spend.recorded"}
    spend["data"] = {"client": "openai", "vendor": "scale-ai", "amount": 10.0}
    status, body, sink = await post([deal(1), spend], bearer("openai"), access=access)
    assert status == 202 and len(sink.records) == 2, body
    foreign = {**spend, "id": "s-3", "data": {**spend["data"], "client": "google"}}
    status, body, sink = await post([deal(4), foreign], bearer("openai"), access=access)
    assert status == 400 and sink.records == []
    assert body["events"] == [
        {"index": 1, "code": "scope", "reason": "scope: client 'google' is not one of this "
         "token's clients"}
    ]  # fmt: skip
    amend = {**deal(5), "type": "contract.amended"}
    for cid in ("c-google-scale-2024", "no-such-contract"):
        amend["data"] = {"contract_id": cid, "annual_value": 1.0}
        status, body, _ = await post([amend], bearer("openai"), access=access)
        assert status == 400
        assert body["events"][0]["reason"] == (
            f"scope: contract {cid!r} is not a contract of this token's clients"
        )


async def test_a_scoped_writer_gets_no_duplicate_oracle(post) -> None:
    """The (source, id) of an event another client's feed applied answers as a new one does
    for a scoped writer (published; the engine ignores the repeat), where a writer for every
    client is told it is a duplicate."""
    access = tokens_file(openai=('"openai"', True), everyone=('"*"', True))
    google_event = orjson.loads(LINES[25])  # Google's spend, applied
    repeat = {**deal(9), "id": google_event["id"], "source": google_event["source"]}
    fresh = {**deal(9), "id": "never-seen", "source": google_event["source"]}
    answers = []
    for event in (repeat, fresh):
        status, body, sink = await post([event], bearer("openai"), access=access)
        answers.append((status, body["accepted"], body["duplicates"], len(sink.records)))
    assert answers == [(202, 1, [], 1), (202, 1, [], 1)]
    status, body, sink = await post([repeat], bearer("everyone"), access=access)
    assert (status, body["duplicates"], sink.records) == (202, [google_event["id"]], [])
