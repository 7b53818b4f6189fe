"""`entity.registered` identifiers (SPEC v2 §1): schema, replacement, clashes — the engine,
the reference evaluation and `GET /v1/entities/{id}` agree."""

from __future__ import annotations

import itertools

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.agents.worker import Worker, WorkerOptions
from streams.engine import Engine
from streams.events import Rejection, decode
from streams.events.fast import fast_decode, flatten
from streams.web import build_app
from tests.reference import Reference

_ids = itertools.count()
LEI = {"scheme": "XI-LEI", "id": "5493001KJTIIGC8Y1R12"}
COH = {"scheme": "GB-COH", "id": "10000001"}


def register(entity: str, name: str, *identifiers: dict, **extra) -> bytes:
    data = {"id": entity, "name": name, **extra}
    if identifiers:
        data["identifiers"] = list(identifiers)
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"r-{next(_ids)}",
            "source": "/registry",
            "type": "entity.registered",
            "time": "2025-01-01T00:00:00Z",
            "data": data,
        }
    )


class Both:
    """The engine and the reference, fed the same lines: their codes must agree."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.ref = Reference()

    def feed(self, raw: bytes) -> str | None:
        got = self.engine.process(raw).rejection
        want = self.ref.feed(raw)[1]
        assert (got.code if got else None) == want, (raw, got, want)
        return want


def test_identifiers_are_kept_with_the_registration() -> None:
    both = Both()
    assert both.feed(register("scale-ai", "Scale AI", LEI, COH, LEI)) is None
    assert both.engine.identifiers["scale-ai"] == (
        ("XI-LEI", LEI["id"]),
        ("GB-COH", COH["id"]),
    )  # the repeated LEI folded
    assert both.engine.identified[("GB-COH", "10000001")] == "scale-ai"


def test_one_identifier_naming_two_ids_is_bad_input_and_changes_nothing() -> None:
    both = Both()
    both.feed(register("scale-ai", "Scale AI", LEI))
    raw = register("scale", "Scale", COH, LEI)
    assert both.feed(raw) == "identifier_clash"
    outcome = Engine.process(both.engine, raw)  # not applied: the same (source, id) again
    assert outcome.rejection and outcome.rejection.code == "identifier_clash"
    assert "scale" not in both.engine.entities
    assert ("GB-COH", COH["id"]) not in both.engine.identified
    assert "already names 'scale-ai'" in outcome.rejection.detail


def test_registering_again_replaces_name_aliases_and_identifiers() -> None:
    both = Both()
    both.feed(register("scale-ai", "Scale AI", LEI, aliases=["Scale"]))
    both.feed(register("scale-ai", "Scale AI, Inc.", COH))
    assert both.engine.entities["scale-ai"] == ("Scale AI, Inc.",)
    assert both.engine.identifiers["scale-ai"] == (("GB-COH", COH["id"]),)
    # the LEI is free again: another entity may now carry it
    assert both.feed(register("scale-holdings", "Scale Holdings", LEI)) is None
    both.feed(register("scale-ai", "Scale AI"))
    assert "scale-ai" not in both.engine.identifiers


@pytest.mark.parametrize(
    "identifier",
    [
        {"scheme": "lei", "id": "x"},
        {"scheme": "XILEI", "id": "x"},
        {"scheme": "XI-LEI", "id": ""},
        {"scheme": "XI-LEI", "id": "a\nb"},
        {"scheme": "XI-LEI"},
        {"scheme": "XI-LEI", "id": "x", "name": "LEI"},
        {"scheme": "XI-LEI", "id": 5},
    ],
)
def test_a_bad_identifier_is_a_schema_rejection(identifier: dict) -> None:
    both = Both()
    raw = register("scale-ai", "Scale AI", identifier)
    assert both.feed(raw) == "schema"
    got = decode(raw)
    assert isinstance(got, Rejection) and "identifiers" in got.detail


def test_the_fast_path_leaves_identifiers_to_the_models() -> None:
    raw = register("scale-ai", "Scale AI", LEI)
    assert fast_decode(raw) is None
    event = decode(raw)
    assert not isinstance(event, Rejection)
    assert flatten(event)[4] == ("scale-ai", "Scale AI", (), (("XI-LEI", LEI["id"]),))
    plain = register("scale-ai", "Scale AI")
    assert fast_decode(plain) == flatten(decode(plain))


def test_identifiers_survive_a_snapshot() -> None:
    engine = Engine()
    engine.process(register("scale-ai", "Scale AI", LEI))
    restored = Engine.restore(engine.snapshot())
    assert restored.identified == engine.identified
    assert restored.process(register("other", "Other", LEI)).rejection.code == "identifier_clash"


async def test_get_entity_shows_name_aliases_and_identifiers() -> None:
    worker = Worker(WorkerOptions("127.0.0.1:9"))
    worker.engine.process(register("scale-ai", "Scale AI", LEI, aliases=["Scale"]))
    worker.engine.process(
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": "s-1",
                "source": "/feed",
                "type": "ownership.stake",
                "time": "2025-01-02T00:00:00Z",
                "data": {"owner": "meta", "asset": "scale-ai", "percent": 49},
            }
        )
    )
    client = TestClient(TestServer(build_app(worker, None)))
    await client.start_server()
    try:
        got = await (await client.get("/v1/entities/scale-ai")).json()
        assert got == {
            "entity": "scale-ai",
            "watermark": "2025-01-02T00:00:00Z",
            "registered": True,
            "name": "Scale AI",
            "aliases": ["Scale"],
            "identifiers": [LEI],
        }
        meta = await (await client.get("/v1/entities/meta")).json()
        assert (meta["registered"], meta["name"], meta["identifiers"]) == (False, None, [])
        missing = await client.get("/v1/entities/nobody")
        assert missing.status == 404
        bad = await client.get("/v1/entities/Scale%20AI")
        assert bad.status == 400
    finally:
        await client.close()
