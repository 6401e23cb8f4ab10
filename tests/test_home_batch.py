"""The App Homes of one refresh batch share their "GPUs now", and only within the batch and
when it is the same for everyone."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.booking import Actor, BookingService
from bot.core.clock import FrozenClock
from bot.core.pool import SHOWN_CARDS
from handlers.context import Deps
from handlers.home import publish_home
from handlers.home_refresh import Batch
from handlers.users import UserDirectory

HOUR = timedelta(hours=1)
UA, UB, UC = Actor("UA"), Actor("UB"), Actor("UC", "T2")


class Published:
    """Stands in for Slack's Web API: the last Home published to each user, as JSON text."""

    def __init__(self) -> None:
        self.homes: dict[str, str] = {}

    async def views_publish(self, *, user_id: str, view: dict[str, Any]) -> None:
        self.homes[user_id] = json.dumps(view)


@pytest.fixture
def status_reads(service: BookingService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The workspaces whose pool status was read, one entry per read."""
    reads: list[str] = []
    pool_status = service.pool_status

    async def counted(actor: Actor, *args: Any, **kwargs: Any) -> Any:
        reads.append(actor.team_id)
        return await pool_status(actor, *args, **kwargs)

    monkeypatch.setattr(service, "pool_status", counted)
    return reads


async def test_one_batch_reads_the_gpu_lines_once_per_workspace_and_each_own_part(
    service: BookingService, clock: FrozenClock, admin: Actor, status_reads: list[str]
) -> None:
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.create(UA, gpu="rtx-0", memory="4GB", start=clock(), end=clock() + HOUR, task="a")
    deps, slack = Deps(service, UserDirectory()), Published()
    batch = Batch()
    for who in (UA, UB, UC):
        await publish_home(deps, slack, who, batch)  # type: ignore[arg-type]
    assert status_reads == [UA.team_id, "T2"]
    assert "4/24 GB" in slack.homes["UA"] and "4/24 GB" in slack.homes["UB"]
    assert "no GPUs yet" in slack.homes["UC"]  # another workspace's GPUs are not shared
    assert "#1" in slack.homes["UA"] and "#1" not in slack.homes["UB"]


async def test_the_next_batch_shows_a_change_made_after_the_last_one_read(
    service: BookingService, clock: FrozenClock, admin: Actor, status_reads: list[str]
) -> None:
    await service.add_gpu(admin, "rtx-0", "24GB")
    deps, slack = Deps(service, UserDirectory()), Published()
    first = Batch()
    await publish_home(deps, slack, UA, first)  # type: ignore[arg-type]
    assert "0/24 GB" in slack.homes["UA"]
    await service.create(UB, gpu="rtx-0", memory="6GB", start=clock(), end=clock() + HOUR, task="b")
    await publish_home(deps, slack, UB, Batch())  # type: ignore[arg-type]
    assert "6/24 GB" in slack.homes["UB"] and "#1" in slack.homes["UB"]
    assert len(status_reads) == 2
    await publish_home(deps, slack, UA)  # type: ignore[arg-type]  # opening reads afresh too
    assert "6/24 GB" in slack.homes["UA"]


async def test_a_pool_larger_than_a_home_shows_is_read_for_each_person(
    service: BookingService, clock: FrozenClock, admin: Actor, status_reads: list[str]
) -> None:
    for n in range(SHOWN_CARDS + 1):
        await service.add_gpu(admin, f"gpu-{n:02d}", "24GB")
    # UA holds memory on the card with the least room: shown first to UA, to nobody else.
    await service.create(
        UA, gpu="gpu-07", memory="4GB", start=clock(), end=clock() + HOUR, task="a"
    )
    deps, slack = Deps(service, UserDirectory()), Published()
    batch = Batch()
    for who in (UA, UB):
        await publish_home(deps, slack, who, batch)  # type: ignore[arg-type]
    assert status_reads == [UA.team_id, UB.team_id]
    assert "gpu-07" in slack.homes["UA"] and "gpu-07" not in slack.homes["UB"]
