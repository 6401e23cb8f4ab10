"""The stand-in probe: cards without a GPU, for trying the agent, the console's demo and tests.

Without a file it reports two idle 24 GB cards whose UUIDs derive from the host's name (stable
across runs, so binding them sticks). With a file it reports what the file says, re-read before
every report, so a test or a demo can start and stop "processes" by rewriting it. The file holds
the contract's ``devices`` list (see :mod:`bot.core.agent_report`)::

    [{"uuid": "GPU-standin-0", "index": 0, "name": "Stand-in", "total_mib": 24576,
      "used_mib": 9000, "processes": [{"pid": 1, "user": "alice", "used_mib": 9000}]}]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bot.core.agent_report import DeviceReading, parse_report

STANDIN_CARD_MIB = 24 * 1024
STANDIN_CARDS = 2


def standin_uuid(host: str, index: int) -> str:
    digest = hashlib.sha256(f"{host}/{index}".encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class StandinProbe:
    def __init__(self, host: str, path: Path | None = None) -> None:
        self.host = host
        self.path = path

    def open(self) -> None:
        if self.path is not None and not self.path.is_file():
            raise FileNotFoundError(f"the stand-in file {self.path} does not exist")

    def close(self) -> None:
        pass

    def read(self) -> tuple[DeviceReading, ...]:
        if self.path is None:
            return tuple(
                DeviceReading(standin_uuid(self.host, i), i, "Stand-in GPU", STANDIN_CARD_MIB, 0)
                for i in range(STANDIN_CARDS)
            )
        devices = json.loads(self.path.read_text(encoding="utf-8"))
        # Read through the contract, so a stand-in file can never send what the bot refuses.
        report = {"host": self.host, "sent_at": "2026-01-01T00:00:00Z", "devices": devices}
        return parse_report(report).devices
