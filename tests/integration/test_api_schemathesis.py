"""schemathesis against the live HTTP API: no server errors, answers match the document.

The app serves the seed state on a loopback port with a token; schemathesis reads
``/v1/openapi.json`` and sends generated valid and invalid requests (the document's
examples are the seed's ids, so it also reaches real answers, not only 404s).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp import web

from streams.api import MAX_BODY, build_api
from streams.kafka.broker import free_port
from streams.kafka.topics import TopicNames
from streams.query import load_lines
from tests.unit.api.test_api_events import MemorySink

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
TOKEN = "schemathesis-token"

# positive_data_acceptance is left out: whether a hypothetical event applies depends on the
# state (an unknown contract, a bad time), which no request schema can say
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,negative_data_rejection,ignored_auth,unsupported_method"
)


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(tmp_path):
    state = load_lines(SEED.read_bytes().splitlines()[:74])
    app = web.Application(client_max_size=MAX_BODY)
    sink = MemorySink()  # POST /v1/events publishes here: nothing reaches a broker
    app.add_subapp("/v1", build_api(state, api_token=TOKEN, events=(sink, TopicNames("st"))))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"http://127.0.0.1:{port}/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--exclude-path",
            "/v1/stream",  # an endless event stream (tested on its own)
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "7",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--report-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await runner.cleanup()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "passed" in text
