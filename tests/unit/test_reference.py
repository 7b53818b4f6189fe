"""Pins the reference evaluation (tests/reference.py) to SPEC.md and docs/decisions.md.

Every expected value below was worked out by hand from the SPEC and decisions.md, not by
running the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

try:
    from tests.reference import Reference
except ModuleNotFoundError:  # plain `pytest` without the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.reference import Reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Feed:
    """Builds CloudEvents lines with fresh ids and feeds them to one Reference."""

    def __init__(self, **config: object) -> None:
        self.ref = Reference(**config)
        self.count = 0

    def line(
        self,
        type_: str,
        time: str,
        data: dict[str, object],
        *,
        event_id: str | None = None,
        source: str = "/test",
    ) -> bytes:
        if event_id is None:
            self.count += 1
            event_id = f"e{self.count}"
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": type_,
            "time": time,
            "data": data,
        }
        return json.dumps(envelope).encode()

    def send(self, type_: str, time: str, data: dict[str, object], **kw: str):
        return self.ref.feed(self.line(type_, time, data, **kw))

    def ok(self, type_: str, time: str, data: dict[str, object], **kw: str) -> list[dict]:
        records, code = self.send(type_, time, data, **kw)
        assert code is None, code
        return records

    # shorthands for applied events
    def stake(self, owner: str, asset: str, percent: float, time: str, status: str = "closed"):
        data = {"owner": owner, "asset": asset, "percent": percent, "status": status}
        return self.ok("ownership.stake", time, data)

    def rivals(self, a: str, b: str, time: str) -> list[dict]:
        return self.ok("rivalry.declared", time, {"a": a, "b": b})

    def sign(self, contract_id, client, vendor, time, data_classes=(), **extra) -> list[dict]:
        data = {
            "contract_id": contract_id,
            "client": client,
            "vendor": vendor,
            "category": "data-labeling",
            "data_classes": list(data_classes),
            **extra,
        }
        return self.ok("contract.signed", time, data)

    def spend(self, client, vendor, amount, time, **extra) -> list[dict]:
        data = {"client": client, "vendor": vendor, "amount": amount, **extra}
        return self.ok("spend.recorded", time, data)

    def tick(self, time: str) -> list[dict]:
        """An event that changes nothing but the watermark."""
        return self.ok("entity.registered", time, {"id": "nobody", "name": "Nobody"})


def day(n: int) -> str:
    """2024-01-01 plus n days, midnight UTC (n < 31)."""
    return f"2024-01-{1 + n:02d}T00:00:00Z"


def alert(
    status: str,
    severity: str,
    *,
    stake: float,
    paths: list[tuple[list[str], float]],
    event_id: str,
    event_time: str,
    client: str = "google",
    vendor: str = "v",
    rival: str = "meta",
    controlled: bool = False,
    pending: bool = False,
    active_contracts: tuple[str, ...] = ("c-gv",),
    data_classes: tuple[str, ...] = (),
    spend_365d: float = 0.0,
) -> dict[str, object]:
    return {
        "dedup_key": f"{client}|{vendor}|{rival}",
        "status": status,
        "severity": severity,
        "client": client,
        "vendor": vendor,
        "rival": rival,
        "stake": stake,
        "controlled": controlled,
        "pending": pending,
        "paths": [{"path": path, "stake": s} for path, s in paths],
        "active_contracts": list(active_contracts),
        "data_classes": list(data_classes),
        "spend_365d": spend_365d,
        "event_id": event_id,
        "event_time": event_time,
    }


@pytest.fixture
def feed() -> Feed:
    """google and meta are rivals; google has contract c-gv with vendor v (no data classes)."""
    f = Feed()
    assert f.rivals("google", "meta", day(0)) == []
    assert f.sign("c-gv", "google", "v", day(0)) == []
    return f


# ----------------------------------------------------------------------------- seed case


def test_seed_scenario_gives_the_spec_worked_example() -> None:
    """SPEC §4: meta's announced 49 % opens google|scale-ai|meta critical and pending, and
    google's termination resolves it; the other rivals' conflicts follow the same rules."""
    ref = Reference()
    emitted: list[dict] = []
    for raw in (FIXTURES / "scale-ai-2025.ndjson").read_bytes().splitlines():
        records, code = ref.feed(raw)
        assert code is None
        emitted.extend(records)

    assert [(r["event_id"], r["dedup_key"], r["status"], r["severity"]) for r in emitted] == [
        ("seed-0074", "google|scale-ai|meta", "firing", "critical"),
        ("seed-0074", "microsoft|scale-ai|meta", "firing", "high"),  # no data classes
        ("seed-0074", "openai|scale-ai|meta", "firing", "critical"),  # prototypes
        ("seed-0074", "xai|scale-ai|meta", "firing", "critical"),  # internal_documents
        ("seed-0075", "google|scale-ai|meta", "resolved", "critical"),
        ("seed-0078", "xai|scale-ai|meta", "resolved", "critical"),
        # seed-0080 (meta closes 49 %) only flips `pending`: nothing emits.
    ]
    google = dict(client="google", vendor="scale-ai", rival="meta", pending=True)
    assert emitted[0] == alert(
        "firing",
        "critical",
        stake=49.0,
        paths=[(["meta", "scale-ai"], 49.0)],
        event_id="seed-0074",
        event_time="2025-06-12T14:00:00Z",
        active_contracts=("c-google-scale-2024",),
        data_classes=("confidential_data", "internal_documents", "prototypes"),
        spend_365d=150_000_000.0,  # 12 monthly payments of 12.5M, 2024-06-28..2025-05-28
        **google,
    )
    assert emitted[4] == alert(
        "resolved",
        "critical",
        stake=49.0,
        paths=[(["meta", "scale-ai"], 49.0)],
        event_id="seed-0075",
        event_time="2025-06-13T16:00:00Z",
        active_contracts=(),
        data_classes=(),
        spend_365d=150_000_000.0,  # 2024-06-28 is still inside (2024-06-13T16:00, W]
        **google,
    )


# ------------------------------------------------------------------------ effective stake


def test_two_hop_path_stake_is_the_product_of_holdings(feed: Feed) -> None:
    """meta 50 % of x and x 40 % of v give meta 50*40/100 = 20 % of v."""
    assert feed.stake("meta", "x", 50, day(1)) == []
    assert feed.stake("x", "v", 40, day(2)) == [
        alert(
            "firing",
            "warning",
            stake=20.0,
            paths=[(["meta", "x", "v"], 20.0)],
            event_id="e4",
            event_time="2024-01-03T00:00:00Z",
        )
    ]


def test_two_paths_sum_and_are_listed_largest_first(feed: Feed) -> None:
    """Paths 5 % (via x) and 8 % (via y) are each below 10 but their sum 13 opens it."""
    assert feed.stake("meta", "x", 50, day(1)) == []
    assert feed.stake("x", "v", 10, day(2)) == []  # 5 %
    assert feed.stake("meta", "y", 20, day(3)) == []
    assert feed.stake("y", "v", 40, day(4)) == [
        alert(
            "firing",
            "warning",
            stake=13.0,
            paths=[(["meta", "y", "v"], 8.0), (["meta", "x", "v"], 5.0)],
            event_id="e6",
            event_time="2024-01-05T00:00:00Z",
        )
    ]


def test_an_over_allocated_asset_counts_pro_rata(feed: Feed) -> None:
    """x and y each claim 100 % of v and meta 50 %: v's holdings claim 250 %, so each counts
    × 100 / 250 (SPEC v2 §2) and the three paths give 20 % each, 60 % in all — where summing
    the claims as given would have reached 150 % and been capped."""
    assert feed.stake("meta", "x", 50, day(1)) == []
    assert feed.stake("x", "v", 100, day(1))[0]["stake"] == 50.0  # opens, high
    assert feed.stake("meta", "y", 50, day(1)) == []
    assert feed.stake("y", "v", 100, day(1)) == []  # 200 % claimed: 25 + 25, still high
    assert feed.stake("meta", "v", 50, day(1)) == []  # 250 % claimed: 20 + 20 + 20
    records = feed.ok("rivalry.withdrawn", day(2), {"a": "google", "b": "meta"})
    assert records == [
        alert(
            "resolved",
            "high",
            stake=60.0,
            paths=[
                (["meta", "v"], 20.0),
                (["meta", "x", "v"], 20.0),
                (["meta", "y", "v"], 20.0),
            ],
            event_id="e8",
            event_time="2024-01-03T00:00:00Z",
        )
    ]


def test_paths_whose_stake_falls_below_001_percent_are_not_counted(feed: Feed) -> None:
    """A 0.005 % path is pruned (9.995 stays below 10); a path of exactly 0.01 % counts."""
    assert feed.stake("meta", "v", 9.995, day(1)) == []
    assert feed.stake("meta", "a", 1, day(1)) == []
    assert feed.stake("a", "v", 0.5, day(1)) == []  # 1 * 0.5 / 100 = 0.005 < 0.01
    assert feed.stake("a", "v", 1, day(2)) == [  # 1 * 1 / 100 = 0.01, not < 0.01
        alert(
            "firing",
            "warning",
            stake=10.005,
            paths=[(["meta", "v"], 9.995), (["meta", "a", "v"], 0.01)],
            event_id="e6",
            event_time="2024-01-03T00:00:00Z",
        )
    ]


def test_only_simple_paths_count_in_a_cycle(feed: Feed) -> None:
    """With cycles meta<->x and x<->y, only meta-x-y-v (20) and meta-x-v (10) count."""
    assert feed.stake("meta", "x", 50, day(1)) == []
    assert feed.stake("x", "meta", 100, day(1)) == []
    assert feed.stake("x", "y", 50, day(1)) == []
    assert feed.stake("y", "x", 50, day(1)) == []
    assert feed.stake("y", "v", 80, day(2)) == [  # 50 * 50 / 100 * 80 / 100 = 20
        alert(
            "firing",
            "warning",
            stake=20.0,
            paths=[(["meta", "x", "y", "v"], 20.0)],
            event_id="e7",
            event_time="2024-01-03T00:00:00Z",
        )
    ]
    assert feed.stake("x", "v", 20, day(3)) == [  # + 50 * 20 / 100 = 10 -> 30, high
        alert(
            "firing",
            "high",
            stake=30.0,
            paths=[(["meta", "x", "y", "v"], 20.0), (["meta", "x", "v"], 10.0)],
            event_id="e8",
            event_time="2024-01-04T00:00:00Z",
        )
    ]


def test_threshold_compares_the_stake_rounded_to_9_decimals(feed: Feed) -> None:
    """9.9999999999999 % rounds to 10 at 9 decimals, so it meets the threshold."""
    records = feed.stake("meta", "v", 9.9999999999999, day(1))
    assert [(r["status"], r["stake"]) for r in records] == [("firing", 10.0)]


def test_threshold_is_configurable() -> None:
    """With threshold 5, a 6 % stake opens a conflict that the default 10 would not."""
    f = Feed(threshold=5)
    f.rivals("google", "meta", day(0))
    f.sign("c-gv", "google", "v", day(0))
    assert [r["severity"] for r in f.stake("meta", "v", 6, day(1))] == ["warning"]


# ------------------------------------------------------------------------------- control


def test_control_needs_more_than_50_percent_through_controlled_subsidiaries(
    feed: Feed,
) -> None:
    """meta's own 50 % plus x's 1 % controls v only once meta controls x (51 %, not 50)."""
    opened = feed.stake("meta", "v", 50, day(1))
    assert [(r["severity"], r["controlled"]) for r in opened] == [("high", False)]
    assert feed.stake("meta", "x", 50, day(2)) == []  # x not controlled: 50 is not > 50
    assert feed.stake("x", "v", 1, day(3)) == []  # 50.5 %, still high
    assert feed.stake("meta", "x", 51, day(4)) == [  # group holds 50 + 1 = 51 > 50 of v
        alert(
            "firing",
            "critical",
            stake=50.51,
            controlled=True,
            paths=[(["meta", "v"], 50.0), (["meta", "x", "v"], 0.51)],
            event_id="e6",
            event_time="2024-01-05T00:00:00Z",
        )
    ]


# --------------------------------------------------------------------- holding statuses


def test_announced_closed_and_cancelled_holdings(feed: Feed) -> None:
    """Pending counts in place of held; closed clears it; cancelled drops it; `pending` is
    true exactly when held holdings alone stay below the threshold."""
    assert feed.stake("meta", "v", 30, day(1), "announced") == [
        alert(
            "firing",
            "high",
            stake=30.0,
            pending=True,
            paths=[(["meta", "v"], 30.0)],
            event_id="e3",
            event_time="2024-01-02T00:00:00Z",
        )
    ]
    assert feed.stake("meta", "v", 30, day(2), "cancelled") == [
        alert(
            "resolved",
            "high",
            stake=0.0,
            pending=True,
            paths=[],
            event_id="e4",
            event_time="2024-01-03T00:00:00Z",
        )
    ]
    assert feed.stake("meta", "v", 12, day(3), "announced") == [
        alert(
            "firing",
            "warning",
            stake=12.0,
            pending=True,
            paths=[(["meta", "v"], 12.0)],
            event_id="e5",
            event_time="2024-01-04T00:00:00Z",
        )
    ]
    assert feed.stake("meta", "v", 12, day(4), "closed") == []  # only `pending` changes
    assert feed.stake("meta", "v", 40, day(5), "announced") == [
        alert(
            "firing",
            "high",
            stake=40.0,
            pending=False,  # held 12 % alone meets the threshold
            paths=[(["meta", "v"], 40.0)],
            event_id="e7",
            event_time="2024-01-06T00:00:00Z",
        )
    ]
    assert feed.stake("meta", "v", 12, day(6), "cancelled") == [
        alert(
            "firing",
            "warning",
            stake=12.0,
            paths=[(["meta", "v"], 12.0)],
            event_id="e8",
            event_time="2024-01-07T00:00:00Z",
        )
    ]
    # Cancelling when nothing is pending is valid and changes nothing.
    assert feed.stake("meta", "v", 99, day(7), "cancelled") == []


def test_closed_zero_percent_is_an_exit(feed: Feed) -> None:
    """`percent` 0 with `closed` removes the holding and the conflict resolves."""
    assert [r["status"] for r in feed.stake("meta", "v", 30, day(1))] == ["firing"]
    assert feed.stake("meta", "v", 0, day(2)) == [
        alert(
            "resolved",
            "high",
            stake=0.0,
            pending=True,
            paths=[],
            event_id="e4",
            event_time="2024-01-03T00:00:00Z",
        )
    ]


def test_stale_ownership_is_rejected_per_owner_asset_pair(feed: Feed) -> None:
    """An older event for the same (owner, asset) is stale; another pair or an equal time
    is applied."""
    assert [r["status"] for r in feed.stake("meta", "v", 30, day(10))] == ["firing"]
    stale = {"owner": "meta", "asset": "v", "percent": 0, "status": "closed"}
    assert feed.send("ownership.stake", day(9), stale) == ([], "stale")
    assert feed.stake("meta", "x", 20, day(5)) == []  # other pair: applied, older is fine
    assert [r["status"] for r in feed.stake("meta", "v", 0, day(10))] == ["resolved"]


# -------------------------------------------------------------------------- relationship


def test_ends_on_lapse_is_noticed_at_the_first_event_after_that_utc_date() -> None:
    """A contract ending 2024-03-10 is active through that UTC date; the first event on
    2024-03-11 UTC resolves, and the pair's earlier spend cannot keep it active."""
    f = Feed()
    f.rivals("google", "meta", "2024-03-01T00:00:00Z")
    f.sign("c-gv", "google", "v", "2024-03-01T00:00:00Z", ["prototypes"], ends_on="2024-03-10")
    f.spend("google", "v", 1000, "2024-03-01T00:00:00Z", contract_id="c-gv")
    opened = f.stake("meta", "v", 30, "2024-03-01T00:00:00Z")
    assert [r["severity"] for r in opened] == ["critical"]  # >= 25 and prototypes
    assert f.tick("2024-03-11T01:00:00+02:00") == []  # 2024-03-10T23:00Z: still the 10th
    assert f.tick("2024-03-11T00:00:00Z") == [
        alert(
            "resolved",
            "critical",
            stake=30.0,
            paths=[(["meta", "v"], 30.0)],
            active_contracts=(),
            spend_365d=1000.0,
            event_id="e6",
            event_time="2024-03-11T00:00:00Z",
        )
    ]


def test_spend_ages_out_after_exactly_365_days() -> None:
    """For a pair with no contract, spend at 2024-01-01T00:00Z counts in (W-365d, W] until
    W = 2024-12-31T00:00Z (365 days later, 2024 being a leap year), when it is out."""
    f = Feed()
    f.rivals("google", "meta", "2024-01-01T00:00:00Z")
    f.spend("google", "w", 100, "2024-01-01T00:00:00Z")
    spend_only = dict(vendor="w", active_contracts=(), paths=[(["meta", "w"], 30.0)])
    assert f.stake("meta", "w", 30, "2024-06-01T00:00:00Z") == [
        alert(
            "firing",
            "high",
            stake=30.0,
            spend_365d=100.0,
            event_id="e3",
            event_time="2024-06-01T00:00:00Z",
            **spend_only,
        )
    ]
    assert f.tick("2024-12-30T23:59:59Z") == []
    assert f.tick("2024-12-31T00:00:00Z") == [
        alert(
            "resolved",
            "high",
            stake=30.0,
            spend_365d=0.0,
            event_id="e5",
            event_time="2024-12-31T00:00:00Z",
            **spend_only,
        )
    ]


def test_spend_makes_a_pair_active_only_if_it_never_had_a_contract() -> None:
    """Spend activates google-w (no contract ever), but not google-v (contract lapsed before
    it was signed) nor google-u (contract terminated)."""
    f = Feed()
    t = "2024-06-01T00:00:00Z"
    f.rivals("google", "meta", t)
    f.sign("c-old", "google", "v", t, ends_on="2024-01-31")
    f.sign("c-done", "google", "u", t)
    f.ok("contract.terminated", t, {"contract_id": "c-done"})
    for vendor in ("v", "u", "w"):
        f.spend("google", vendor, 500, t)
    assert f.stake("meta", "v", 30, t) == []
    assert f.stake("meta", "u", 30, t) == []
    assert f.stake("meta", "w", 30, t) == [
        alert(
            "firing",
            "high",
            stake=30.0,
            vendor="w",
            paths=[(["meta", "w"], 30.0)],
            active_contracts=(),
            spend_365d=500.0,
            event_id="e10",
            event_time=t,
        )
    ]


def test_rivalry_is_symmetric(feed: Feed) -> None:
    """Declared as (google, meta), the rivalry also makes google the rival in meta's pairs."""
    feed.sign("c-mv", "meta", "v", day(1), ["source_code"])
    records = feed.stake("google", "v", 10, day(2))
    assert [(r["dedup_key"], r["severity"]) for r in records] == [("meta|v|google", "high")]


def test_rivalry_withdrawn_resolves_and_withdrawing_twice_is_valid(feed: Feed) -> None:
    """Withdrawing (meta, google) ends the conflict; withdrawing it again changes nothing."""
    assert [r["status"] for r in feed.stake("meta", "v", 30, day(1))] == ["firing"]
    records = feed.ok("rivalry.withdrawn", day(2), {"a": "meta", "b": "google"})
    assert records == [
        alert(
            "resolved",
            "high",
            stake=30.0,
            paths=[(["meta", "v"], 30.0)],
            event_id="e4",
            event_time="2024-01-03T00:00:00Z",
        )
    ]
    assert feed.send("rivalry.withdrawn", day(3), {"a": "meta", "b": "google"}) == ([], None)


# ------------------------------------------------------------------------------ severity


def test_severity_change_fires_again_with_the_new_severity(feed: Feed) -> None:
    """warning (15 %) -> high (30 %) -> critical (sensitive class added) -> high (removed)."""
    assert [r["severity"] for r in feed.stake("meta", "v", 15, day(1))] == ["warning"]
    assert [r["severity"] for r in feed.stake("meta", "v", 30, day(2))] == ["high"]
    amend = {"contract_id": "c-gv", "data_classes": ["prototypes", "logs", "prototypes"]}
    assert feed.ok("contract.amended", day(3), amend) == [
        alert(
            "firing",
            "critical",
            stake=30.0,
            paths=[(["meta", "v"], 30.0)],
            data_classes=("logs", "prototypes"),
            event_id="e5",
            event_time="2024-01-04T00:00:00Z",
        )
    ]
    amend = {"contract_id": "c-gv", "data_classes": []}
    assert [r["severity"] for r in feed.ok("contract.amended", day(4), amend)] == ["high"]
    assert feed.stake("meta", "v", 31, day(5)) == []  # same severity: nothing emits


def test_sensitive_class_alone_makes_a_small_stake_high(feed: Feed) -> None:
    """A 12 % stake in a vendor holding user_data is high, not critical (needs >= 25)."""
    feed.ok("contract.amended", day(1), {"contract_id": "c-gv", "data_classes": ["user_data"]})
    assert [r["severity"] for r in feed.stake("meta", "v", 12, day(2))] == ["high"]


def test_event_time_is_published_in_utc() -> None:
    """An event at 09:30:00.25+01:00 is published as 08:30:00.250000Z."""
    f = Feed()
    f.rivals("google", "meta", day(0))
    f.sign("c-gv", "google", "v", day(0))
    records = f.stake("meta", "v", 30, "2024-02-01T09:30:00.25+01:00")
    assert [r["event_time"] for r in records] == ["2024-02-01T08:30:00.250000Z"]


# ------------------------------------------------------------------- duplicates, rejections


def test_repeated_source_and_id_is_a_duplicate_and_changes_nothing(feed: Feed) -> None:
    """The same (source, id) again, even with other content, is rejected as duplicate; the
    same id from another source is a different event."""
    line = feed.line("ownership.stake", day(1), {"owner": "meta", "asset": "v", "percent": 30})
    assert [r["status"] for r in feed.ref.feed(line)[0]] == ["firing"]
    assert feed.ref.feed(line) == ([], "duplicate")
    exit_ = {"owner": "meta", "asset": "v", "percent": 0}
    assert feed.send("ownership.stake", day(5), exit_, event_id="e3") == ([], "duplicate")
    assert feed.ref.watermark == 1_704_153_600_000_000  # still day(1): W did not move
    records, code = feed.send("ownership.stake", day(5), exit_, event_id="e3", source="/other")
    assert code is None
    assert [r["status"] for r in records] == ["resolved"]


def _envelope(type_: str, data: object, **changes: object) -> bytes:
    envelope = {
        "specversion": "1.0",
        "id": "bad-1",
        "source": "/test",
        "type": type_,
        "time": "2024-01-20T00:00:00Z",
        "data": data,
    }
    envelope.update(changes)
    for name, value in changes.items():
        if value is _DROP:
            del envelope[name]
    return json.dumps(envelope).encode()


_DROP = object()
STAKE = {"owner": "meta", "asset": "v", "percent": 30}
SPEND = {"client": "google", "vendor": "v", "amount": 10}

BAD_LINES = {
    "over 64 KiB": (_envelope("ownership.stake", STAKE, padding="x" * 65_536), "too_large"),
    "not JSON": (b'{"specversion": "1.0",', "invalid_json"),
    "not an object": (b'["ownership.stake"]', "invalid_json"),
    "not UTF-8": (b'{"id": "\xff"}', "invalid_json"),
    "unknown type": (_envelope("ownership.sold", STAKE), "unknown_type"),
    "missing time": (_envelope("ownership.stake", STAKE, time=_DROP), "schema"),
    "time without offset": (
        _envelope("ownership.stake", STAKE, time="2024-01-20T00:00:00"),
        "schema",
    ),
    "wrong specversion": (_envelope("ownership.stake", STAKE, specversion="0.3"), "schema"),
    "empty id": (_envelope("ownership.stake", STAKE, id=""), "schema"),
    "id over 256 chars": (_envelope("ownership.stake", STAKE, id="i" * 257), "schema"),
    "control char in source": (_envelope("ownership.stake", STAKE, source="/a\nb"), "schema"),
    "data not an object": (_envelope("ownership.stake", [STAKE]), "schema"),
    "percent over 100": (_envelope("ownership.stake", {**STAKE, "percent": 100.5}), "schema"),
    "percent negative": (_envelope("ownership.stake", {**STAKE, "percent": -1}), "schema"),
    "percent as string": (_envelope("ownership.stake", {**STAKE, "percent": "30"}), "schema"),
    "percent as bool": (_envelope("ownership.stake", {**STAKE, "percent": True}), "schema"),
    "unknown status": (_envelope("ownership.stake", {**STAKE, "status": "rumoured"}), "schema"),
    "typo field": (
        _envelope("ownership.stake", {"owner": "meta", "asset": "v", "precent": 30}),
        "schema",
    ),
    "bad slug": (_envelope("ownership.stake", {**STAKE, "owner": "Meta"}), "schema"),
    "slug with newline": (_envelope("ownership.stake", {**STAKE, "owner": "meta\n"}), "schema"),
    "zero amount": (_envelope("spend.recorded", {**SPEND, "amount": 0}), "schema"),
    "amount over 1e15": (_envelope("spend.recorded", {**SPEND, "amount": 2e15}), "schema"),
    "amendment changing nothing": (
        _envelope("contract.amended", {"contract_id": "c-gv"}),
        "schema",
    ),
    "bad ends_on": (
        _envelope("contract.amended", {"contract_id": "c-gv", "ends_on": "2024-02-30"}),
        "schema",
    ),
    "owner is asset": (_envelope("ownership.stake", {**STAKE, "asset": "meta"}), "same_party"),
    "client is vendor": (_envelope("spend.recorded", {**SPEND, "vendor": "google"}), "same_party"),
    "a is b": (_envelope("rivalry.declared", {"a": "meta", "b": "meta"}), "same_party"),
    "amend unknown contract": (
        _envelope("contract.amended", {"contract_id": "c-x", "data_classes": []}),
        "unknown_contract",
    ),
    "terminate unknown contract": (
        _envelope("contract.terminated", {"contract_id": "c-x"}),
        "unknown_contract",
    ),
    "spend on unknown contract": (
        _envelope("spend.recorded", {**SPEND, "contract_id": "c-x"}),
        "unknown_contract",
    ),
    "signing a known contract id": (
        _envelope(
            "contract.signed",
            {
                "contract_id": "c-gv",
                "client": "openai",
                "vendor": "v",
                "category": "data-labeling",
                "data_classes": [],
            },
        ),
        "contract_exists",
    ),
    "spend on another pair's contract": (
        _envelope("spend.recorded", {**SPEND, "client": "openai", "contract_id": "c-gv"}),
        "contract_mismatch",
    ),
}


@pytest.mark.parametrize(("raw", "code"), list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_bad_input_gets_its_code_and_changes_nothing(feed: Feed, raw: bytes, code: str) -> None:
    """Each bad line gets the decisions.md code, emits nothing and leaves W where it was."""
    watermark = feed.ref.watermark
    assert feed.ref.feed(raw) == ([], code)
    assert feed.ref.watermark == watermark
    # Its (source, id) was not applied, so a valid event may still use it.
    assert feed.send("entity.registered", day(0), {"id": "x", "name": "X"}, event_id="bad-1") == (
        [],
        None,
    )


def test_optional_nulls_and_extension_attributes_are_accepted(feed: Feed) -> None:
    """CloudEvents extras are ignored; null clears annual_value/ends_on in an amendment."""
    raw = _envelope(
        "contract.amended",
        {"contract_id": "c-gv", "annual_value": None, "ends_on": None},
        datacontenttype="application/json",
        subject="c-gv",
    )
    assert feed.ref.feed(raw) == ([], None)


def test_checks_run_in_the_decisions_md_order(feed: Feed) -> None:
    """With several defects, the first check in decisions.md's order gives the code: size,
    JSON, type, schema, same party, duplicate, then the type's state checks."""
    same_party = {"owner": "meta", "asset": "meta", "percent": 30}
    big = "x" * 65_536
    assert feed.ref.feed(b"{" + big.encode()) == ([], "too_large")  # also not JSON
    assert feed.ref.feed(_envelope("ownership.sold", STAKE, time=_DROP)) == ([], "unknown_type")
    assert feed.ref.feed(_envelope("ownership.stake", {**same_party, "percent": 101})) == (
        [],
        "schema",
    )
    assert feed.send("ownership.stake", day(1), same_party, event_id="e1") == ([], "same_party")
    unknown = {"contract_id": "c-x"}
    assert feed.send("contract.terminated", day(1), unknown, event_id="e1") == ([], "duplicate")
    stale_and_duplicate = {"owner": "meta", "asset": "v", "percent": 0}
    assert feed.stake("meta", "v", 30, day(5))[0]["status"] == "firing"  # e3
    assert feed.send("ownership.stake", day(4), stale_and_duplicate, event_id="e3") == (
        [],
        "duplicate",
    )
    assert feed.send("ownership.stake", day(4), stale_and_duplicate) == ([], "stale")
