"""End-to-end harness: the real bot (Bolt app + HTTP endpoint from ``bot.runtime.runner``) on a random
port, a fresh database, and the fake Slack Web API it talks to.

Requests are signed with the real current time (Bolt rejects stale signatures) while the service
runs on the frozen test clock (Mon 2026-01-05 08:00 UTC): the two are independent. Every test
ends by validating every Block Kit payload the bot sent, and by waiting for listeners still
running after their ack, so nothing outlives the database it uses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from bot.booking import Actor, BookingService
from bot.booking.queries import notification_channel
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus
from bot.runtime.app import GpubookApp, build_app
from bot.runtime.config import Settings
from bot.runtime.oauth import InstallationStore, oauth_app_options
from bot.runtime.runner import default_health_checks, start_http
from bot.runtime.slack_client import build_client
from handlers import ids
from handlers.ack import settle
from handlers.context import Deps
from handlers.users import UserDirectory
from tests.conftest import ADMIN
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import Call

TEAM = slack_req.TEAM_ID
SECRET = slack_req.DEFAULT_SIGNING_SECRET
#: The app's OAuth credentials when it is installed into many workspaces (``oauth_bot``).
OAUTH = Settings(slack_client_id="1111.2222", slack_client_secret="client-secret")
_names = itertools.count(1)


@pytest.fixture
def backend() -> str:
    """End-to-end tests run on SQLite; tests that must also run on PostgreSQL parametrize this."""
    return "sqlite"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as server:
        yield server


def dump(call: Call) -> str:
    """Everything a call carried, as text (for "the message mentions X" assertions)."""
    return json.dumps(call.params, ensure_ascii=False)


async def answer_to(fake: FakeSlackWebAPI, name: str, ack_body: str) -> Call:
    """The answer to the command of response_url ``name`` whose ack was ``ack_body``: the message
    the ack carried, else (it came later than the ack) what the bot posted to the response_url."""
    if ack_body:
        return fake.record_ack(name, json.loads(ack_body))
    [reply] = await fake.wait_for("response_url", predicate=lambda c: c.name == name)
    return reply


@dataclass
class Bot:
    """The running bot and helpers that talk to it like Slack does."""

    url: str
    fake: FakeSlackWebAPI
    service: BookingService
    deps: Deps
    #: Where the bot keeps each workspace's token (``oauth_bot`` only).
    store: InstallationStore | None = None

    @property
    def admin(self) -> Actor:
        return Actor(ADMIN, TEAM)

    async def add_gpu(self, name: str = "rtx-0", size: str = "24GB") -> None:
        await self.service.add_gpu(self.admin, name, size)

    async def workspace_channel(self) -> str | None:
        """Where a booking on a GPU without a channel of its own is announced."""
        async with self.service.db.read() as session:
            chosen = await notification_channel(session, TEAM, None)
        return chosen or self.service.config.default_channel

    async def bookings(self, *statuses: BookingStatus) -> list[BookingInfo]:
        return await self.service.list_bookings(
            self.admin, everyone=True, statuses=statuses or list(BookingStatus)
        )

    async def send(self, req: slack_req.SignedRequest) -> tuple[int, str]:
        """POST a signed request; the ack must be an immediate 200 unless the test says so."""
        status, _, body = await slack_req.post(self.url, req)
        return status, body

    async def command(
        self, text: str, *, user: str = "UA", channel: str = "C1", team: str = TEAM
    ) -> Call:
        """Run `/gpubook <text>` and return its answer: the message its ack carried, else what
        the bot posted to the response_url."""
        name = f"cmd-{next(_names)}"
        req = slack_req.slash_command(
            text,
            user_id=user,
            channel_id=channel,
            team_id=team,
            response_url=self.fake.response_url(name),
        )
        status, body = await self.send(req)
        assert status == 200, body
        return await self.answer(name, body)

    async def answer(self, name: str, ack_body: str) -> Call:
        return await answer_to(self.fake, name, ack_body)

    async def command_opening(self, text: str, *, user: str = "UA", team: str = TEAM) -> Call:
        """Run a `/gpubook` that opens a form; return the ``views.open`` call for its trigger."""
        req = slack_req.slash_command(
            text, user_id=user, team_id=team, response_url=self.fake.response_url()
        )
        assert await self.send(req) == (200, "")
        trigger = req.payload["trigger_id"]
        [opened] = await self.fake.wait_for(
            "views.open", predicate=lambda c: c.params.get("trigger_id") == trigger
        )
        return opened

    async def open_home(self, user: str = "UA", *, team: str = TEAM) -> Call:
        """Open the user's App Home tab as Slack does; from then on changes rebuild it too.
        Returns the Home published for the open."""

        def mine(call: Call) -> bool:
            return call.params["user_id"] == user

        before = len([c for c in self.fake.calls_to("views.publish") if mine(c)])
        req = slack_req.event(slack_req.app_home_opened(user), team_id=team)
        assert await self.send(req) == (200, "")
        [*_, home] = await self.fake.wait_for("views.publish", count=before + 1, predicate=mine)
        return home

    async def click(
        self, action_id: str, value: str, *, user: str = "UA", team: str = TEAM, **kwargs: Any
    ) -> Call:
        """Click a button in a message; return the bot's answer through the response_url."""
        name = f"click-{next(_names)}"
        req = slack_req.block_action(
            action_id,
            value,
            user_id=user,
            team_id=team,
            response_url=self.fake.response_url(name),
            **kwargs,
        )
        assert await self.send(req) == (200, "")
        [reply] = await self.fake.wait_for("response_url", predicate=lambda c: c.name == name)
        return reply


async def _settle() -> None:
    """Wait for the listeners' work still running after their ack."""
    await settle(5)


@pytest.fixture
def deps_options() -> dict[str, Any]:
    """Extra ``Deps`` fields for the bot; a test overrides them with
    ``@pytest.mark.parametrize("deps_options", [{...}])`` (e.g. a short submit deadline)."""
    return {}


@pytest.fixture
async def bot(
    fake: FakeSlackWebAPI, service: BookingService, deps_options: dict[str, Any]
) -> AsyncIterator[Bot]:
    deps = Deps(service=service, users=UserDirectory(), **deps_options)
    app = build_app(deps, token="xoxb-test", signing_secret=SECRET, api_url=fake.base_url)
    async for running in _serve(app, Bot("", fake, service, deps)):
        yield running


@pytest.fixture
async def oauth_bot(fake: FakeSlackWebAPI, service: BookingService) -> AsyncIterator[Bot]:
    """The bot as installed into many workspaces (OAuth), in none yet: no token of its own."""
    deps = Deps(service=service, users=UserDirectory())
    store = InstallationStore(str(OAUTH.slack_client_id), service.db)
    client = build_client(None, fake.base_url)
    oauth = oauth_app_options(OAUTH, store, client)
    app = build_app(deps, token=None, signing_secret=SECRET, client=client, oauth=oauth)
    async for running in _serve(app, Bot("", fake, service, deps, store)):
        yield running


async def _serve(app: GpubookApp, bot: Bot) -> AsyncIterator[Bot]:
    """``bot`` served over HTTP on a free port until the test ends."""
    runner: web.AppRunner = await start_http(
        app, default_health_checks(bot.service.db), host="127.0.0.1", port=0, service=bot.service
    )
    bot.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield bot
    await _settle()
    await bot.deps.homes.drain()
    await runner.cleanup()
    await bot.deps.users.close()
    bot.fake.assert_all_valid()


def _initial(element: dict[str, Any]) -> Any:
    if element["type"] == "static_select":
        return (element.get("initial_option") or {}).get("value")
    if element["type"] == "datetimepicker":
        return element.get("initial_date_time")
    return element.get("initial_value")


def form_state(view: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``state.values`` as Slack would submit ``view``: its initial values, overridden by block id.

    Uses the view's real action ids, so a mismatch between builder and listener shows up here.
    """
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        value = values[block_id] if block_id in values else _initial(element)
        if element["type"] == "static_select":
            option = {"text": {"type": "plain_text", "text": str(value)}, "value": value}
            entry = {"type": "static_select", "selected_option": option if value else None}
        elif element["type"] == "datetimepicker":
            entry = {"type": "datetimepicker", "selected_date_time": value}
        elif element["type"] in ("multi_static_select", "checkboxes"):
            chosen = [{"text": {"type": "plain_text", "text": v}, "value": v} for v in value or []]
            entry = {"type": element["type"], "selected_options": chosen}
        elif element["type"] == "datepicker":
            entry = {"type": "datepicker", "selected_date": value}
        else:
            entry = {"type": "plain_text_input", "value": value}
        state[block_id] = {element["action_id"]: entry}
    return state


async def submit(
    bot: Bot, view: dict[str, Any], *, user: str = "UA", team: str = TEAM, **values: Any
) -> tuple[int, dict[str, Any]]:
    """Submit a form the bot opened; return the HTTP status and the ack's JSON ({} when empty)."""
    req = slack_req.view_submission(
        view["callback_id"],
        form_state(view, **values),
        private_metadata=view.get("private_metadata", ""),
        user_id=user,
        team_id=team,
        blocks=view["blocks"],
    )
    status, body = await bot.send(req)
    return status, json.loads(body) if body else {}


async def choose_gpu(bot: Bot, view: dict[str, Any], gpu: str, **typed: Any) -> dict[str, Any]:
    """Pick ``gpu`` in a shown form whose inputs hold their initial values but for ``typed``;
    return the form the bot updates it to."""
    done = len(bot.fake.calls_to("views.update"))
    shown = {**view, "id": "V1", "hash": f"h{done}"}
    shown["state"] = {"values": form_state(view, **{"gpu": gpu, **typed})}
    option = {"text": {"type": "plain_text", "text": gpu}, "value": gpu}
    req = slack_req.block_action(
        ids.MODAL_GPU_SELECT, user_id="UA", view=shown, selected_option=option
    )
    assert await bot.send(req) == (200, "")
    *_, update = await bot.fake.wait_for("views.update", count=done + 1)
    return dict(update.params["view"])
