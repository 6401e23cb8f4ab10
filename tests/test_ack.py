"""A slash command's answer in its ack, unless another command is being answered."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.booking import BookingService
from handlers.ack import COMMANDS, settle
from handlers.blocks.common import Message
from handlers.context import Deps
from handlers.pipeline import Incoming, Plan, Request, serve
from handlers.users import UserDirectory


class Client:
    """The Web API calls the pipeline makes here: the asker's profile, and a DM answer."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.post_seen = asyncio.Event()

    async def users_info(self, *, user: str) -> dict[str, Any]:
        return {"ok": True, "user": {"id": user, "tz": "UTC"}}

    async def chat_postMessage(self, *, channel: str, text: str, blocks: Any) -> None:
        self.posted.append(text)
        self.post_seen.set()


class Acks:
    """An ack that records what each call carried."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def answering(text: str, until: asyncio.Event | None = None) -> Plan:
    async def work(request: Request) -> Message:
        if until is not None:
            await until.wait()
        return Message(text, [])

    return Plan(work)


async def test_a_command_answered_while_another_is_acks_at_once_and_answers_in_turn(
    service: BookingService,
) -> None:
    deps = Deps(service=service, users=UserDirectory(), answer_in_ack_within=60)
    client, released = Client(), asyncio.Event()
    first_ack, second_ack = Acks(), Acks()

    def incoming(user: str) -> Incoming:
        return Incoming(None, user, None, {})

    first = asyncio.create_task(
        serve(
            first_ack,
            deps,
            client,
            incoming("U1"),
            lambda: answering("first", released),
            answer_in_ack=True,
        )  # type: ignore[arg-type]
    )
    await asyncio.sleep(0)  # the first is being answered now
    assert COMMANDS.busy

    await serve(
        second_ack, deps, client, incoming("U2"), lambda: answering("second"), answer_in_ack=True
    )  # type: ignore[arg-type]
    assert second_ack.calls == [{}]  # acked at once, empty; its work waits for the first's
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.posted == [] and deps.answering.locked()

    released.set()
    await asyncio.wait_for(first, 5)
    assert first_ack.calls == [{"text": "first", "blocks": [], "response_type": "ephemeral"}]
    await asyncio.wait_for(client.post_seen.wait(), 5)
    assert client.posted == ["second"]  # answered apart, in its turn
    await settle(5)
    assert not COMMANDS.busy


async def test_a_command_alone_whose_answer_is_late_acks_empty_and_answers_later(
    service: BookingService,
) -> None:
    deps = Deps(service=service, users=UserDirectory(), answer_in_ack_within=0.01)
    client, released, acks = Client(), asyncio.Event(), Acks()
    await serve(
        acks,
        deps,
        client,
        Incoming(None, "U1", None, {}),
        lambda: answering("late", released),
        answer_in_ack=True,
    )  # type: ignore[arg-type]
    assert acks.calls == [{}]
    released.set()
    await asyncio.wait_for(client.post_seen.wait(), 5)
    assert client.posted == ["late"]
    await settle(5)
