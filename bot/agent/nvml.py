"""The NVML probe: every card, its memory and its compute processes, read through nvidia-ml-py.

Kept thin on purpose — one call per fact, each the documented one — so the first run on a real
card is likely to just work (``gpubook agent --once --print`` shows what it reads). Facts
verified in nvidia-ml-py 13.615's ``pynvml.py``:

- Memory: ``nvmlDeviceGetMemoryInfo(h, version=nvmlMemory_v2)`` (driver ≥ 515) counts what
  nvidia-smi shows; the v1 call adds reserved memory (~900 MB on an idle A100). v2 is tried once
  and, on ``FunctionNotFound`` / ``ArgumentVersionMismatch``, v1 is used for every card from then
  on: the two are never mixed in one reading.
- Processes: ``…ComputeRunningProcesses_v3`` then ``_v2`` (drivers < 510.39) — the unversioned
  call wraps v3 and turns ``FunctionNotFound`` into ``NVMLLibraryMismatchError``, so the
  versioned calls are made directly. Graphics processes are merged in (deduplicated by pid).
  ``usedGpuMemory`` is ``None`` where NVML cannot tell (WDDM, MIG without privileges): kept.
- Cards are keyed by UUID: NVML's index order can change across reboots. In MIG mode each MIG
  instance (its own UUID, memory and processes) is reported instead of its parent, since an
  instance is what a job runs on.
- A card that fails mid-read (hot-unplugged: ``GpuIsLost``, ``NotFound``) is left out of that
  reading; a process list NVML refuses (``NoPermission``, ``NotSupported``) is reported empty.

NVML reports host pids, so the agent runs on the host (or in the host's pid namespace); each pid
is mapped to its Unix user with psutil, and a pid gone meanwhile is reported with user ``null``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bot.core.agent_report import DeviceReading, ProcessReading

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


class NvmlMissing(Exception):
    """NVML cannot be used here (no library, no driver): the sentence says what to do."""


def process_owner(pid: int) -> str | None:
    """The Unix login running ``pid`` (psutil gives the uid as text when it has no name), or
    None when the process is gone or hidden from us."""
    import psutil

    try:
        return str(psutil.Process(pid).username())
    except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
        return None


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        raise NvmlMissing(
            "nvidia-ml-py is not installed; install the agent's extra: pip install 'gpubook[agent]'"
        ) from None
    return pynvml


class NvmlProbe:
    """Reads every card through NVML; ``open`` once, ``read`` per report, ``close`` at exit."""

    def __init__(self, owner: Callable[[int], str | None] = process_owner) -> None:
        self.nvml = _pynvml()
        self.owner = owner
        self._memory_v2 = True

    def open(self) -> None:
        nvml = self.nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise NvmlMissing(
                f"NVML is not usable on this machine ({error}): install the NVIDIA driver, or "
                "try the agent without a GPU with --probe standin"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()

    def read(self) -> tuple[DeviceReading, ...]:
        nvml = self.nvml
        devices: list[DeviceReading] = []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                devices.extend(self._card(handle, index))
            except (nvml.NVMLError_GpuIsLost, nvml.NVMLError_NotFound) as error:
                log.info("card %d left out of this reading: %s", index, error)
        return tuple(devices)

    def _card(self, handle: Any, index: int) -> list[DeviceReading]:
        """The card, or its MIG instances when MIG is on."""
        name = self._name(handle)
        instances = self._mig_instances(handle)
        if instances:
            return [self._reading(h, index, f"{name} MIG") for h in instances]
        return [self._reading(handle, index, name)]

    def _reading(self, handle: Any, index: int, name: str) -> DeviceReading:
        nvml = self.nvml
        uuid = str(nvml.nvmlDeviceGetUUID(handle))
        memory = self._memory(handle)
        return DeviceReading(
            uuid=uuid,
            index=index,
            name=name[:96],
            total_mib=max(int(memory.total) // _MIB, 1),
            used_mib=int(memory.used) // _MIB,
            processes=self._processes(handle),
        )

    def _name(self, handle: Any) -> str:
        try:
            return str(self.nvml.nvmlDeviceGetName(handle)) or "NVIDIA GPU"
        except self.nvml.NVMLError:
            return "NVIDIA GPU"

    def _memory(self, handle: Any) -> Any:
        nvml = self.nvml
        if self._memory_v2:
            try:
                return nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
            except (nvml.NVMLError_FunctionNotFound, nvml.NVMLError_ArgumentVersionMismatch):
                log.info("NVML has no v2 memory info (driver < 515); using v1 for every card")
                self._memory_v2 = False
        return nvml.nvmlDeviceGetMemoryInfo(handle)

    def _mig_instances(self, handle: Any) -> list[Any]:
        nvml = self.nvml
        try:
            current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        except nvml.NVMLError:  # NotSupported on cards without MIG
            return []
        if current != nvml.NVML_DEVICE_MIG_ENABLE:
            return []
        instances = []
        for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                instances.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot))
            except nvml.NVMLError:  # slots are filled from the start; the first gap ends them
                break
        return instances

    def _processes(self, handle: Any) -> tuple[ProcessReading, ...]:
        found: dict[int, int | None] = {}
        for kind in ("Compute", "Graphics"):
            for process in self._listed(handle, kind):
                pid, used = int(process.pid), process.usedGpuMemory
                if pid not in found:
                    found[pid] = None if used is None else int(used) // _MIB
        return tuple(ProcessReading(pid, self.owner(pid), used) for pid, used in found.items())

    def _listed(self, handle: Any, kind: str) -> list[Any]:
        nvml = self.nvml
        latest = getattr(nvml, f"nvmlDeviceGet{kind}RunningProcesses_v3")
        older = getattr(nvml, f"nvmlDeviceGet{kind}RunningProcesses_v2")
        try:
            try:
                return list(latest(handle))
            except nvml.NVMLError_FunctionNotFound:
                return list(older(handle))
        except (nvml.NVMLError_NoPermission, nvml.NVMLError_NotSupported) as error:
            log.debug("no %s processes for a card: %s", kind.lower(), error)
            return []
