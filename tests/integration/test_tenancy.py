"""Two tenants, one worker fed through the real broker: every endpoint, walked from the
OpenAPI document, shows each scoped token only its own world.

For every path and method in ``/v1/openapi.json`` (so a new endpoint cannot be forgotten:
one whose parameters or body the tables below do not cover fails the test), each tenant's
token asks with its own ids, then with the other tenant's id and with an id nobody named in
each tenant-bound parameter. Answers to its own ids must be 200, hold none of the other
tenant's secrets (ids, contract ids, private vendor/category/rival, figures, sources) and
equal what an all-seeing API says of a world where the other tenant never was (so counts
and sums cannot leak either); an
answer to the other tenant's id must be byte-for-byte the answer to an unknown id (with the
id itself replaced), so it does not even say that the other tenant exists. Event streams
are read while a market event changes both tenants' conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from streams import query
from streams.api import build_api
from streams.api.auth import Access
from streams.api.tokens import parse_tokens
from streams.kafka.broker import free_port
from streams.kafka.topics import TopicNames
from tests.integration.webapp import serving
from tests.integration.workers import publish, running_worker, wait_for
from tests.tenants import (
    OTHER,
    PRIVATE,
    SHARED_CATEGORY,
    SHARED_RIVAL,
    SHARED_VENDOR,
    TENANTS,
    secrets,
    world,
)

pytestmark = pytest.mark.integration

TOKENS = {tenant: f"{tenant}-{uuid.uuid4().hex}" for tenant in TENANTS}
UNKNOWN = "nobody-knows"


def access() -> Access:
    entries = "".join(
        f'[[token]]\nsha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
        f'clients = ["{tenant}"]\nwrite = true\n'  # posting is walked too
        for tenant, token in TOKENS.items()
    )
    return Access.of(None, parse_tokens(entries))


# -- what each parameter is filled with: own value, other tenant's value (None: not bound to
#    a tenant, a plain filter such as severity)


def own(tenant: str, name: str) -> str:
    return {
        "client": tenant,
        "vendor": SHARED_VENDOR,
        "rival": SHARED_RIVAL,
        "id": SHARED_VENDOR,
        "category": SHARED_CATEGORY,
        "severity": "high",
        "limit": "50",
    }[name]


def foreign(tenant: str, name: str) -> str | None:
    other = OTHER[tenant]
    return {
        "client": other,
        "vendor": PRIVATE[other]["vendor"],
        "rival": PRIVATE[other]["rival"],
        "id": PRIVATE[other]["vendor"],
        "category": PRIVATE[other]["category"],
        "severity": None,
        "limit": None,
    }[name]


def whatif_bodies(tenant: str) -> tuple[list[Any], list[Any]]:
    """(bodies with its own ids, templates whose ``{X}`` takes the other tenant / unknown)."""
    stake = {"owner": SHARED_RIVAL, "asset": SHARED_VENDOR, "percent": 60, "status": "closed"}
    mine = [
        [{"type": "ownership.stake", "data": stake}],
        [{"type": "contract.terminated", "data": {"contract_id": f"c-{tenant}-1"}}],
    ]
    spend = {"client": tenant, "vendor": SHARED_VENDOR, "amount": 5, "contract_id": "c-{X}-1"}
    templates = [
        [{"type": "contract.terminated", "data": {"contract_id": "c-{X}-1"}}],
        [{"type": "contract.amended", "data": {"contract_id": "c-{X}-2", "annual_value": 9}}],
        [{"type": "spend.recorded", "data": spend}],
        [{"type": "spend.recorded", "data": {"client": "{X}", "vendor": "v", "amount": 5}}],
        [  # the other tenant's contract id, under a name that sorts like an unknown one
            {
                "type": "contract.signed",
                "data": {
                    "contract_id": "zz-{X}",
                    "client": tenant,
                    "vendor": SHARED_VENDOR,
                    "category": "x",
                    "data_classes": [],
                },
            }
        ],
        [  # the id and source of one of the other tenant's real events: no duplicate oracle
            {
                "id": "{X}-ev-01",
                "source": "/feeds/{X}",
                "type": "rivalry.declared",
                "data": {"a": tenant, "b": SHARED_RIVAL},
            }
        ],
    ]
    return mine, templates


def events_bodies(tenant: str) -> tuple[list[Any], list[Any]]:
    """POST /v1/events by a scoped writer: nothing of its own is posted (it would change
    the world the walk reads); the other tenant's contracts and client answer as unknown
    ones do (all or nothing: a refused post publishes nothing)."""
    env = {"specversion": "1.0", "source": "/walk", "time": "2025-03-01T00:00:00Z"}
    signed = {
        "contract_id": "c-walk",
        "client": "{X}",
        "vendor": SHARED_VENDOR,
        "category": "x",
        "data_classes": [],
    }
    amended = {"contract_id": "c-{X}-2", "annual_value": 9}
    spend = {"client": "{X}", "vendor": SHARED_VENDOR, "amount": 5}
    templates = [
        [{**env, "id": "w-1", "type": "contract.amended", "data": amended}],
        [{**env, "id": "w-2", "type": "contract.terminated", "data": {"contract_id": "c-{X}-1"}}],
        [{**env, "id": "w-3", "type": "spend.recorded", "data": spend}],
        [{**env, "id": "w-4", "type": "contract.signed", "data": signed}],
    ]
    return [], templates


BODIES = {("/v1/what-if", "post"): whatif_bodies, ("/v1/events", "post"): events_bodies}


def fill(template: Any, value: str) -> Any:
    return orjson.loads(orjson.dumps(template).decode().replace("{X}", value))


def leaks(tenant: str, text: str) -> list[str]:
    return [s for s in secrets(OTHER[tenant]) if s in text]


PROCESS_LOCAL = {"/v1/conflicts/resolved"}  # what this worker saw happen: no offline twin


class Walk:
    def __init__(self, http: httpx.AsyncClient, alone: dict[str, httpx.AsyncClient]) -> None:
        self.http = http
        self.alone = alone  # per tenant: the API over a world without the other tenant
        self.asked = 0

    async def same_as_alone(self, where, tenant, method, path, params, body, answer) -> None:
        if path in PROCESS_LOCAL:
            return
        url = path
        for name in list(params):
            url = (
                url.replace("{" + name + "}", params.pop(name)) if "{" + name + "}" in url else url
            )
        alone = await self.alone[tenant].request(method.upper(), url, params=params, json=body)
        expected, got = alone.json(), answer.json()
        got.pop("ready", None), expected.pop("ready", None)
        assert got == expected, (where, params, body)

    async def ask(self, tenant: str, method: str, path: str, params: dict, body: Any = None):
        url = path
        for name in list(params):
            if "{" + name + "}" in url:
                url = url.replace("{" + name + "}", params.pop(name))
        headers = {"Authorization": f"Bearer {TOKENS[tenant]}"}
        if path == "/v1/events":
            headers["Content-Type"] = "application/cloudevents-batch+json"
        response = await self.http.request(
            method.upper(), url, params=params, json=body, headers=headers
        )
        self.asked += 1
        return response

    async def operation(self, tenant: str, path: str, method: str, op: dict) -> None:
        where = f"{method.upper()} {path} as {tenant}"
        params = op.get("parameters", [])
        for p in params:
            try:
                own(tenant, p["name"]), foreign(tenant, p["name"])
            except KeyError:
                raise AssertionError(
                    f"{where}: parameter {p['name']!r} is not in this test's "
                    "tables (own / foreign): add it"
                ) from None
        required = {p["name"]: own(tenant, p["name"]) for p in params if p["required"]}
        optional = [p["name"] for p in params if not p["required"]]
        if "requestBody" in op:
            assert (path, method) in BODIES, f"{where}: a body this test does not know: add it"
            mine, templates = BODIES[(path, method)](tenant)
            for body in mine:
                r = await self.ask(tenant, method, path, dict(required), body)
                assert r.status_code == 200, (where, body, r.text)
                assert not leaks(tenant, r.text), (where, body, leaks(tenant, r.text))
                await self.same_as_alone(where, tenant, method, path, dict(required), body, r)
            for template in templates:
                other = await self.ask(
                    tenant, method, path, dict(required), fill(template, OTHER[tenant])
                )
                unknown = await self.ask(
                    tenant, method, path, dict(required), fill(template, UNKNOWN)
                )
                self.same(where, other, unknown, OTHER[tenant], tenant)
            return
        requests = [dict(required)] + [{**required, name: own(tenant, name)} for name in optional]
        for asked in requests:
            r = await self.ask(tenant, method, path, dict(asked))
            assert r.status_code == 200, (where, asked, r.text)
            assert not leaks(tenant, r.text), (where, asked, leaks(tenant, r.text))
            await self.same_as_alone(where, tenant, method, path, dict(asked), None, r)
        for p in params:
            value = foreign(tenant, p["name"])
            if value is None:
                continue
            other = await self.ask(tenant, method, path, {**required, p["name"]: value})
            unknown = await self.ask(tenant, method, path, {**required, p["name"]: UNKNOWN})
            self.same(f"{where} ?{p['name']}=", other, unknown, value, tenant)

    @staticmethod
    def same(where: str, other, unknown, value: str, tenant: str) -> None:
        assert other.status_code == unknown.status_code, (where, other.text, unknown.text)
        shown = other.text.replace(value, "<ID>")
        assert shown == unknown.text.replace(UNKNOWN, "<ID>"), (where, other.text, unknown.text)
        assert not leaks(tenant, shown), (where, shown)


@contextlib.asynccontextmanager
async def alone_apis(lines: list[bytes]):
    """Per tenant, an all-seeing API over the events without the other tenant's."""
    runners, clients = [], {}
    try:
        for tenant in TENANTS:
            kept = [line for line in lines if f"/feeds/{OTHER[tenant]}".encode() not in line]
            app = web.Application()
            app.add_subapp("/v1", build_api(query.load_lines(kept)))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            clients[tenant] = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20)
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        for runner in runners:
            await runner.cleanup()


async def read_stream(http: httpx.AsyncClient, tenant: str, seen: dict, started: asyncio.Event):
    headers = {"Authorization": f"Bearer {TOKENS[tenant]}"}
    async with http.stream("GET", "/v1/stream", headers=headers) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_text():
            seen[tenant] += chunk
            if "event: hello" in seen[tenant]:
                started.set()
            if f'"dedup_key":"{tenant}|datafarm|bigco"' in seen[tenant]:
                return


async def test_every_endpoint_shows_each_tenant_only_its_own_world(broker):
    lines, last = world()
    names = TopicNames(f"ten{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker, access=access()) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as http,
        alone_apis(lines + last) as alone,
    ):
        await publish(broker.bootstrap, names, lines)
        await wait_for(lambda: len(worker.latest) == 4, 30, "both tenants' conflicts open")
        await publish(broker.bootstrap, names, last)  # one conflict of each resolves, live
        await wait_for(lambda: len(worker.latest) == 2, 30, "one conflict of each resolved")
        await wait_for(worker.ready.is_set, 30, "worker caught up")
        assert (await http.get("/v1/openapi.json")).status_code == 401
        doc = (
            await http.get(
                "/v1/openapi.json", headers={"Authorization": f"Bearer {TOKENS['acme']}"}
            )
        ).json()

        walk = Walk(http, alone)
        streams = []
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                answers = (op["responses"].get("200") or op["responses"]["202"])["content"]
                if "text/event-stream" in answers:
                    streams.append(path)
                    continue
                for tenant in TENANTS:
                    await walk.operation(tenant, path, method, op)
        assert streams == ["/v1/stream"] and walk.asked >= 100

        # each tenant's own world is there (the walk above would pass on empty answers too)
        for tenant in TENANTS:
            auth = {"Authorization": f"Bearer {TOKENS[tenant]}"}
            listed = (await http.get("/v1/conflicts", headers=auth)).json()
            assert [c["dedup_key"] for c in listed["conflicts"]] == [f"{tenant}|datafarm|bigco"]
            assert listed["conflicts"][0]["spend_365d"] == PRIVATE[tenant]["spend"]
            resolved = (await http.get("/v1/conflicts/resolved", headers=auth)).json()
            assert [r["dedup_key"] for r in resolved["resolved"]] == [f"{tenant}|oldvendor|bigco"]
            exposure = (await http.get(f"/v1/exposure/{tenant}", headers=auth)).json()
            assert {v["vendor"] for v in exposure["vendors"]} == {
                "datafarm",
                "oldvendor",
                PRIVATE[tenant]["vendor"],
            }

        # the stream: BigCo going down to 20 % turns both tenants' conflicts from critical to
        # high (an alert for each); each stream carries only its own tenant's
        seen = dict.fromkeys(TENANTS, "")
        started = {tenant: asyncio.Event() for tenant in TENANTS}
        readers = [
            asyncio.create_task(read_stream(http, tenant, seen, started[tenant]))
            for tenant in TENANTS
        ]
        for event in started.values():
            await asyncio.wait_for(event.wait(), 20)
        control = b'{"specversion":"1.0","id":"mkt-20","source":"/feeds/public",'
        control += b'"type":"ownership.stake","time":"2025-03-10T00:00:00Z","data":'
        control += b'{"owner":"bigco","asset":"datafarm","percent":20,"status":"closed"}}'
        await publish(broker.bootstrap, names, [control])
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        for tenant in TENANTS:
            assert '"severity":"high"' in seen[tenant]
            assert not leaks(tenant, seen[tenant]), (tenant, seen[tenant])
