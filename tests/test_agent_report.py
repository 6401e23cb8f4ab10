"""The report contract of POST /agent/report, read strictly and round-tripped."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.agent_report import (
    MAX_DEVICES,
    UNKNOWN_USER,
    DeviceReading,
    ProcessReading,
    Report,
    parse_report,
)
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.usage import DeviceInfo

UUID = "GPU-8f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"


def report_json(**changes: Any) -> dict[str, Any]:
    """The README's example report, with ``changes`` applied to it."""
    body: dict[str, Any] = {
        "host": "gpu-host-1",
        "sent_at": "2026-12-01T09:00:00Z",
        "devices": [
            {
                "uuid": UUID,
                "index": 0,
                "name": "NVIDIA A100-SXM4-80GB",
                "total_mib": 81920,
                "used_mib": 20480,
                "processes": [{"pid": 4242, "user": "alice", "used_mib": 19800}],
            }
        ],
    }
    body.update(changes)
    return body


def test_the_documented_example_reads() -> None:
    report = parse_report(report_json())
    assert report.host == "gpu-host-1"
    assert report.sent_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    [device] = report.devices
    assert device.uuid == UUID and device.total_mib == 81920 and device.used_mib == 20480
    assert device.processes == (ProcessReading(4242, "alice", 19800),)


def test_memory_per_user_keeps_unknown_owners_and_unknown_memory() -> None:
    device = DeviceReading(
        UUID,
        0,
        "A100",
        81920,
        30000,
        (
            ProcessReading(1, "alice", 1000),
            ProcessReading(2, "alice", 500),
            ProcessReading(3, "bob", None),
            ProcessReading(4, None, 300),
            ProcessReading(5, "carol", None),
            ProcessReading(6, "carol", 200),
        ),
    )
    assert device.per_user() == {"alice": 1500, "bob": None, UNKNOWN_USER: 300, "carol": 200}


def _without(path: list[Any]) -> dict[str, Any]:
    body = report_json()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(report_json())
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ([], Code.REPORT_NOT_OBJECT, ""),
        (_without(["sent_at"]), Code.REPORT_FIELD_MISSING, "sent_at"),
        (_without(["devices", 0, "processes"]), Code.REPORT_FIELD_MISSING, "devices[0].processes"),
        (_with(["host"], "bad host!"), Code.REPORT_FIELD_TYPE, "host"),
        (_with(["sent_at"], "2026-12-01T09:00:00"), Code.REPORT_FIELD_TYPE, "sent_at"),
        (_with(["sent_at"], "yesterday"), Code.REPORT_FIELD_TYPE, "sent_at"),
        (_with(["devices", 0, "uuid"], "8f1c"), Code.REPORT_FIELD_TYPE, "devices[0].uuid"),
        (_with(["devices", 0, "index"], True), Code.REPORT_FIELD_TYPE, "devices[0].index"),
        (_with(["devices", 0, "total_mib"], 0), Code.REPORT_FIELD_TYPE, "devices[0].total_mib"),
        (_with(["devices", 0, "used_mib"], -1), Code.REPORT_FIELD_TYPE, "devices[0].used_mib"),
        (_with(["devices", 0, "used_mib"], 1.5), Code.REPORT_FIELD_TYPE, "devices[0].used_mib"),
        (_with(["devices", 0, "name"], ""), Code.REPORT_FIELD_TYPE, "devices[0].name"),
        (_with(["devices", 0, "processes", 0, "pid"], 0), Code.REPORT_FIELD_TYPE, "pid"),
        (_with(["devices", 0, "processes", 0, "user"], "a b"), Code.REPORT_FIELD_TYPE, "user"),
        (_with(["devices", 0, "processes", 0], 7), Code.REPORT_FIELD_TYPE, "processes[0]"),
        (_with(["devices"], {}), Code.REPORT_FIELD_TYPE, "devices"),
        (
            _with(["devices"], [report_json()["devices"][0]] * 2),
            Code.REPORT_DUPLICATE_DEVICE,
            UUID,
        ),
        (_with(["devices"], [{}] * (MAX_DEVICES + 1)), Code.REPORT_TOO_MANY, "devices"),
    ],
)
def test_a_malformed_report_is_refused_naming_the_field(body: Any, code: Code, names: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_report(body)
    assert caught.value.code is code
    assert names in str(caught.value)


def test_unknown_keys_are_ignored_so_the_contract_can_grow() -> None:
    body = report_json(agent_version="2.0")
    body["devices"][0]["temperature_c"] = 61
    assert parse_report(body) == parse_report(report_json())


def test_null_user_and_null_memory_are_kept() -> None:
    body = _with(["devices", 0, "processes"], [{"pid": 7, "user": None, "used_mib": None}])
    assert parse_report(body).devices[0].processes == (ProcessReading(7, None, None),)


_logins = st.one_of(st.none(), st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True))
_mib = st.integers(min_value=0, max_value=200_000)
_processes = st.lists(
    st.builds(ProcessReading, st.integers(1, 4_000_000), _logins, st.one_of(st.none(), _mib)),
    max_size=6,
)
_devices = st.lists(
    st.builds(
        DeviceReading,
        st.from_regex(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}", fullmatch=True),
        st.integers(0, 15),
        st.text("ABCDEFGHIJ -0123456789", min_size=1, max_size=40),
        st.integers(1, 200_000),
        _mib,
        _processes.map(tuple),
    ),
    max_size=8,
    unique_by=lambda d: d.uuid,
)


@given(_devices, st.datetimes(timezones=st.just(UTC)))
def test_what_the_agent_sends_reads_back_the_same(devices: list[DeviceReading], at) -> None:
    report = Report("gpu-host-1", at.replace(microsecond=0), tuple(devices))
    assert parse_report(report.to_json()) == report


@pytest.mark.parametrize(
    ("host", "index", "name"),
    [
        ("gpu-host-1", 0, "gpu-host-1-0"),
        ("GPU_Host.Lab", 3, "gpu_host.lab-3"),
        ("a" * 60, 1, "a" * 27 + "-1"),
        ("_", 0, "gpu-0"),  # nothing of the host's name is left to build on
    ],
)
def test_the_suggested_gpu_name_is_one_the_commands_accept(
    host: str, index: int, name: str
) -> None:
    device = DeviceInfo("GPU-1", host, index, "A100", 81920, 0, datetime(2026, 1, 1, tzinfo=UTC))
    assert device.suggested_gpu_name == name
