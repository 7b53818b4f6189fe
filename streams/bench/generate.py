"""Seeded synthetic event streams for benchmarks and large tests.

The shape follows the market the seed case comes from: a few dozen AI labs that are each
other's rivals, thousands of vendors they buy from, and investment funds and labs holding
stakes in vendors (sometimes through chains of funds). The mix is configurable; the default
is the firehose a deployment sees: 80 % spend, 15 % contract events, 5 % ownership.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from streams.engine import DEFAULT_SENSITIVE

__all__ = [
    "StreamParams",
    "generate",
    "mesh_and_chain",
    "overallocated_world",
    "ownership_graph",
    "state_stream",
]

CLASSES = (*sorted(DEFAULT_SENSITIVE), "public_data", "synthetic_data")
CATEGORIES = ("data-labeling", "compute", "evaluation", "red-teaming", "annotation-tools")


@dataclass(frozen=True, slots=True)
class StreamParams:
    events: int = 100_000
    pairs: int = 10_000
    labs: int = 40
    funds: int = 200
    spend_share: float = 0.80
    contract_share: float = 0.15
    seed: int = 7
    start: dt.datetime = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    days: int = 3 * 365

    def describe(self) -> dict:
        return {
            "events": self.events,
            "pairs": self.pairs,
            "labs": self.labs,
            "funds": self.funds,
            "mix": {
                "spend": self.spend_share,
                "contracts": self.contract_share,
                "ownership": round(1 - self.spend_share - self.contract_share, 4),
            },
            "seed": self.seed,
        }


def _event(n: int, etype: str, t: dt.datetime, data: dict, source: str = "/gen") -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"gen-{n}",
            "source": source,
            "type": etype,
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "data": data,
        }
    )


def generate(p: StreamParams) -> Iterator[bytes]:
    """Yield `p.events` NDJSON records (bytes, no newline): reference data first, then the mix."""
    rng = random.Random(p.seed)
    labs = [f"lab-{i}" for i in range(p.labs)]
    funds = [f"fund-{i}" for i in range(p.funds)]
    vendors_per_lab = max(1, p.pairs // p.labs)
    n_vendors = max(vendors_per_lab * 2, p.pairs // 4)
    vendors = [f"vendor-{i}" for i in range(n_vendors)]
    pairs = [
        (lab, vendors[rng.randrange(n_vendors)]) for lab in labs for _ in range(vendors_per_lab)
    ]
    pairs = list(dict.fromkeys(pairs))
    n = 0
    t = p.start
    step = dt.timedelta(days=p.days) / max(1, p.events)
    header: list[bytes] = []
    for i, a in enumerate(labs):  # each lab is a rival of the next few (a sparse rivalry web)
        for b in labs[i + 1 : i + 4]:
            header.append(_event(n := n + 1, "rivalry.declared", t, {"a": a, "b": b}))
    yield from header[: p.events]
    contracts: list[tuple[str, str, str]] = []
    live: list[int] = []
    pool = _holding_pool(rng, labs, funds, vendors)
    claims: dict[str, dict[str, tuple[float, float]]] = {}  # asset -> owner -> (held, pending)
    for _ in range(p.events - min(len(header), p.events)):
        n += 1
        t += step * rng.uniform(0.5, 1.5)
        roll = rng.random()
        if roll < p.spend_share and contracts:
            cid, client, vendor = contracts[rng.randrange(len(contracts))]
            data = {"client": client, "vendor": vendor, "amount": round(rng.uniform(1e3, 5e6), 2)}
            if rng.random() < 0.5:
                data["contract_id"] = cid
            yield _event(n, "spend.recorded", t, data, source=f"/erp/{client}")
        elif roll < p.spend_share + p.contract_share or not contracts:
            if live and rng.random() < 0.3:
                idx = live[rng.randrange(len(live))]
                cid = contracts[idx][0]
                if rng.random() < 0.3:
                    live.remove(idx)
                    yield _event(n, "contract.terminated", t, {"contract_id": cid})
                else:
                    classes = rng.sample(CLASSES, rng.randrange(0, 3))
                    yield _event(
                        n, "contract.amended", t, {"contract_id": cid, "data_classes": classes}
                    )
                continue
            client, vendor = pairs[rng.randrange(len(pairs))]
            cid = f"c-{n}"
            contracts.append((cid, client, vendor))
            live.append(len(contracts) - 1)
            data = {
                "contract_id": cid,
                "client": client,
                "vendor": vendor,
                "category": CATEGORIES[rng.randrange(len(CATEGORIES))],
                "data_classes": rng.sample(CLASSES, rng.randrange(0, 3)),
                "annual_value": round(rng.uniform(1e5, 2e8), 2),
            }
            if rng.random() < 0.3:
                data["ends_on"] = (t + dt.timedelta(days=rng.randrange(30, 720))).date().isoformat()
            yield _event(n, "contract.signed", t, data, source=f"/erp/{client}")
        else:
            # a cap table changes far more often than it grows: most events re-price a
            # holding from a fixed pool (see _holding_pool), a few add a fresh one
            if rng.random() < 0.9:
                owner, asset = pool[rng.randrange(len(pool))]
            else:
                owner, asset = rng.choice(labs + funds), rng.choice(vendors)
                pool.append((owner, asset))
            status = rng.choices(("closed", "announced", "cancelled"), (6, 3, 1))[0]
            # a register's cap table adds up to at most 100 %: each holding is priced within
            # what the asset's other holders leave, held or announced (over-allocation is
            # the hostile bench's, streams/bench/hostile.py)
            table = claims.setdefault(asset, {})
            room = 100 - sum(max(v) for o, v in table.items() if o != owner)
            percent = 0.0
            if rng.random() >= 0.1 and room >= 1:
                percent = math.floor(rng.uniform(1, min(60, room)) * 10) / 10
            held, _ = table.get(owner, (0.0, 0.0))
            if status == "closed":
                table[owner] = (percent, 0.0)
            elif status == "announced":
                table[owner] = (held, percent)
            else:
                table[owner] = (held, 0.0)
            yield _event(
                n,
                "ownership.stake",
                t,
                {"owner": owner, "asset": asset, "percent": percent, "status": status},
                source="/feeds/filings",
            )


def _holding_pool(
    rng: random.Random, labs: list[str], funds: list[str], vendors: list[str]
) -> list[tuple[str, str]]:
    """Who may hold whom: each vendor has one to three investors (funds mostly, some labs);
    each lab backs a few funds; a fifth of the funds hold one smaller fund (index order keeps
    fund-of-fund chains acyclic, as real cap tables are)."""
    pool = []
    for vendor in vendors:
        for _ in range(rng.randrange(1, 4)):
            owner = rng.choice(labs) if rng.random() < 0.15 else rng.choice(funds)
            pool.append((owner, vendor))
    for lab in labs:
        pool.extend((lab, rng.choice(funds)) for _ in range(3))
    for i, fund in enumerate(funds[:-1]):
        if rng.random() < 0.2:
            pool.append((fund, funds[rng.randrange(i + 1, len(funds))]))
    return pool


def ownership_graph(entities: int, holdings: int, seed: int = 11) -> Iterator[bytes]:
    """A large ownership graph: `holdings` closed stakes among `entities` entities.

    Mostly a forest of funds holding companies (out-degree about holdings/entities), plus
    40 labs that are rivals and hold a handful of stakes each, as in the seed market.
    """
    rng = random.Random(seed)
    t = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    n = 0
    labs = [f"lab-{i}" for i in range(40)]
    for i, a in enumerate(labs):
        for b in labs[i + 1 : i + 4]:
            yield _event(n := n + 1, "rivalry.declared", t, {"a": a, "b": b})
    for i in range(holdings):
        n += 1
        lab = i % 50 == 0
        owner = labs[rng.randrange(len(labs))] if lab else f"e-{rng.randrange(entities)}"
        asset = f"e-{rng.randrange(entities)}"
        if asset == owner:
            asset = f"e-{(int(asset[2:]) + 1) % entities}"
        pct = round(rng.uniform(0.5, 30), 2)
        yield _event(n, "ownership.stake", t, {"owner": owner, "asset": asset, "percent": pct})


def state_stream(entities: int, holdings: int, contracts: int, seed: int = 13) -> Iterator[bytes]:
    """A large standing state: `entities` registered entities (a name and one alias each),
    the `ownership_graph(entities, holdings)` holdings among them, and `contracts` signed
    contracts between random pairs of them (two data classes, an annual value, an end date
    on three in ten). For memory figures: everything the engine keeps per entity, holding
    and contract, the applied-event keys included."""
    rng = random.Random(seed)
    t = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(entities):
        data: dict[str, Any] = {"id": f"e-{i}", "name": f"Entity {i}", "aliases": [f"E{i}"]}
        yield _event(i, "entity.registered", t, data, source="/registry")
    yield from ownership_graph(entities, holdings, seed=seed)
    for i in range(contracts):
        client = rng.randrange(entities)
        vendor = (client + 1 + rng.randrange(entities - 1)) % entities
        data = {
            "contract_id": f"c-{i}",
            "client": f"e-{client}",
            "vendor": f"e-{vendor}",
            "category": CATEGORIES[rng.randrange(len(CATEGORIES))],
            "data_classes": rng.sample(CLASSES, 2),
            "annual_value": round(rng.uniform(1e5, 2e8), 2),
        }
        if rng.random() < 0.3:
            data["ends_on"] = f"{2025 + rng.randrange(3)}-{1 + rng.randrange(12):02}-15"
        yield _event(i, "contract.signed", t, data, source="/erp")


def mesh_and_chain(mesh: int = 30, chain: int = 3000, seed: int = 5) -> Iterator[bytes]:
    """A hostile ownership feed (docs/performance.md, "Hostile input"): `mesh` entities each
    holding 90 % of every other — each of them claimed (mesh - 1) × 90 % over — and a chain
    of `chain` holdings at 100 %, both hung under a rival of the seed case (meta) and into a
    vendor that clients buy from (scale-ai), so that every rule reads them. Summing over
    simple paths without the SPEC v2 rules visits on the order of (mesh - 1)! paths."""
    t = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    rng = random.Random(seed)
    n = 0
    members = [f"mesh-{i}" for i in range(mesh)]
    pairs = [(a, b) for a in members for b in members if a != b]
    rng.shuffle(pairs)
    for owner, asset in pairs:
        data = {"owner": owner, "asset": asset, "percent": 90}
        yield _event(n := n + 1, "ownership.stake", t, data, source="/feeds/hostile")
    links = [
        {"owner": "meta", "asset": members[0], "percent": 90},
        {"owner": members[-1], "asset": "scale-ai", "percent": 90},
        {"owner": "meta", "asset": "chain-0", "percent": 100},
    ]
    for i in range(chain):
        asset = "scale-ai" if i == chain - 1 else f"chain-{i + 1}"
        links.append({"owner": f"chain-{i}", "asset": asset, "percent": 100})
    for data in links:
        yield _event(n := n + 1, "ownership.stake", t, data, source="/feeds/hostile")


def overallocated_world(events: int = 3000, seed: int = 9) -> Iterator[bytes]:
    """A hostile random world (docs/performance.md, "Hostile input"): ownership among 60
    entities where every asset is claimed 400 % and more (buyers reported before sellers,
    sources double-counting), dense with cycles, with the seed case's labs among the owners
    and rivalries and contracts so that conflicts open and close as it moves."""
    rng = random.Random(seed)
    t = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    labs = ["google", "meta", "openai", "microsoft", "xai"]
    vendors = ["surge-ai", "invisible", "appen", "sama"]  # none of the seed case's
    others = [f"holder-{i}" for i in range(200 - len(labs) - len(vendors))]
    everyone = labs + vendors + others
    n = 0
    for a, b in (("google", "meta"), ("openai", "xai"), ("microsoft", "google")):
        yield _event(n := n + 1, "rivalry.declared", t, {"a": a, "b": b}, source="/gen")
    for i, (client, vendor) in enumerate((c, v) for c in labs for v in vendors):
        data: dict[str, Any] = {
            "contract_id": f"hostile-{i}",
            "client": client,
            "vendor": vendor,
            "category": "data-labeling",
            "data_classes": ["prototypes"] if i % 3 == 0 else [],
        }
        yield _event(n := n + 1, "contract.signed", t, data, source="/erp")
    while n < events:
        t += dt.timedelta(minutes=rng.randrange(1, 120))
        owner, asset = rng.sample(everyone, 2)
        if rng.random() < 0.3:
            asset = rng.choice(vendors)
            owner = owner if owner != asset else rng.choice(labs)
        data = {
            "owner": owner,
            "asset": asset,
            "percent": rng.choice((35, 50, 60, 75, 90, 100)),
            "status": rng.choice(("closed", "closed", "announced", "cancelled")),
        }
        yield _event(n := n + 1, "ownership.stake", t, data, source="/feeds/hostile")
