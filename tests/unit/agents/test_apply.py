"""The worker's apply part on its own: the injected wall clock is the one `future` reads,
and the leases decide which outputs this worker publishes."""

from __future__ import annotations

from collections import Counter

import orjson

from streams.agents.apply import Applier
from streams.agents.leases import Held, lease_of
from streams.agents.merge import InputRecord
from streams.engine import Engine
from streams.engine.ledger import Ledger
from streams.engine.provenance import Provenance
from streams.kafka.topics import TopicNames

DAY = 86_400.0
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z


class FakeClock:
    def __init__(self, wall: float) -> None:
        self.now = wall

    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> float:
        return self.now


def _record(offset: int, eid: str, etype: str, data: dict, partition: int = 0) -> InputRecord:
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": eid,
            "source": "/t",
            "type": etype,
            "time": "2025-01-03T00:00:00Z",
            "data": data,
        }
    )
    return InputRecord("stakewatch.reference", partition, offset, int(T0 * 1000), None, value)


def _applier(clock: FakeClock) -> tuple[Applier, Counter[str]]:
    counts: Counter[str] = Counter()
    return Applier(TopicNames(), clock, counts, []), counts


def test_future_is_judged_by_the_injected_wall_clock() -> None:
    """An event dated two days after the clock is `future`; read a day later, it applies."""
    clock = FakeClock(T0)
    applier, counts = _applier(clock)
    ledger = Ledger(Engine(), Provenance())
    positions: dict[tuple[str, int], int] = {}
    held = Held(frozenset({0}), 1)
    declared = _record(0, "r1", "rivalry.declared", {"a": "google", "b": "meta"})
    out = applier.apply([declared], ledger, positions, held)
    assert counts["rejected"] == 1 and counts["applied"] == 0
    assert [dict(o[3])["code"] for o in out] == [b"future"]  # dead-lettered, with the code
    assert positions == {("stakewatch.reference", 0): 1}

    clock.now = T0 + DAY + 1  # the same record, read a day later
    applier.apply([declared], ledger, positions, held)
    assert counts["applied"] == 1 and ledger.engine.rivals["google"] == {"meta": None}


def test_only_the_leases_held_are_published() -> None:
    """A bad record on a partition this worker does not lease is counted, not dead-lettered;
    an alert for a client it does not lease reaches the listeners and the ledger only."""
    clock = FakeClock(T0 + 10 * DAY)
    applier, counts = _applier(clock)
    heard: list[str] = []
    applier.listeners.append(lambda record: heard.append(record.dedup_key))
    ledger = Ledger(Engine(), Provenance())
    held = Held(frozenset({lease_of("google", 8) ^ 1}), 8)  # not google's lease
    bad = InputRecord("stakewatch.reference", lease_of("google", 8), 0, 0, None, b"{")
    events = [
        _record(1, "r1", "rivalry.declared", {"a": "google", "b": "meta"}),
        _record(
            2,
            "c1",
            "contract.signed",
            {
                "contract_id": "c-1",
                "client": "google",
                "vendor": "scale-ai",
                "category": "data-labeling",
                "data_classes": [],
            },
        ),
        _record(3, "o1", "ownership.stake", {"owner": "meta", "asset": "scale-ai", "percent": 49}),
    ]
    out = applier.apply([bad, *events], ledger, {}, held)
    assert out == [] and counts["rejected"] == 1 and counts["applied"] == 3
    assert heard == ["google|scale-ai|meta"] and set(ledger.latest) == set(heard)
