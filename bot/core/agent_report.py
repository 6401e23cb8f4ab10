"""The report contract of ``POST /agent/report``: what a host says about its cards, read strictly.

The contract is fixed (and documented in the README) so that other reporters — a DCGM exporter
bridge, a Kubernetes device plugin — can report as well as ``gpubook agent``::

    {"host": "gpu-host-1", "sent_at": "2026-12-01T09:00:00Z",
     "devices": [{"uuid": "GPU-8f1c…", "index": 0, "name": "NVIDIA A100-SXM4-80GB",
                  "total_mib": 81920, "used_mib": 20480,
                  "processes": [{"pid": 4242, "user": "alice", "used_mib": 19800}]}]}

A process's ``user`` is ``null`` when its owner is unknown (the pid vanished between NVML's list
and the lookup), and its ``used_mib`` is ``null`` when NVML cannot tell (MIG without privileges,
Windows WDDM): such processes are reported, not dropped. Unknown extra keys are ignored, so the
contract can grow. Anything else malformed is refused as a whole with one sentence naming the
first offending field, and nothing of the report is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.errors import InputError
from bot.core.phrases import Code

#: The login under which processes of an unknown owner are counted.
UNKNOWN_USER = "?"
MAX_DEVICES = 64
MAX_PROCESSES = 4096
MAX_MIB = 16 * 1024 * 1024
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: NVML's ``GPU-<uuid>``, and MIG instances as ``MIG-<uuid>`` or ``MIG-GPU-<uuid>/<gi>/<ci>``.
DEVICE_UUID = re.compile(r"(GPU|MIG)-[A-Za-z0-9/-]{1,92}")
LOGIN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}")


def load_json(body: bytes | str) -> Any:
    """``json.loads``, where nesting deeper than the decoder recurses is a :class:`ValueError`
    like any other malformed body: it raises :class:`RecursionError`, which a caller refusing
    bad JSON by catching ``ValueError`` would let escape as a traceback."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None


@dataclass(frozen=True)
class ProcessReading:
    pid: int
    #: The Unix login, or ``None`` when the owner is unknown.
    user: str | None
    #: MiB, or ``None`` when NVML cannot tell.
    used_mib: int | None


@dataclass(frozen=True)
class DeviceReading:
    uuid: str
    index: int
    name: str
    total_mib: int
    used_mib: int
    processes: tuple[ProcessReading, ...] = ()

    def per_user(self) -> dict[str, int | None]:
        """Memory per login (:data:`UNKNOWN_USER` for unknown owners): the sum of what NVML could
        tell, or ``None`` when it could tell nothing for any of that login's processes."""
        totals: dict[str, int | None] = {}
        for process in self.processes:
            login = process.user or UNKNOWN_USER
            before = totals.get(login)
            if process.used_mib is None:
                totals.setdefault(login, None)
            else:
                totals[login] = (before or 0) + process.used_mib
        return totals


@dataclass(frozen=True)
class Report:
    host: str
    sent_at: datetime
    devices: tuple[DeviceReading, ...]

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (what the agent sends)."""
        return {
            "host": self.host,
            "sent_at": self.sent_at.isoformat().replace("+00:00", "Z"),
            "devices": [
                {
                    "uuid": d.uuid,
                    "index": d.index,
                    "name": d.name,
                    "total_mib": d.total_mib,
                    "used_mib": d.used_mib,
                    "processes": [
                        {"pid": p.pid, "user": p.user, "used_mib": p.used_mib} for p in d.processes
                    ],
                }
                for d in self.devices
            ],
        }


def valid_login(text: str) -> bool:
    """Whether ``text`` can be a Unix login as reports carry them (``?`` is never one)."""
    return LOGIN.fullmatch(text) is not None


def valid_device_uuid(text: str) -> bool:
    return DEVICE_UUID.fullmatch(text) is not None


def parse_report(data: Any) -> Report:
    """Read a decoded JSON body as a :class:`Report`, or refuse it (``InputError``)."""
    if not isinstance(data, Mapping):
        raise InputError(Code.REPORT_NOT_OBJECT)
    host = _text(data, "host", "host", _HOST, "a host name (letters, digits, . _ -)")
    sent_at = _instant(data, "sent_at")
    devices_raw = _list(data, "devices", "devices", MAX_DEVICES)
    devices = tuple(_device(d, f"devices[{n}]") for n, d in enumerate(devices_raw))
    seen: set[str] = set()
    for device in devices:
        if device.uuid in seen:
            raise InputError(Code.REPORT_DUPLICATE_DEVICE, uuid=device.uuid)
        seen.add(device.uuid)
    return Report(host, sent_at, devices)


def _device(raw: Any, where: str) -> DeviceReading:
    if not isinstance(raw, Mapping):
        raise InputError(Code.REPORT_FIELD_TYPE, path=where, expected="an object")
    uuid = _text(raw, "uuid", f"{where}.uuid", DEVICE_UUID, "an NVML UUID like GPU-8f1c…")
    index = _integer(raw, "index", f"{where}.index", high=1023)
    name = raw.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 96:
        raise InputError(
            Code.REPORT_FIELD_TYPE, path=f"{where}.name", expected="a name of 1 to 96 characters"
        )
    total = _integer(raw, "total_mib", f"{where}.total_mib", low=1)
    used = _integer(raw, "used_mib", f"{where}.used_mib")
    processes_raw = _list(raw, "processes", f"{where}.processes", MAX_PROCESSES)
    processes = tuple(_process(p, f"{where}.processes[{n}]") for n, p in enumerate(processes_raw))
    return DeviceReading(uuid, index, name, total, used, processes)


def _process(raw: Any, where: str) -> ProcessReading:
    if not isinstance(raw, Mapping):
        raise InputError(Code.REPORT_FIELD_TYPE, path=where, expected="an object")
    pid = _integer(raw, "pid", f"{where}.pid", low=1, high=2**32)
    user = raw.get("user")
    if user is not None and (not isinstance(user, str) or not LOGIN.fullmatch(user)):
        raise InputError(
            Code.REPORT_FIELD_TYPE, path=f"{where}.user", expected="a Unix login or null"
        )
    used = None if raw.get("used_mib") is None else _integer(raw, "used_mib", f"{where}.used_mib")
    return ProcessReading(pid, user, used)


def _field(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise InputError(Code.REPORT_FIELD_MISSING, path=where)
    return raw[key]


def _text(raw: Mapping[str, Any], key: str, where: str, form: re.Pattern[str], what: str) -> str:
    value = _field(raw, key, where)
    if not isinstance(value, str) or not form.fullmatch(value):
        raise InputError(Code.REPORT_FIELD_TYPE, path=where, expected=what)
    return value


def _integer(
    raw: Mapping[str, Any], key: str, where: str, *, low: int = 0, high: int = MAX_MIB
) -> int:
    value = _field(raw, key, where)
    # bool is an int in Python, never in the contract.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(
            Code.REPORT_FIELD_TYPE, path=where, expected=f"a whole number from {low} to {high}"
        )
    return value


def _list(raw: Mapping[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = _field(raw, key, where)
    if not isinstance(value, list):
        raise InputError(Code.REPORT_FIELD_TYPE, path=where, expected="a list")
    if len(value) > limit:
        raise InputError(Code.REPORT_TOO_MANY, path=where, count=len(value), limit=limit)
    return value


def _instant(raw: Mapping[str, Any], key: str) -> datetime:
    value = _field(raw, key, key)
    expected = "an ISO 8601 time with its offset, like 2026-12-01T09:00:00Z"
    if not isinstance(value, str):
        raise InputError(Code.REPORT_FIELD_TYPE, path=key, expected=expected)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(Code.REPORT_FIELD_TYPE, path=key, expected=expected) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError(Code.REPORT_FIELD_TYPE, path=key, expected=expected)
    return at
