"""The benchmark scripts still run: each main() at tiny sizes, with its results' shape checked.

No timings are asserted — they depend on the machine. PostgreSQL is left out (``--backends
sqlite``): the service's PostgreSQL path is covered by the service tests.
"""

from __future__ import annotations

import gc
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from bench import (
    ack_latency,
    capacity_bench,
    create_bench,
    notify_bench,
    queue_bench,
    rollup_bench,
    scale_bench,
    soak,
    utilisation_bench,
)
from bench.common import GIB, T0, overlapping
from bot.core import capacity
from bot.core.capacity import Span


def _quick(tmp_path: Path, *extra: str) -> list[str]:
    return ["--quick", "--out", str(tmp_path), *extra]


def test_capacity_bench_reports_percentiles_for_every_case(tmp_path: Path) -> None:
    results = capacity_bench.main(_quick(tmp_path))
    assert [run["overlapping"] for run in results["runs"]] == list(capacity_bench.QUICK.overlaps)
    for run in results["runs"]:
        cases = [row["case"] for row in run["rows"]]
        assert any(c.startswith("fits") for c in cases)
        assert any(c.startswith("service.create() refused") for c in cases)
        for row in run["rows"]:
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert json.loads((tmp_path / "capacity_bench.json").read_text())["machine"]["cores"]


def test_capacity_bench_arranges_exactly_the_overlapping_bookings() -> None:
    spans = capacity_bench.make_spans(random.Random(1), 500, 120)
    window_end = capacity_bench.WINDOW_START + capacity_bench.WINDOW
    hits = overlapping(spans, capacity_bench.WINDOW_START, window_end)
    assert len(spans) == 500
    assert len(hits) == 120


def test_create_bench_compares_every_mode_with_the_bare_insert(tmp_path: Path) -> None:
    results = create_bench.main(_quick(tmp_path, "--backends", "sqlite"))
    rows = results["backends"]["sqlite"]
    assert [r["mode"] for r in rows] == [m.name for m in create_bench.MODES] + [
        "bare INSERT, sequential"
    ]
    assert all(r["ops"] == results["ops_per_mode"] and r["ops_per_s"] > 0 for r in rows)
    assert rows[-1]["vs_bare"] == 1.0
    assert all(r["statements_per_op"] > rows[-1]["statements_per_op"] for r in rows[:-1])


def test_utilisation_bench_peak_rule_never_refuses_falsely(tmp_path: Path) -> None:
    results = utilisation_bench.main(_quick(tmp_path))
    (run,) = results["runs"]
    peak = run["rules"]["peak (gpubook)"]
    naive = run["rules"]["naive sum of overlaps"]
    assert peak["false_refusals"] == 0
    assert naive["false_refusals"] > 0
    assert naive["gib_hours_accepted"] <= peak["gib_hours_accepted"]
    assert peak["accepted"] + peak["refused"] == run["requests"]
    assert not peak["overfilled_gpus"] and not naive["overfilled_gpus"]


def test_queue_bench_never_overbooks_and_never_makes_flexible_requests_wait_longer(
    tmp_path: Path,
) -> None:
    results = queue_bench.main(_quick(tmp_path))
    fixed, queued = results["modes"]["fixed placement"], results["modes"]["with the queue"]
    assert fixed["overbooked_gpus"] == queued["overbooked_gpus"] == 0
    assert fixed["flexible"] == queued["flexible"] > 0
    assert queued["mean_wait_h"] <= fixed["mean_wait_h"]


def test_naive_rule_refuses_back_to_back_bookings_the_peak_rule_accepts() -> None:
    hour = timedelta(hours=1)
    held = [Span(T0, T0 + hour, 16 * GIB), Span(T0 + hour, T0 + 2 * hour, 16 * GIB)]
    args = (held, 24 * GIB, 8 * GIB, T0, T0 + 2 * hour)
    assert capacity.fits(*args)
    assert not utilisation_bench.naive_fits(*args)


def test_notify_bench_announces_everything_with_one_call_per_channel(tmp_path: Path) -> None:
    results = notify_bench.main(_quick(tmp_path, "--backends", "sqlite"))
    run = results["backends"]["sqlite"]
    assert run["unsent_after"] == 0
    assert run["slack_calls"] == run["channels"]


def test_scale_bench_times_every_call_at_both_sizes(tmp_path: Path) -> None:
    results = scale_bench.main(_quick(tmp_path, "--backends", "sqlite", "--explain"))
    sizes = results["backends"]["sqlite"]
    assert list(sizes) == [s.label for s in scale_bench.QUICK_SIZES]
    for rows in sizes.values():
        assert list(rows) == list(scale_bench.CALLS)
        assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in rows.values())


def test_rollup_bench_sums_every_sample_due_once(tmp_path: Path) -> None:
    results = rollup_bench.main(_quick(tmp_path, "--backends", "sqlite"))
    run = results["backends"]["sqlite"]
    # Per card: the seed's 3½ unsummed minutes (14 samples), then the sweeps' new samples up to
    # the last sweep's mark, 2 minutes after T0 (8 more).
    assert sum(run["samples_summed"]) == results["cards"] * (14 + 8)


def test_scale_bench_seeds_half_past_half_ahead_never_overfull() -> None:
    rows = scale_bench.lane_rows(random.Random(3), gpu_id=1, capacity_mib=24 * GIB, count=400)
    past = [r for r in rows if r["end_at"] <= T0]
    assert 0.4 < len(past) / len(rows) < 0.6
    spans = [Span(r["start_at"], r["end_at"], r["memory_mib"]) for r in rows]
    assert (
        capacity.peak(spans, min(s.start for s in spans), max(s.end for s in spans)).mib <= 24 * GIB
    )


def test_ack_latency_bench_measures_both_apps_for_every_command(tmp_path: Path) -> None:
    try:
        results = ack_latency.main(_quick(tmp_path))
    finally:
        gc.unfreeze()  # the bench freezes startup objects as `gpubook serve` does
    measured = {
        f"{app}/{command}" for app in ("gpubook", "bare") for command in ack_latency.COMMANDS
    }
    answered = {f"gpubook/{command}{ack_latency.IN_ACK}" for command in ack_latency.COMMANDS}
    assert measured <= set(results["latency"]) <= measured | answered
    assert all(row["p50_ms"] > 0 for row in results["latency"].values())


@pytest.mark.slow
def test_soak_bench_answers_every_request_and_samples_memory(tmp_path: Path) -> None:
    results = soak.main(_quick(tmp_path, "--database", "sqlite"))
    assert results["sent"] == results["acked"] == results["answered"] > 0
    assert results["failed"] == []
    assert results["ack_steady"]["p50_ms"] > 0
    assert results["rss_kib"]["start"] > 0 and len(results["rss_samples"]) >= 2
