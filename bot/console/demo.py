"""``gpubook console --demo``: demo GPUs, and a simulated host agent that misbehaves on cue.

A newcomer should see live usage at work within a minute without a GPU host: the demo binds its
GPUs to made-up card UUIDs, links the person at the console to a Unix login, books two things in
their name, and a simulated agent reports every few seconds through the very ingestion a real
agent's ``POST /agent/report`` ends in (:meth:`~bot.booking.BookingService.ingest_report`, with
a token of its own). What it reports makes each finding of the reconciliation happen:

- on ``rtx-0`` they hold 4 GB and use 10 GB: **over-use** (a DM offering to raise the booking);
- on ``rtx-1`` they use 6 GB and hold nothing: **unbooked use** (a DM offering to book it);
- on ``a100-1`` they hold 20 GB and run nothing: an **idle booking** (a DM with Release / Keep),
  after :data:`DEMO_IDLE_AFTER` instead of ``GPUBOOK_IDLE_AFTER``'s half hour;
- on ``a100-2`` someone nobody linked (``mallory``) uses 3 GB: shown by ``status``.

The DMs arrive through the lifecycle sweep and the notifier like any other, so the console
shows them as Slack would. The agent's loop only paces :meth:`DemoAgent.report_once`, which
tests call directly after moving a frozen clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, ProcessReading, Report, valid_login
from bot.core.clock import Clock
from bot.core.usage import HostIdentity

#: The simulated host, and how often it reports (well inside the silence threshold).
DEMO_HOST = "demo-host"
DEMO_REPORT_SECONDS = 5.0
#: How long a booking with nothing running counts as idle in the demo, so it shows in a minute.
DEMO_IDLE_AFTER = timedelta(seconds=30)
#: The Unix login of the person nobody linked.
STRANGER = "mallory"
GB = 1024


@dataclass(frozen=True)
class DemoGpu:
    name: str
    size: str
    description: str
    uuid: str
    total_mib: int


#: GPUs ``--demo`` adds to a database that has none, each bound to a made-up card.
DEMO_GPUS = tuple(
    DemoGpu(name, size, description, f"GPU-00000000-0000-4000-8000-00000000000{i}", total)
    for i, (name, size, description, total) in enumerate(
        (
            ("rtx-0", "24GB", "demo RTX 4090", 24 * GB),
            ("rtx-1", "24GB", "demo RTX 4090", 24 * GB),
            ("a100-1", "80GB", "demo A100", 80 * GB),
            ("a100-2", "80GB", "demo A100", 80 * GB),
        )
    )
)


def demo_login(name: str) -> str:
    """The console user's Unix login in the demo: their name when it can be one."""
    return name if valid_login(name) and name != STRANGER else "you"


class DemoAgent:
    """The simulated agent: one report per call, the scenario of the module docstring."""

    def __init__(
        self, service: BookingService, identity: HostIdentity, login: str, clock: Clock
    ) -> None:
        self.service = service
        self.identity = identity
        self.login = login
        self.clock = clock

    def readings(self) -> tuple[DeviceReading, ...]:
        use = {
            "rtx-0": (self.login, 10 * GB),
            "rtx-1": (self.login, 6 * GB),
            "a100-2": (STRANGER, 3 * GB),
        }
        cards = []
        for index, gpu in enumerate(DEMO_GPUS):
            processes = ()
            if gpu.name in use:
                login, mib = use[gpu.name]
                processes = (ProcessReading(4000 + index, login, mib),)
            used = sum(p.used_mib or 0 for p in processes)
            cards.append(
                DeviceReading(gpu.uuid, index, gpu.description, gpu.total_mib, used, processes)
            )
        return tuple(cards)

    async def report_once(self) -> None:
        report = Report(DEMO_HOST, self.clock(), self.readings())
        await self.service.ingest_report(self.identity, report)

    async def run(self, every: float = DEMO_REPORT_SECONDS) -> None:
        """Report every ``every`` seconds until cancelled (the console's close does)."""
        while True:
            await self.report_once()
            await asyncio.sleep(every)


async def seed_demo(
    service: BookingService, team_id: str, user_id: str, login: str, *, simulate: bool
) -> tuple[list[str], DemoAgent | None]:
    """Add the demo GPUs, bound to their cards, to a database without GPUs; with ``simulate``
    also the user's login, two bookings in their name and an agent token. Returns notes to print
    and the agent (None: not simulating, or the database already had GPUs).

    A database an earlier ``--demo`` seeded (its GPUs bound to the demo's cards) gets its
    simulated agent back, with a new token: otherwise the demo's short idle time would flag every
    booking idle once the earlier run's reports went silent."""
    admin = Actor("console", team_id, is_workspace_admin=True)
    gpus = await service.list_gpus(admin, include_retired=True)
    if gpus:
        bound = {(gpu.name, gpu.device_uuid) for gpu in gpus}
        if not simulate or any((gpu.name, gpu.uuid) not in bound for gpu in DEMO_GPUS):
            return [], None
        agent = await _demo_agent(service, admin, login)
        return [f"The simulated agent on {DEMO_HOST} reports again."], agent
    for gpu in DEMO_GPUS:
        await service.add_gpu(admin, gpu.name, gpu.size, gpu.description)
        await service.edit_gpu(admin, gpu.name, device_uuid=gpu.uuid)
    names = ", ".join(f"{gpu.name} ({gpu.size})" for gpu in DEMO_GPUS)
    notes = [f"Added demo GPUs: {names}."]
    if not simulate:
        return notes, None
    await service.link_login(admin, login, user_id)
    now = service.clock()
    hour = now + timedelta(hours=1)
    person = Actor(user_id, team_id)  # their own bookings, as if they had typed them
    for gpu, memory, task in (("rtx-0", 4 * GB, "demo: runs over"), ("a100-1", 20 * GB, "demo")):
        await service.create(person, gpu=gpu, memory=memory, start=now, end=hour, task=task)
    agent = await _demo_agent(service, admin, login)
    notes.append(
        f"A simulated agent on {DEMO_HOST} reports every {DEMO_REPORT_SECONDS:.0f} s. You are "
        f"Unix login `{login}`: you hold 4 GB on rtx-0 but use 10 GB, use 6 GB on rtx-1 without "
        f"a booking, and run nothing on a100-1 where you hold 20 GB (idle after "
        f"{DEMO_IDLE_AFTER.seconds} s here). Watch your DMs; `status` shows it all."
    )
    return notes, agent


async def _demo_agent(service: BookingService, admin: Actor, login: str) -> DemoAgent:
    _, secret = await service.create_agent_token(admin, DEMO_HOST)
    identity = await service.authenticate_agent(secret)
    assert identity is not None
    return DemoAgent(service, identity, login, service.clock)
