"""Two tenants, acme and globex, sharing one vendor and one rival: the tenancy tests' world.

Each tenant has things only it may see — a private vendor, category, rival, contract ids,
spend figures, event ids and sources — listed in ``SECRETS``; the market (BigCo's holdings,
the registry) is shared. The clients themselves are not registered, so nothing public
names them. ``LAST`` events resolve a conflict of each tenant, for the "resolved" views.
"""

from __future__ import annotations

from typing import Any

import orjson

TENANTS = ("acme", "globex")
OTHER = {"acme": "globex", "globex": "acme"}
PRIVATE = {
    "acme": {
        "vendor": "quietco",
        "category": "translation",
        "rival": "shadowrival",
        "spend": 1234567,
        "annual": 1111111,
    },
    "globex": {
        "vendor": "hushlabs",
        "category": "secret-sauce",
        "rival": "ghostrival",
        "spend": 7654321,
        "annual": 7777777,
    },
}
SHARED_VENDOR, SHARED_RIVAL, SHARED_CATEGORY = "datafarm", "bigco", "labeling"


def secrets(tenant: str) -> tuple[str, ...]:
    """Strings that must never appear in an answer to anyone but `tenant`."""
    p = PRIVATE[tenant]
    return (
        tenant,
        f"c-{tenant}-",
        p["vendor"],
        p["category"],
        p["rival"],
        str(p["spend"]),
        str(p["annual"]),
        f"/feeds/{tenant}",
    )


def _event(eid: str, source: str, etype: str, day: int, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": eid,
            "source": source,
            "type": etype,
            "time": f"2025-03-{day:02d}T00:00:00Z",
            "data": data,
        }
    )


def world() -> tuple[list[bytes], list[bytes]]:
    """(events that open both tenants' conflicts, events that then resolve one of each)."""
    market = [
        ("entity.registered", {"id": "bigco", "name": "BigCo"}),
        ("entity.registered", {"id": SHARED_VENDOR, "name": "DataFarm"}),
        ("entity.registered", {"id": "oldvendor", "name": "OldVendor"}),
    ]
    lines = [_event(f"mkt-{i:02d}", "/feeds/public", t, 1, d) for i, (t, d) in enumerate(market)]
    last = []
    for tenant in TENANTS:
        p = PRIVATE[tenant]
        numbers = iter(range(1, 100))

        def ev(etype: str, day: int, data: dict[str, Any], tenant=tenant, n=numbers) -> bytes:
            return _event(f"{tenant}-ev-{next(n):02d}", f"/feeds/{tenant}", etype, day, data)

        lines += [
            ev("rivalry.declared", 2, {"a": tenant, "b": SHARED_RIVAL}),
            ev("rivalry.declared", 2, {"a": tenant, "b": p["rival"]}),
            ev(
                "contract.signed",
                3,
                {
                    "contract_id": f"c-{tenant}-1",
                    "client": tenant,
                    "vendor": SHARED_VENDOR,
                    "category": SHARED_CATEGORY,
                    "data_classes": ["prototypes"],
                    "annual_value": p["annual"],
                },
            ),
            ev(
                "contract.signed",
                3,
                {
                    "contract_id": f"c-{tenant}-2",
                    "client": tenant,
                    "vendor": p["vendor"],
                    "category": p["category"],
                    "data_classes": ["source_code"],
                },
            ),
            ev(
                "contract.signed",
                3,
                {
                    "contract_id": f"c-{tenant}-old",
                    "client": tenant,
                    "vendor": "oldvendor",
                    "category": SHARED_CATEGORY,
                    "data_classes": [],
                },
            ),
            ev(
                "spend.recorded",
                4,
                {
                    "client": tenant,
                    "vendor": SHARED_VENDOR,
                    "amount": p["spend"],
                    "contract_id": f"c-{tenant}-1",
                },
            ),
        ]
        last.append(ev("contract.terminated", 9, {"contract_id": f"c-{tenant}-old"}))
    lines += [
        _event("mkt-10", "/feeds/public", "ownership.stake", 5, _stake(SHARED_VENDOR, 40)),
        _event("mkt-11", "/feeds/public", "ownership.stake", 5, _stake("oldvendor", 30)),
    ]
    return lines, last


def _stake(asset: str, percent: float) -> dict[str, Any]:
    return {"owner": SHARED_RIVAL, "asset": asset, "percent": percent, "status": "closed"}
