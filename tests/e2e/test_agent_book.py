"""POST /agent/book and the bookings in the answer to POST /agent/report, over real HTTP: what the
agent on a host relies on for `gpubook run`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.agent.desk import Desk
from bot.agent.sender import AgentLoop, Sender
from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading
from bot.core.clock import FrozenClock
from bot.core.host_bookings import parse_host_bookings
from bot.runtime.agent_book import AGENT_BOOK_PATH
from bot.runtime.agent_endpoint import AGENT_REPORT_PATH
from bot.runtime.runner import start_http
from tests.conftest import T0
from tests.e2e.test_agent_endpoint import post
from tests.test_agent_desk import as_alice, ask, socket_path
from tests.test_agent_report import UUID, report_json

__all__ = ["socket_path"]  # the fixture, used here too

ALICE = Actor("UALICE")


@pytest.fixture
async def base(service: BookingService) -> AsyncIterator[str]:
    runner: web.AppRunner = await start_http(None, {}, host="127.0.0.1", port=0, service=service)
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def token(service: BookingService, admin: Actor) -> str:
    await service.add_gpu(admin, "a100", "80GB")
    await service.edit_gpu(admin, "a100", device_uuid=UUID)
    await service.link_login(ALICE, "alice")
    return (await service.create_agent_token(admin, "gpu-host-1"))[1]


async def test_the_report_answer_carries_the_hosts_bookings(
    base: str, token: str, service: BookingService
) -> None:
    booking = await service.create(
        ALICE, gpu="a100", memory="20GB", start=T0, end=T0 + timedelta(hours=1), task="t"
    )
    status, answer = await post(base + AGENT_REPORT_PATH, report_json(), token=token)
    assert status == 200 and answer["unbound"] == []
    known = parse_host_bookings(answer["host_bookings"])
    assert [(c.gpu, c.total_mib) for c in known.cards] == [("a100", 81920)]
    assert [(b.id, b.logins, b.memory_mib) for b in known.bookings] == [
        (booking.id, ("alice",), 20 * 1024)
    ]


async def test_booking_from_the_host_books_for_the_linked_user(
    base: str, token: str, service: BookingService, admin: Actor
) -> None:
    url = base + AGENT_BOOK_PATH
    await post(base + AGENT_REPORT_PATH, report_json(), token=token)
    request = {"login": "alice", "memory": "8GB", "seconds": 7200, "gpu": None}
    status, answer = await post(url, request, token=token)
    assert status == 200 and answer["ok"] is True
    known = parse_host_bookings(answer["host_bookings"])
    assert [(b.id, b.logins) for b in known.bookings] == [(answer["booking"], ("alice",))]
    entries = [e for e in await service.audit_log(admin) if e.booking_id == answer["booking"]]
    assert [(e.actor, e.action) for e in entries] == [("UALICE", "create")]


async def test_refusals_say_why_and_book_nothing(
    base: str, token: str, service: BookingService, admin: Actor
) -> None:
    url = base + AGENT_BOOK_PATH
    await post(base + AGENT_REPORT_PATH, report_json(), token=token)
    good = {"login": "alice", "memory": "8GB", "seconds": 7200, "gpu": None}
    assert (await post(url, good))[0] == 401
    assert (await post(url, good, token="gpb_forged"))[0] == 401
    status, answer = await post(url, {**good, "login": "mallory"}, token=token)
    assert status == 403 and "The login mallory is not linked to a Slack user" in answer["reason"]
    assert "the Slack command 'link mallory'" in answer["reason"]
    status, answer = await post(url, {**good, "memory": "90GB"}, token=token)
    assert status == 409 and answer["error"] == "no_gpu_big_enough"
    status, answer = await post(url, {**good, "gpu": "rtx-7"}, token=token)
    assert status == 404 and "rtx-7 is not a card of this host" in answer["reason"]
    for wrong in ({**good, "seconds": 0}, {**good, "seconds": "2h"}, {**good, "login": "a b"}, []):
        status, answer = await post(url, wrong, token=token)
        assert status == 422 and answer["ok"] is False
    assert (await post(url, "not json", token=token))[0] == 400
    assert [e for e in await service.audit_log(admin) if e.action == "create"] == []


class OneCard:
    """A probe reading the README's example card."""

    def open(self) -> None: ...
    def close(self) -> None: ...

    def read(self) -> tuple[DeviceReading, ...]:
        return (DeviceReading(UUID, 0, "NVIDIA A100-SXM4-80GB", 81920, 0),)


async def test_the_agent_learns_the_bookings_from_its_report_and_books_through_the_bot(
    base: str, token: str, service: BookingService, clock: FrozenClock, socket_path: Path
) -> None:
    sender = Sender(base, token)
    desk = Desk(sender.book, stale_after=timedelta(seconds=45), clock=clock)
    desk.user_of = as_alice
    loop = AgentLoop(OneCard(), sender, "gpu-host-1", timedelta(seconds=15), clock=clock)
    loop.learn = desk.learn
    server = await desk.serve(socket_path)
    try:
        assert (await loop.attempt()).ok
        answer = await ask(socket_path, ask="run")
        assert answer["ok"] is False and "80 GB is free on a100 now" in answer["reason"]
        booked = await ask(socket_path, ask="book", memory="8GB", seconds=3600)
        assert booked["ok"] is True and booked["env"]["CUDA_VISIBLE_DEVICES"] == UUID
        assert booked["env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.100"
        later = await service.create(
            ALICE, gpu="a100", memory="1GB", start=T0, end=T0 + timedelta(hours=3), task="t"
        )
        assert (await loop.attempt()).ok  # the next report brings the booking made in Slack
        answer = await ask(socket_path, ask="run")
        assert answer["env"]["GPUBOOK_BOOKING"].split(",")[-1] == str(later.id)
        assert answer["memory_mib"] == 9 * 1024
    finally:
        server.close()
        await sender.close()


async def test_a_token_revoked_after_it_reported_books_nothing(
    base: str, token: str, service: BookingService, admin: Actor
) -> None:
    assert (await post(base + AGENT_REPORT_PATH, report_json(), token=token))[0] == 200
    other = BookingService(service.db, service.config, service.clock)  # another process
    await other.revoke_agent_token(admin, "gpu-host-1")
    good = {"login": "alice", "memory": "8GB", "seconds": 7200, "gpu": None}
    status, answer = await post(base + AGENT_BOOK_PATH, good, token=token)
    assert (status, answer["error"]) == (401, "report_bad_token")
    assert not service.remembered_tokens
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + AGENT_BOOK_PATH, json=good, headers=headers) as response,
    ):  # a 401 says how to authenticate, as /agent/report's does
        assert (response.status, response.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert [e for e in await service.audit_log(admin) if e.action == "create"] == []


async def test_another_hosts_token_cannot_claim_a_card_to_see_or_book_it(
    base: str, token: str, service: BookingService, admin: Actor
) -> None:
    await service.create(
        ALICE, gpu="a100", memory="20GB", start=T0, end=T0 + timedelta(hours=1), task="t"
    )
    assert (await post(base + AGENT_REPORT_PATH, report_json(), token=token))[0] == 200
    intruder = (await service.create_agent_token(admin, "gpu-host-2"))[1]
    claim = report_json(host="gpu-host-2")
    status, answer = await post(base + AGENT_REPORT_PATH, claim, token=intruder)
    assert (status, answer["error"]) == (403, "report_device_elsewhere")
    assert f"The card {UUID} is reported by host gpu-host-1" in answer["reason"]
    assert "alice" not in json.dumps(answer)
    good = {"login": "alice", "memory": "8GB", "seconds": 7200, "gpu": None}
    status, answer = await post(base + AGENT_BOOK_PATH, good, token=intruder)
    assert (status, answer["error"]) == (404, "run_book_no_cards")
    assert [e.action for e in await service.audit_log(admin)].count("create") == 1
