"""The NVML probe against a fake NVML: the real ``pynvml`` module with the functions the probe
calls patched, raising pynvml's own error classes. Nothing here needs a GPU."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from bot.agent.nvml import NvmlMissing, NvmlProbe, process_owner
from bot.core.agent_report import DeviceReading, ProcessReading

MIB = 1024 * 1024


@dataclass
class Card:
    uuid: str
    total_mib: int = 24576
    used_mib: int = 0
    #: (pid, MiB or None) listed as compute processes, then graphics ones.
    compute: list[tuple[int, int | None]] = field(default_factory=list)
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    name: str = "NVIDIA RTX 4090"
    lost: bool = False
    processes_error: type[Exception] | None = None
    mig: list[Card] = field(default_factory=list)


class FakeNvml:
    """The driver's view: cards by index; records which memory versions were asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cards: list[Card]) -> None:
        self.cards = cards
        self.memory_v2 = True
        self.processes_v3 = True
        self.init_error: Exception | None = None
        self.memory_calls: list[int | None] = []
        for name in dir(self):
            if name.startswith("nvml"):
                monkeypatch.setattr(pynvml, name, getattr(self, name))

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Card:
        return self.cards[index]

    def _live(self, card: Card) -> Card:
        if card.lost:
            raise pynvml.NVMLError_GpuIsLost()
        return card

    def nvmlDeviceGetUUID(self, card: Card) -> str:
        return self._live(card).uuid

    def nvmlDeviceGetName(self, card: Card) -> str:
        return self._live(card).name

    def nvmlDeviceGetMemoryInfo(self, card: Card, version: int | None = None) -> Any:
        self.memory_calls.append(version)
        if version is not None and not self.memory_v2:
            raise pynvml.NVMLError_FunctionNotFound()
        card = self._live(card)
        # v1 adds reserved memory to "used": a probe mixing versions would show it.
        used = card.used_mib + (0 if version else 900)
        return SimpleNamespace(total=card.total_mib * MIB, used=used * MIB)

    def _processes(self, card: Card, listed: list[tuple[int, int | None]]) -> list[Any]:
        card = self._live(card)
        if card.processes_error is not None:
            raise card.processes_error()
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * MIB)
            for pid, mib in listed
        ]

    def nvmlDeviceGetComputeRunningProcesses_v3(self, card: Card) -> list[Any]:
        if not self.processes_v3:
            raise pynvml.NVMLError_FunctionNotFound()
        return self._processes(card, card.compute)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, card: Card) -> list[Any]:
        return self._processes(card, card.compute)

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, card: Card) -> list[Any]:
        if not self.processes_v3:
            raise pynvml.NVMLError_FunctionNotFound()
        return self._processes(card, card.graphics)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, card: Card) -> list[Any]:
        return self._processes(card, card.graphics)

    def nvmlDeviceGetMigMode(self, card: Card) -> list[int]:
        if not card.mig:
            raise pynvml.NVMLError_NotSupported()
        return [pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE]

    def nvmlDeviceGetMaxMigDeviceCount(self, card: Card) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, card: Card, slot: int) -> Card:
        if slot >= len(card.mig):
            raise pynvml.NVMLError_NotFound()
        return card.mig[slot]


OWNERS = {4242: "alice", 4243: "bob"}


def probe(fake: FakeNvml) -> NvmlProbe:
    reader = NvmlProbe(owner=OWNERS.get)
    reader.open()
    return reader


def test_cards_memory_and_processes_with_their_owners(monkeypatch: pytest.MonkeyPatch) -> None:
    card = Card(
        "GPU-aaaa",
        used_mib=20480,
        compute=[(4242, 19800), (4243, None), (999, 100)],
        graphics=[(4242, 50), (5000, 30)],
    )
    fake = FakeNvml(monkeypatch, [card])
    assert probe(fake).read() == (
        DeviceReading(
            "GPU-aaaa",
            0,
            "NVIDIA RTX 4090",
            24576,
            20480,
            (
                ProcessReading(4242, "alice", 19800),
                ProcessReading(4243, "bob", None),  # NVML could not tell: kept, not dropped
                ProcessReading(999, None, 100),  # the pid vanished: kept with no owner
                ProcessReading(5000, None, 30),  # a graphics process; pid 4242 counted once
            ),
        ),
    )
    assert fake.memory_calls == [pynvml.nvmlMemory_v2]


def test_old_drivers_get_v1_memory_for_every_card_and_v2_process_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeNvml(monkeypatch, [Card("GPU-a", compute=[(4242, 10)]), Card("GPU-b")])
    fake.memory_v2 = fake.processes_v3 = False
    devices = probe(fake).read()
    assert [d.used_mib for d in devices] == [900, 900]
    assert devices[0].processes == (ProcessReading(4242, "alice", 10),)
    # v2 is asked once; after it failed every card is read the same (v1) way.
    assert fake.memory_calls == [pynvml.nvmlMemory_v2, None, None]


def test_a_card_lost_mid_read_is_left_out_and_the_others_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeNvml(monkeypatch, [Card("GPU-a", lost=True), Card("GPU-b")])
    assert [d.uuid for d in probe(fake).read()] == ["GPU-b"]


@pytest.mark.parametrize("error", [pynvml.NVMLError_NoPermission, pynvml.NVMLError_NotSupported])
def test_a_refused_process_list_reports_the_card_without_processes(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    fake = FakeNvml(monkeypatch, [Card("GPU-a", used_mib=7, processes_error=error)])
    [device] = probe(fake).read()
    assert (device.used_mib, device.processes) == (7, ())


def test_mig_instances_are_reported_instead_of_their_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = Card(
        "GPU-parent",
        total_mib=81920,
        name="NVIDIA A100-SXM4-80GB",
        mig=[
            Card("MIG-1111", total_mib=9856, used_mib=5000, compute=[(4242, None)]),
            Card("MIG-2222", total_mib=9856),
        ],
    )
    fake = FakeNvml(monkeypatch, [parent])
    devices = probe(fake).read()
    assert [(d.uuid, d.total_mib, d.name) for d in devices] == [
        ("MIG-1111", 9856, "NVIDIA A100-SXM4-80GB MIG"),
        ("MIG-2222", 9856, "NVIDIA A100-SXM4-80GB MIG"),
    ]
    assert devices[0].processes == (ProcessReading(4242, "alice", None),)


@pytest.mark.parametrize(
    "error", [pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded]
)
def test_no_library_or_driver_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    fake = FakeNvml(monkeypatch, [])
    fake.init_error = error()
    with pytest.raises(NvmlMissing, match="install the NVIDIA driver, or .* --probe standin"):
        NvmlProbe().open()


def test_owners_are_unix_logins_and_a_vanished_pid_has_none() -> None:
    assert process_owner(os.getpid()) == getpass.getuser()
    assert process_owner(2**22 + 12345) is None
