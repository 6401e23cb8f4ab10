"""Many workspaces: the OAuth install flow, a token per workspace, uninstalls, and isolation.

The bot runs as distributed (``oauth_bot``: ``SLACK_CLIENT_ID``/``SECRET``, no token of its own)
against the fake Slack, which knows two workspaces, each with its own bot token. Every workspace
is installed through the real flow: ``GET /slack/install``, then Slack's redirect with a code.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.booking import Actor
from bot.booking.queries import notification_channel
from bot.cli.main import main
from bot.core.phrases import Code
from bot.core.sentence import say
from bot.core.vocabulary import BookingStatus
from bot.core.wording import render
from bot.lifecycle.scheduler import LifecycleScheduler, start_lifecycle
from bot.runtime import assembly as assembly_module
from bot.runtime.assembly import build_notifier
from bot.runtime.config import Settings
from bot.runtime.oauth import InstalledClients
from bot.runtime.runner import serve
from handlers import ids
from handlers.wording import SlackText
from storage.models import DEFAULT_CHANNEL
from tests.conftest import ADMIN
from tests.e2e.conftest import SECRET, TEAM, Bot, answer_to, dump, submit
from tests.e2e.test_ops import free_port, unfreeze, wait_healthy  # noqa: F401 (unfreeze: a fixture)
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES, Call, FakeSlackWebAPI

TEAM_A, TEAM_B = TEAM, "T0002"
TOKENS = {TEAM_A: "xoxb-team-a", TEAM_B: "xoxb-team-b"}
ADMIN_B = "UBADMIN"
#: Who belongs to which workspace (Slack user ids are unique across workspaces).
MEMBERS = {ADMIN: TEAM_A, "UA": TEAM_A, ADMIN_B: TEAM_B, "UB": TEAM_B}


async def install(bot: Bot, team: str) -> None:
    await install_at(bot.url, bot.fake, team)


async def install_at(url: str, fake: FakeSlackWebAPI, team: str) -> None:
    """Install the app into ``team`` as a browser would: the install page, then the redirect."""
    code = f"code-{team}"
    fake.add_workspace(team, TOKENS[team], install_code=code)
    async with aiohttp.ClientSession(base_url=url) as browser:
        async with browser.get("/slack/install") as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.headers["Set-Cookie"].split(";")[0]  # Secure: sent by hand over http
        [state] = re.findall(r"state=([\w-]+)", html)
        assert "client_id=1111.2222" in html and "scope=commands" in html
        assert cookie.endswith(f"={state}")
        redirect = f"/slack/oauth_redirect?code={code}&state={state}"
        async with browser.get(redirect, headers={"Cookie": cookie}) as done:
            assert done.status == 200, await done.text()


def tokens_of(calls: list[Call]) -> set[str | None]:
    return {c.token for c in calls if c.method not in (*REPLIES, "oauth.v2.access")}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_install_stores_the_workspaces_token_and_its_requests_use_it(
    oauth_bot: Bot,
) -> None:
    bot = oauth_bot
    assert bot.store is not None
    await install(bot, TEAM_B)
    found = await bot.store.async_find_bot(enterprise_id=None, team_id=TEAM_B)
    assert found is not None and found.bot_token == TOKENS[TEAM_B]
    assert await bot.store.async_find_bot(enterprise_id=None, team_id=TEAM_A) is None

    bot.fake.clear()
    reply = await bot.command("list", user="UB", team=TEAM_B)
    assert reply.params["text"] == "Your bookings"
    assert bot.fake.calls_to("users.info")  # the request did call Slack, with B's token only
    assert tokens_of(bot.fake.calls) == {TOKENS[TEAM_B]}


@pytest.mark.usefixtures("unfreeze")
async def test_serve_installs_into_workspaces_and_posts_with_their_tokens(
    fake: FakeSlackWebAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifecycles: list[LifecycleScheduler] = []

    async def spy(*args: Any, **kwargs: Any) -> LifecycleScheduler:
        lifecycles.append(await start_lifecycle(*args, **kwargs))
        return lifecycles[-1]

    monkeypatch.setattr(assembly_module, "start_lifecycle", spy)
    port = free_port()
    settings = Settings.from_env(
        {
            "SLACK_CLIENT_ID": "1111.2222",
            "SLACK_CLIENT_SECRET": "client-secret",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "PORT": str(port),
            "GPUBOOK_CHANNEL": "CGPU",
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(f"{base}/healthz")
        await install_at(base, fake, TEAM_B)
        fake.set_user(ADMIN_B, is_admin=True)
        for text in ("admin gpu add rtx-0 24GB", "book rtx-0 4GB 10:00 for 1h served"):
            req = slack_req.slash_command(
                text, user_id=ADMIN_B, team_id=TEAM_B, response_url=fake.response_url(text)
            )
            status, _, body = await slack_req.post(base, req)
            assert status == 200
            await answer_to(fake, text, body)
        await lifecycles[0].sweep()  # the announcement, posted with B's token
        [post] = fake.calls_to("chat.postMessage")
        assert post.token == TOKENS[TEAM_B] and "served" in dump(post)
        assert tokens_of(fake.calls) == {TOKENS[TEAM_B]}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_an_install_redirect_without_the_browsers_state_is_refused(oauth_bot: Bot) -> None:
    bot = oauth_bot
    assert bot.store is not None
    bot.fake.add_workspace(TEAM_B, TOKENS[TEAM_B], install_code="c")
    async with (
        aiohttp.ClientSession(base_url=bot.url) as browser,
        browser.get("/slack/oauth_redirect?code=c&state=forged") as done,
    ):
        assert done.status >= 400
    assert bot.fake.calls_to("oauth.v2.access") == []
    assert await bot.store.async_find_bot(enterprise_id=None, team_id=TEAM_B) is None


async def test_a_workspace_that_is_not_installed_is_told_so_and_nothing_runs(
    oauth_bot: Bot,
) -> None:
    bot = oauth_bot
    reply = await bot.command("book rtx-0 4GB 10:00 for 1h job", user="UB", team=TEAM_B)
    assert reply.params["text"] == render(say(Code.NOT_INSTALLED), SlackText())
    assert await bot.service.list_bookings(Actor(ADMIN_B, TEAM_B), everyone=True) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_uninstalled"},
        {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [slack_req.BOT_USER_ID]}},
    ],
    ids=["app_uninstalled", "tokens_revoked"],
)
async def test_an_uninstall_removes_the_token_but_keeps_the_bookings(
    oauth_bot: Bot,
    backend: str,
    event: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = oauth_bot
    assert bot.store is not None
    await install(bot, TEAM_B)
    bot.fake.set_user(ADMIN_B, is_admin=True)
    await bot.command("admin gpu add rtx-0 24GB", user=ADMIN_B, team=TEAM_B)
    await bot.open_home("UB", team=TEAM_B)
    await bot.command("book rtx-0 4GB 10:00 for 1h kept", user="UB", team=TEAM_B)
    await bot.fake.wait_for(
        "views.publish", count=2, predicate=lambda c: c.params["user_id"] == "UB"
    )

    req = slack_req.event({**event, "event_ts": slack_req.now_ts()}, team_id=TEAM_B)
    assert await bot.send(req) == (200, "")
    await _until_uninstalled(bot)

    bot.fake.clear()
    refused = await bot.command("list", user="UB", team=TEAM_B)
    assert refused.params["text"] == render(say(Code.NOT_INSTALLED), SlackText())
    assert tokens_of(bot.fake.calls) == set(), bot.fake.describe_calls()
    # The notice owed for the booking has no one to go to: closed, never posted.
    stats = await build_notifier(
        bot.service.db, InstalledClients(bot.store, bot.fake.base_url), bot.service.clock
    ).flush()
    assert (stats.posts, stats.skipped) == (0, stats.claimed) and stats.claimed > 0
    # The bookings stay, and the command line still exports them.
    [kept] = await bot.service.list_bookings(
        Actor(ADMIN_B, TEAM_B), everyone=True, statuses=list(BookingStatus)
    )
    assert kept.task == "kept"
    if backend == "sqlite":  # the command line reaches the tests' PostgreSQL schema by no URL
        assert await exported_tasks(bot, TEAM_B, tmp_path, monkeypatch) == ["kept"]


async def exported_tasks(
    bot: Bot, team: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The tasks `gpubook export` writes with ``GPUBOOK_TEAM=team`` (its own event loop)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", bot.service.db.url)
    monkeypatch.setenv("GPUBOOK_TEAM", team)
    out = tmp_path / f"export-{team}.json"
    argv = ["export", "--format", "json", "--output", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    return [row["task"] for row in json.loads(out.read_text())]


async def test_a_single_token_bot_acks_an_uninstall_and_keeps_serving(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    for event in ({"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {}}):
        req = slack_req.event({**event, "event_ts": slack_req.now_ts()})
        assert await bot.send(req) == (200, "")  # not 404: Slack would redeliver it
    assert "job" in dump(await bot.command("list"))


async def _until_uninstalled(bot: Bot) -> None:
    """The uninstall listener runs after its ack."""
    assert bot.store is not None
    for _ in range(200):
        if await bot.store.async_find_bot(enterprise_id=None, team_id=TEAM_B) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the workspace's token was not removed")


# ---------------------------------------------------------------------------- isolation


def _leaks(call: Call, other: str) -> bool:
    """Whether ``call`` shows anything of the workspace whose task is ``other`` (or its people)."""
    text = dump(call)
    return other in text or any(
        f"<@{user}>" in text for user, team in MEMBERS.items() if team == _team_of(other)
    )


def _team_of(task: str) -> str:
    return TEAM_A if task == "alpha-task" else TEAM_B


def _named_user(call: Call) -> str | None:
    return call.params.get("user") or call.params.get("user_id")


async def test_two_workspaces_never_read_or_change_each_others_data(
    oauth_bot: Bot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = oauth_bot
    assert bot.store is not None
    await install(bot, TEAM_A)
    await install(bot, TEAM_B)
    bot.fake.set_user(ADMIN_B, is_admin=True)
    # The same GPU name in both, and 20 GB of each 24 GB card held at the same time: a shared
    # card would refuse the second booking.
    cards: dict[str, Call] = {}
    for team, admin, user, task in (
        (TEAM_A, ADMIN, "UA", "alpha-task"),
        (TEAM_B, ADMIN_B, "UB", "bravo-task"),
    ):
        added = await bot.command("admin gpu add rtx-0 24GB", user=admin, team=team)
        assert "Added `rtx-0`" in added.params["text"]
        cards[team] = await bot.command(
            f"book rtx-0 20GB 10:00 for 2h {task}", user=user, team=team
        )
        assert "Booked" in cards[team].params["text"], dump(cards[team])
    alpha = Actor(ADMIN, TEAM_A)
    [a_booking] = await bot.service.list_bookings(alpha, everyone=True)
    before = (a_booking.status, a_booking.memory_mib, a_booking.end, a_booking.task)

    # Notifications: one post per workspace, each with its own token and only its own booking
    # (both workspaces announce in the same default channel id).
    clients = InstalledClients(bot.store, bot.fake.base_url)
    channel = bot.service.config.default_channel  # the bot's GPUBOOK_CHANNEL
    await build_notifier(
        bot.service.db, clients, bot.service.clock, default_channel=channel
    ).flush()
    posts = bot.fake.calls_to("chat.postMessage")
    assert sorted(p.token for p in posts) == sorted(TOKENS.values())
    for post in posts:
        own = "alpha-task" if post.token == TOKENS[TEAM_A] else "bravo-task"
        assert own in dump(post) and not _leaks(
            post, "bravo-task" if own == "alpha-task" else "alpha-task"
        )

    # Everything B reads shows none of A's bookings, GPUs' use or people.
    for text in (
        "list all",
        "status",
        "calendar rtx-0",
        "calendar week",
        "admin stats 30",
        "admin audit",
    ):
        seen = await bot.command(text, user=ADMIN_B, team=TEAM_B)
        assert not _leaks(seen, "alpha-task"), (text, dump(seen))
    home = await bot.open_home("UB", team=TEAM_B)
    assert "bravo-task" in dump(home) and not _leaks(home, "alpha-task")

    # Nothing B sends reaches A's booking: commands, buttons, A's own form submitted from B.
    for text in ("cancel 1", "extend 1 1h", "release 1", "edit 1"):
        refused = await bot.command(text, user=ADMIN_B, team=TEAM_B)
        assert "There is no booking #1" in refused.params["text"], text
    a_buttons = _button_values(cards[TEAM_A])  # an upcoming booking's: no Release button
    a_buttons.setdefault(ids.RELEASE, a_buttons[ids.CANCEL])
    for action in (ids.EXTEND, ids.CANCEL, ids.RELEASE, ids.EDIT):
        refused = await bot.click(action, a_buttons[action], user=ADMIN_B, team=TEAM_B)
        assert "There is no booking #1" in refused.params["text"], action
    form = (await bot.command_opening("edit 1", user="UA", team=TEAM_A)).params["view"]
    status, ack = await submit(bot, form, user=ADMIN_B, team=TEAM_B, memory="1GB", task="hijacked")
    assert status == 200 and "There is no booking #1" in json.dumps(ack), ack
    # B's admin reshapes, redirects and retires B's rtx-0 (cancelling B's booking): A's stands.
    for text in (
        "admin gpu edit rtx-0 size 48GB",
        "admin channel <#C0B|b>",
        "admin gpu retire rtx-0 cancel-future",
    ):
        changed = await bot.command(text, user=ADMIN_B, team=TEAM_B)
        assert not _leaks(changed, "alpha-task"), (text, dump(changed))
    [a_after] = await bot.service.list_bookings(alpha, everyone=True)
    assert (a_after.status, a_after.memory_mib, a_after.end, a_after.task) == before
    [a_gpu] = await bot.service.list_gpus(alpha)
    assert (a_gpu.name, a_gpu.capacity_mib) == ("rtx-0", 24 * 1024)
    async with bot.service.db.read() as session:
        # B's workspace channel is not A's: A's notices still go to the poster's default.
        assert await notification_channel(session, TEAM_A, None) == DEFAULT_CHANNEL

    # Exports hold each workspace's own bookings only.
    assert await exported_tasks(bot, TEAM_A, tmp_path, monkeypatch) == ["alpha-task"]
    assert await exported_tasks(bot, TEAM_B, tmp_path, monkeypatch) == ["bravo-task"]

    # Every call made for a person went out with that person's workspace's token.
    for call in bot.fake.calls:
        user = _named_user(call)
        if user in MEMBERS and call.method not in REPLIES:
            assert call.token == TOKENS[MEMBERS[user]], (call.method, user, call.token)


def _button_values(card: Call) -> dict[str, Any]:
    values = {}
    for block in card.params.get("blocks") or []:
        for element in [block.get("accessory"), *(block.get("elements") or [])]:
            if element and "value" in element:
                values[element["action_id"]] = element["value"]
    return values
