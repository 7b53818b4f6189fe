"""The /v1 API of a worker fed through the real (embedded) broker.

Answers come from the worker's live engine; a what-if never reaches it (no state change, no
alert record on the topic); the token guards /v1 in a ``stakewatch worker`` process too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import pytest

from streams.kafka.topics import TopicNames
from tests.integration.webapp import serving
from tests.integration.workers import (
    WorkerProcess,
    alert_docs,
    publish,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
GOOGLE = "google|scale-ai|meta"


def seed_lines() -> list[bytes]:
    return [line for line in SEED.read_bytes().splitlines() if line.strip()]


async def test_api_answers_from_the_live_worker_and_what_if_leaves_it_alone(broker):
    lines = seed_lines()
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    names = TopicNames(f"api{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        await publish(broker.bootstrap, names, lines[: stake + 1])

        async def google_open():
            body = (await http.get("/v1/conflicts", params={"client": "google"})).json()
            return body if body.get("conflicts") else None

        listed = await wait_for(google_open, 20, "google conflict over HTTP")
        [conflict] = listed["conflicts"]
        assert conflict["dedup_key"] == GOOGLE and conflict["severity"] == "critical"
        assert conflict["event_id"] == "seed-0074"
        await wait_for(worker.ready.is_set, 20, "worker caught up")
        assert (await http.get("/v1/conflicts")).json()["ready"]

        why = (
            await http.get(
                "/v1/explain", params={"client": "google", "vendor": "scale-ai", "rival": "meta"}
            )
        ).json()
        assert why["rules"]["matched"]["clause"] == "stake>=25 & sensitive"
        assert why["stake"]["paths"][0]["holdings"][0]["evidence"]["id"] == "seed-0074"

        await wait_for(lambda: len(worker.latest) == 4, 10, "all four conflicts applied")
        alerts_before = await alert_docs(broker.bootstrap, names)
        state_before = worker.engine.snapshot()
        terminate = {"type": "contract.terminated", "data": {"contract_id": "c-google-scale-2024"}}
        result = (await http.post("/v1/what-if", json=[terminate])).json()
        assert [c["dedup_key"] for c in result["closed"]] == [GOOGLE]
        assert worker.engine.snapshot() == state_before
        assert GOOGLE in worker.engine.open
        assert await alert_docs(broker.bootstrap, names) == alerts_before

        await publish(broker.bootstrap, names, lines[stake + 1 :])

        async def google_resolved():
            body = (await http.get("/v1/conflicts/resolved")).json()
            return [r for r in body["resolved"] if r["dedup_key"] == GOOGLE]

        [gone] = await wait_for(google_resolved, 20, "google resolved over HTTP")
        assert gone["status"] == "resolved"
        still = (await http.get("/v1/conflicts")).json()
        assert GOOGLE not in {c["dedup_key"] for c in still["conflicts"]}
        alternatives = (
            await http.get(
                "/v1/alternatives", params={"client": "google", "category": "data-labeling"}
            )
        ).json()
        assert {v["vendor"] for v in alternatives["alternatives"]} == {
            "labelbox",
            "mercor",
            "turing",
        }


async def test_worker_process_guards_v1_with_the_token_and_keeps_probes_open(broker, tmp_path):
    """`stakewatch worker` with STAKEWATCH_API_TOKEN: 401 without it, answers with it."""
    token = uuid.uuid4().hex
    prefix = f"tok{uuid.uuid4().hex[:8]}"
    proc = WorkerProcess(
        broker.bootstrap, prefix, tmp_path / "worker.log", env={"STAKEWATCH_API_TOKEN": token}
    )
    try:
        await wait_for(proc.status, 30, "worker web port")
        base = f"http://127.0.0.1:{proc.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/v1/conflicts")).status_code == 401
            wrong = await http.get("/v1/conflicts", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and token not in wrong.text
            good = await http.get("/v1/conflicts", headers={"Authorization": f"Bearer {token}"})
            assert good.status_code == 200 and good.json()["conflicts"] == []
            for path in ("/healthz", "/metrics", "/"):
                assert (await http.get(path)).status_code == 200, path
    finally:
        proc.terminate()
    assert token not in (tmp_path / "worker.log").read_text()


async def test_worker_process_serves_scoped_tokens_from_the_file_and_refuses_an_open_port(
    broker, tmp_path
):
    """`stakewatch worker` with STAKEWATCH_API_TOKENS: a scoped token sees its client's
    conflict only; and the same worker on 0.0.0.0 without any token does not start."""
    import hashlib
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams", "worker", "--web-port", "0"],
        env={**env, "STAKEWATCH_WEB_HOST": "0.0.0.0", "STAKEWATCH_BROKER": "kafka://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("STAKEWATCH_WEB_HOST: '0.0.0.0'")  # the setting first

    token = uuid.uuid4().hex
    tokens = tmp_path / "tokens.toml"
    digest = hashlib.sha256(token.encode()).hexdigest()
    tokens.write_text(f'[[token]]\nsha256 = "{digest}"\nclients = ["xai"]\n')
    prefix = f"scoped{uuid.uuid4().hex[:8]}"
    proc = WorkerProcess(
        broker.bootstrap,
        prefix,
        tmp_path / "worker.log",
        env={"STAKEWATCH_API_TOKENS": str(tokens)},
    )
    lines = seed_lines()
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    try:
        await wait_for(proc.status, 30, "worker web port")
        await publish(broker.bootstrap, TopicNames(prefix), lines[: stake + 1])
        base = f"http://127.0.0.1:{proc.port}"
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/v1/conflicts")).status_code == 401

            async def listed():
                body = (await http.get("/v1/conflicts", headers=auth)).json()
                return body["conflicts"] if body["ready"] and body["conflicts"] else None

            conflicts = await wait_for(listed, 30, "xai's conflict")
            assert [c["dedup_key"] for c in conflicts] == ["xai|scale-ai|meta"]
            google = await http.get("/v1/exposure/google", headers=auth)
            nobody = await http.get("/v1/exposure/nobody", headers=auth)
            assert google.status_code == nobody.status_code == 404
    finally:
        proc.terminate()
    assert token not in (tmp_path / "worker.log").read_text()
    assert digest not in (tmp_path / "worker.log").read_text()
