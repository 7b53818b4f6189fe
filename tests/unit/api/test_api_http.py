"""The worker's HTTP app (``build_app``) over the seed state, through aiohttp's test client.

The worker is a real ``Worker`` that is never started: the API reads only its engine,
provenance and ``latest``, which the tests fill from the seed file as a worker would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from streams import query
from streams.agents.worker import Worker, WorkerOptions
from streams.api import openapi_document
from streams.metrics import Metrics
from streams.web import build_app

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"
LINES = SEED.read_bytes().splitlines()
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def seeded_worker(upto: int | None = None) -> Worker:
    state = query.load_lines(LINES[:upto])
    worker = Worker(WorkerOptions("127.0.0.1:9"))
    worker.ledger = state.ledger
    worker.ready.set()
    return worker


@pytest.fixture
async def client_for():
    """``client_for(worker, token=None)`` → a test client of the worker's whole web app."""
    clients = []

    async def make(worker: Worker, token: str | None = None) -> TestClient:
        app = build_app(worker, Metrics(CollectorRegistry()), api_token=token)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def test_every_v1_route_is_in_the_openapi_document_and_nothing_else():
    """The document is hand-written: this keeps it and the router in step."""
    app = build_app(seeded_worker(1), None)
    routes = set()
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if sub is None:
            continue
        for inner in sub.router.resources():  # canonical paths carry the /v1 prefix
            for route in inner:
                if route.method != "HEAD":
                    routes.add((inner.canonical, route.method.lower()))
    documented = {
        (path, method) for path, ops in openapi_document()["paths"].items() for method in ops
    }
    assert routes == documented
    assert len(routes) >= 10


async def test_conflicts_are_listed_most_severe_first_and_filtered(client_for):
    client = await client_for(seeded_worker(74))
    response = await client.get("/v1/conflicts")
    assert response.status == 200
    body = await response.json()
    assert body["ready"] and body["total"] == 4
    assert body["conflicts"][0]["dedup_key"] == "google|scale-ai|meta"
    assert body["conflicts"][0]["severity"] == "critical"
    high = await (await client.get("/v1/conflicts?severity=high&client=microsoft")).json()
    assert [c["dedup_key"] for c in high["conflicts"]] == ["microsoft|scale-ai|meta"]


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/v1/conflicts?severity=urgent", 400, "severity: one of"),
        ("/v1/conflicts?clinet=google", 400, "unknown parameter 'clinet'"),
        ("/v1/conflicts?client=", 400, "client: empty"),
        ("/v1/conflicts?limit=0", 400, "limit: a whole number"),
        ("/v1/conflicts?client=google&client=meta", 400, "given more than once"),
        ("/v1/conflicts?rival=nobody", 404, "unknown entity 'nobody'"),
        ("/v1/exposure/Google", 400, "is not an entity id"),
        ("/v1/exposure/nobody", 404, "unknown entity"),
        ("/v1/entities/nobody/owners", 404, "unknown entity"),
        ("/v1/explain?client=google&vendor=scale-ai", 400, "rival: required"),
        ("/v1/alternatives?client=google", 400, "category: required"),
        ("/v1/alternatives?client=google&category=catering", 404, "unknown category"),
        ("/v1/nothing-here", 404, "Not Found"),
    ],
)
async def test_bad_requests_get_a_4xx_with_a_one_line_reason(client_for, path, status, reason):
    client = await client_for(seeded_worker(74))
    response = await client.get(path)
    assert response.status == status
    body = await response.json()
    assert reason in body["error"] and "\n" not in body["error"]


async def test_explain_over_http_is_the_query_functions_answer(client_for):
    worker = seeded_worker(74)
    client = await client_for(worker)
    response = await client.get("/v1/explain?client=google&vendor=scale-ai&rival=meta")
    assert response.status == 200
    expected = query.explain(worker.engine, worker.provenance, "google", "scale-ai", "meta")
    assert await response.json() == json.loads(json.dumps(expected))


async def test_exposure_owners_holdings_and_alternatives_answer(client_for):
    client = await client_for(seeded_worker())
    exposure = await (await client.get("/v1/exposure/google")).json()
    assert [v["vendor"] for v in exposure["vendors"]] == ["labelbox", "scale-ai", "turing"]
    owners = await (await client.get("/v1/entities/scale-ai/owners")).json()
    assert [o["owner"] for o in owners["owners"]] == ["meta"]
    holdings = await (await client.get("/v1/entities/meta/holdings")).json()
    assert [h["asset"] for h in holdings["holdings"]] == ["scale-ai"]
    alt = await (await client.get("/v1/alternatives?client=google&category=data-labeling")).json()
    assert {v["vendor"] for v in alt["alternatives"]} == {"labelbox", "mercor", "turing"}


async def test_what_if_answers_from_a_copy_and_leaves_the_worker_as_it_was(client_for):
    """ "Meta takes 60 %": Microsoft's conflict would turn critical; the live one stays high."""
    worker = seeded_worker()
    client = await client_for(worker)
    before = worker.engine.snapshot()
    event = {
        "type": "ownership.stake",
        "data": {"owner": "meta", "asset": "scale-ai", "percent": 60, "status": "closed"},
    }
    for body in ([event], {"events": [event]}):
        response = await client.post("/v1/what-if", json=body)
        assert response.status == 200
        result = await response.json()
        changed = {c["dedup_key"]: c["after"]["severity"] for c in result["changed"]}
        assert changed["microsoft|scale-ai|meta"] == "critical"
    assert worker.engine.snapshot() == before
    assert worker.engine.open["microsoft|scale-ai|meta"].severity == "high"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"meta takes 60 %", "body: not JSON"),
        (b'{"event": []}', "body: expected a list"),
        (b'[{"type": "ownership.stake", "data": {"owner": "meta"}}]', "events[0]: schema"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", "at most 1000"),
    ],
)
async def test_what_if_refuses_bodies_that_are_not_events(client_for, body, reason):
    client = await client_for(seeded_worker())
    response = await client.post("/v1/what-if", data=body)
    assert response.status == 400
    assert reason in (await response.json())["error"]


async def test_what_if_bodies_over_one_mebibyte_are_refused(client_for):
    client = await client_for(seeded_worker())
    response = await client.post("/v1/what-if", data=b"[" + b" " * (1024 * 1024) + b"]")
    assert response.status == 413


async def test_with_a_token_v1_needs_the_bearer_header_and_probes_stay_open(client_for):
    client = await client_for(seeded_worker(74), token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await client.get("/v1/conflicts", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in await response.text()
    assert (await client.get("/v1/openapi.json")).status == 401
    assert (await client.post("/v1/what-if", json=[])).status == 401
    assert (await client.get("/v1/conflicts", headers=AUTH)).status == 200
    for open_path in ("/healthz", "/metrics", "/readyz", "/"):
        assert (await client.get(open_path)).status == 200, open_path


async def test_the_page_is_one_html_file_that_reads_v1(client_for):
    client = await client_for(seeded_worker(74))
    response = await client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assert "/v1/conflicts" in page and "/v1/stream" in page
    assert "google" not in page  # no data in the page itself: all of it comes from /v1


async def test_the_stream_says_hello_then_tells_each_resolution(client_for):
    """A resolved record the worker computes reaches the stream and the resolved list."""
    worker = seeded_worker(74)
    client = await client_for(worker)
    response = await client.get("/v1/stream")
    assert response.headers["Content-Type"] == "text/event-stream"
    retry = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    hello = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert retry.startswith(b"retry:") and hello.startswith(b"event: hello")
    assert b"2025-06-12T14:00:00Z" in hello
    fired = worker.latest.pop("google|scale-ai|meta")
    for listener in worker.listeners:  # as Worker._apply does for each record
        listener(dataclasses.replace(fired, status="resolved", event_id="seed-0075"))
    chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert chunk.startswith(b"event: alert")
    change = json.loads(chunk.split(b"data: ", 1)[1])
    assert change["dedup_key"] == "google|scale-ai|meta" and change["status"] == "resolved"
    response.close()
    resolved = await (await client.get("/v1/conflicts/resolved")).json()
    assert [r["dedup_key"] for r in resolved["resolved"]] == ["google|scale-ai|meta"]


def _cli(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "streams", *args], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_cli_twins_print_what_the_api_answers(client_for, tmp_path):
    """`stakewatch explain` / `whatif` over a file = GET /v1/explain / POST /v1/what-if."""
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(LINES[:74]) + b"\n")
    hypothesis = tmp_path / "meta-at-19.ndjson"
    stake = {
        "type": "ownership.stake",
        "data": {"owner": "meta", "asset": "scale-ai", "percent": 19, "status": "announced"},
    }
    hypothesis.write_text(json.dumps(stake) + "\n")
    client = await client_for(seeded_worker(74))
    api_explain = await (
        await client.get("/v1/explain?client=google&vendor=scale-ai&rival=meta")
    ).json()
    api_whatif = await (await client.post("/v1/what-if", json=[stake])).json()
    cli_explain = _cli(
        "explain", str(events), "--client", "google", "--vendor", "scale-ai", "--rival", "meta"
    )
    cli_whatif = _cli("whatif", str(events), str(hypothesis))
    assert cli_explain == api_explain
    assert cli_whatif == api_whatif
    assert {c["dedup_key"] for c in cli_whatif["changed"]} >= {"google|scale-ai|meta"}


def test_cli_explain_of_an_unknown_entity_exits_1_with_one_line():
    args = ["explain", str(SEED), "--client", "nobody", "--vendor", "scale-ai", "--rival", "meta"]
    proc = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and b"unknown entity 'nobody'" in proc.stderr
