"""The chaos campaign at CI size (issue 8): worker kill -9 (one worker, and one of two),
the broker frozen and restarted, receivers failing then slow. Each test runs one scenario
of ``streams.bench.chaos`` on a private broker and asserts every invariant held; the same code
runs at full size with ``stakewatch chaos --report docs/reliability.md``.

CI sizes (``streams.bench.chaos.CI``): 20,031 events instead of 100,151; 5 kills as at full size;
an 8 s broker pause instead of 30 s; receivers 500 for 6 s, 429 for 4 s, 1 s answers for 4 s
instead of 120/60/60 s with 5 s answers; retries 0.2 s doubling to 1 s instead of 1 → 60 s;
a delivery queue limit of 100 instead of 1000 (so that it bites on 283 alert records);
group session 2 s and snapshots every 0.5 s instead of 6 s / 5 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.chaos import CI, Result, run

pytestmark = pytest.mark.integration


async def _one(scenario: str, tmp_path: Path, **changes) -> Result:
    (result,) = await run(CI.scaled(work_dir=tmp_path, **changes), [scenario])
    return result


def _assert_clean(result: Result) -> None:
    assert result.violations == [], "\n".join(result.violations)
    assert (result.lost, result.duplicates) == (0, 0)
    assert result.transitions > 0 and result.deliveries >= 3 * result.transitions


async def test_worker_killed_five_times_loses_and_repeats_nothing(tmp_path: Path) -> None:
    result = await _one("kills", tmp_path)
    _assert_clean(result)
    assert result.injected == 5 and len(result.recovery) == 5


async def test_one_of_two_workers_killed_five_times_with_rebalances(tmp_path: Path) -> None:
    result = await _one("kills", tmp_path, workers=2)
    _assert_clean(result)
    assert result.injected == 5 and len(result.recovery) == 5


async def test_broker_paused_then_resumed(tmp_path: Path) -> None:
    result = await _one("broker-pause", tmp_path)
    _assert_clean(result)
    assert result.injected == 1 and len(result.recovery) == 1


async def test_embedded_broker_killed_restarted_and_refilled_from_the_archive(
    tmp_path: Path,
) -> None:
    """The worker sees its shared embedded broker die and restarts itself (exec), so it
    writes nothing into the half-refilled successor, then replays and reconciles."""
    result = await _one("broker-restart", tmp_path)
    _assert_clean(result)
    assert result.injected == 1 and len(result.recovery) == 1
    assert result.notes["self_restarts"] == 1


async def test_receivers_failing_throttling_and_slow_get_everything_in_order(
    tmp_path: Path,
) -> None:
    result = await _one("receivers", tmp_path)
    _assert_clean(result)
    notes = result.notes
    assert notes["peak_pending"] <= notes["max_pending"] == 100  # memory bounded
    assert notes["backpressure_logs"] >= 1 and notes["backpressure_metric"] >= 1
    assert notes["retries"] > 0 and notes["attempts"] > result.deliveries
