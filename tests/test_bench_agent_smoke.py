"""The agent ingest benchmark still runs (a tiny fleet against a real `gpubook serve` on SQLite),
with its results' shape checked. No timings are asserted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench import agent_bench
from bot.core.agent_report import parse_report

pytestmark = pytest.mark.slow


def test_agent_bench_stores_every_report_and_counts_what_a_day_adds(tmp_path: Path) -> None:
    results = agent_bench.main(["--quick", "--backends", "sqlite", "--out", str(tmp_path)])
    fleet = agent_bench.QUICK
    run = results["backends"]["sqlite"]
    assert run["statuses"] == {"200": run["reports"]}  # every report stored, none refused
    assert run["first_report"]["n"] == fleet.hosts
    assert run["ingest"]["n"] == run["reports"] - fleet.hosts > 0
    assert set(agent_bench.ACK_COMMANDS) <= set(run["acks"])  # empty acks, for each command
    for phases in run["acks"].values():  # and answers in acks, once there are enough
        assert set(phases) == set(agent_bench.ACK_PHASES)  # quiet, loaded, quiet again
        for phase in phases.values():
            assert 1 < phase["n"] <= fleet.waves * fleet.concurrency
    alone = run["one_by_one"]["n"]
    assert alone == min(fleet.hosts, agent_bench.ONE_BY_ONE) and run["cpu_ms_per_report"] >= 0
    growth = run["growth"]
    assert growth["samples_measured"] == (run["reports"] + alone) * fleet.gpus  # one per card
    assert fleet.cards <= growth["hourly_rows_measured"] <= 2 * fleet.cards  # an hour or two
    assert growth["samples_per_day"] == fleet.cards * 86_400 // fleet.interval
    assert growth["bytes_per_sample"] > 0 and growth["bytes_per_hourly_row"] > 0


def test_a_simulated_report_keeps_the_contract() -> None:
    fleet = agent_bench.Fleet(hosts=3, gpus=8, interval=15, seconds=1, concurrency=1, waves=1)
    report = parse_report(json.loads(agent_bench.report(2, fleet, random.Random(1))))
    assert report.host == "host-002"
    assert [d.uuid for d in report.devices] == [agent_bench.card_uuid(2, i) for i in range(8)]
    assert all(d.used_mib == sum(p.used_mib or 0 for p in d.processes) for d in report.devices)
