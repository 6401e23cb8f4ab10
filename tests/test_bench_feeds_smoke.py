"""The feed and chart benchmarks still run (tiny sizes), with their results' shape checked.
No timings are asserted."""

from __future__ import annotations

import json
from pathlib import Path

from bench import chart_bench, ics_bench


def test_ics_bench_times_rendering_reading_and_both_http_answers(tmp_path: Path) -> None:
    results = ics_bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["case"] for r in results["rows"]] == [
        "render, cold",
        "render, warm",
        "service.calendar_feed",
        "GET 200 (warm)",
        "GET 304",
    ]
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in results["rows"])
    assert results["bytes"] > 0
    assert json.loads((tmp_path / "ics_bench.json").read_text())["bookings"] == 20


def test_chart_bench_times_a_week_and_a_day(tmp_path: Path) -> None:
    results = chart_bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["case"].split(",")[0] for r in results["rows"]] == ["week", "day"]
    assert results["png_bytes"] > 0 and results["first_render_ms"] > 0
