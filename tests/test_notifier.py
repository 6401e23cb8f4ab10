"""The notifier against the fake Slack Web API: every message, threading, coalescing, failures.

Runs on SQLite and PostgreSQL. The real ``AsyncWebClient`` talks HTTP to the fake, so slack-sdk's
encoding and retry handlers are exercised; every posted payload is validated as Block Kit.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.booking import Actor, BookingChange, BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.lifecycle.notifier import Notifier, retry_delay
from bot.runtime.slack_client import build_client
from handlers import ids
from handlers.blocks.notifications import EMOJI
from handlers.blocks.notifications import render as render_notices
from storage.db import Database
from storage.models import Booking, Notification
from tests.conftest import ADMIN, CHANNEL, at
from tests.slackfake import Call, FakeSlackWebAPI
from tests.test_lifecycle import ALICE, BOB, add_gpu, book, booking_row, lifecycle_for, outbox

NASTY = "<!channel> <@U123> *bold* & more"
ESCAPED = "&lt;!channel&gt; &lt;@U123&gt; *bold* &amp; more"
_KIND_BY_EMOJI = {emoji: kind for kind, emoji in EMOJI.items()}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as api:
        yield api
        api.assert_all_valid()


@pytest.fixture
def client(fake: FakeSlackWebAPI) -> AsyncWebClient:
    return build_client("xoxb-test", fake.base_url)


def notifier_for(
    service: BookingService, client: AsyncWebClient, worker: str = "w1", **kwargs
) -> Notifier:
    kwargs.setdefault("default_channel", service.config.default_channel)
    kwargs.setdefault("render", render_notices)
    return Notifier(service.db, client, service.clock, worker_id=worker, **kwargs)


class Bot:
    """A lifecycle and a notifier sharing the test clock: ``sweep_at`` is one scheduler tick."""

    def __init__(self, service: BookingService, client: AsyncWebClient, **kwargs) -> None:
        self.service = service
        self.lifecycle = lifecycle_for(service)
        self.notifier = notifier_for(service, client, **kwargs)

    async def sweep_at(self, when) -> None:
        self.service.clock.set(when)
        await self.lifecycle.advance(when)
        await self.notifier.flush(when)


@pytest.fixture
def bot(service: BookingService, client: AsyncWebClient) -> Bot:
    return Bot(service, client)


def posts(fake: FakeSlackWebAPI, channel: str | None = None) -> list[Call]:
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if channel is None or c.params["channel"] == channel
    ]


def message_text(call: Call) -> str:
    """Everything a reader sees: the section texts (the ``text`` fallback only summarises)."""
    texts = [b["text"]["text"] for b in call.params.get("blocks") or [] if b.get("text")]
    return "\n".join(texts) or call.params["text"]


def mentions(calls: Sequence[Call]) -> Counter[tuple[str, int]]:
    """(kind, booking id) for every booking each message reports, across single and summary
    messages: the kind is the emoji that last opened a line, the ids are the ``#N`` after it."""
    seen: Counter[tuple[str, int]] = Counter()
    for call in calls:
        kind = None
        for line in message_text(call).splitlines():
            for emoji, name in _KIND_BY_EMOJI.items():
                if line.lstrip("*").startswith(emoji):
                    kind = name
            refs = [int(n) for n in re.findall(r"#(\d+)", line)]
            if line.lstrip("*").startswith(tuple(_KIND_BY_EMOJI)) and line.startswith("*"):
                refs = []  # a summary's headline: "*:arrow_forward: 3 bookings started on …*"
            seen.update((kind, n) for n in refs)
    return seen


# ---------------------------------------------------------------------------- each message


async def test_announcement_then_start_and_end_in_its_thread(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10), task="fine-tune llama")

    await bot.sweep_at(at(8))
    [announced] = posts(fake)
    assert announced.params["channel"] == CHANNEL and "thread_ts" not in announced.params
    assert "<@UALICE> booked *20 GB* on `a100-1`" in announced.params["text"]
    assert "fine-tune llama" in announced.params["text"] and f"#{booking.id}" in message_text(
        announced
    )
    row = await booking_row(service.db, booking.id)
    assert row.announce_channel == CHANNEL and row.announce_ts

    await bot.sweep_at(at(9))
    await bot.sweep_at(at(10))
    started, ended = posts(fake)[1:]
    assert started.params["thread_ts"] == ended.params["thread_ts"] == row.announce_ts
    assert "started" in started.params["text"] and "until" in started.params["text"]
    assert "ended" in ended.params["text"] and "*20 GB* free again" in ended.params["text"]
    assert mentions(posts(fake)) == Counter(
        {("announced", booking.id): 1, ("started", booking.id): 1, ("ended", booking.id): 1}
    )
    assert all(n.sent_at is not None and n.slack_ts for n in await outbox(service.db))


async def test_release_and_cancel_messages(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    running = await book(service, at(9), at(11))
    later = await book(service, at(12), at(13), actor=BOB)
    await bot.sweep_at(at(9))
    fake.clear()
    service.clock.set(at(9, 30))
    await service.release(ALICE, running.id)
    await bot.sweep_at(at(9, 30))
    [released] = posts(fake)
    assert "20 GB freed on `a100-1`" in released.params["text"]
    assert "was booked until" in released.params["text"]

    fake.clear()
    await service.cancel(BOB, later.id)
    await bot.sweep_at(at(9, 31))
    [cancelled] = posts(fake)
    assert "<@UBOB> cancelled *20 GB* on `a100-1`" in cancelled.params["text"]
    assert mentions(posts(fake)) == Counter({("cancelled", later.id): 1})


async def test_reminder_dm_has_extend_and_release_buttons_and_is_sent_once(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    await bot.sweep_at(at(9))
    fake.clear()

    await bot.sweep_at(at(9, 45))
    await bot.sweep_at(at(9, 50))

    [dm] = posts(fake)
    assert dm.params["channel"] == "UALICE"
    assert "ends" in dm.params["text"] and f"#{booking.id}" in dm.params["text"]
    [actions] = [b for b in dm.params["blocks"] if b["type"] == "actions"]
    buttons = {e["action_id"]: e["value"] for e in actions["elements"]}
    assert buttons == {ids.EXTEND: str(booking.id), ids.RELEASE: str(booking.id)}


async def test_a_reminder_overtaken_by_a_release_is_not_sent(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    await bot.sweep_at(at(9))
    await bot.lifecycle.advance(at(9, 45))  # reminder queued, not yet posted
    service.clock.set(at(9, 46))
    await service.release(ALICE, booking.id)
    fake.clear()

    stats = await bot.notifier.flush(at(9, 46))

    assert (stats.skipped, stats.sent) == (1, 1)
    assert [c.params["channel"] for c in posts(fake)] == [CHANNEL]  # the release message only
    [reminder] = await outbox(service.db, "reminder")
    assert reminder.sent_at is not None and reminder.slack_ts is None


async def test_owner_gets_a_dm_when_an_admin_changes_their_booking(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    await bot.sweep_at(at(8))
    fake.clear()

    await service.update(Actor(ADMIN), booking.id, BookingChange(memory="10GB"))
    await bot.sweep_at(at(8, 1))

    [dm] = posts(fake)
    assert dm.params["channel"] == "UALICE"
    assert f"<@{ADMIN}> edited your booking of *10 GB* on `a100-1`" in dm.params["text"]


async def test_announcements_can_be_turned_off(
    db: Database, clock: FrozenClock, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    config = ServiceConfig(admins=frozenset({ADMIN}), default_channel=CHANNEL, announce_new=False)
    service = BookingService(db, config, clock)
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    bot = Bot(service, client)

    await bot.sweep_at(at(8))
    assert posts(fake) == []
    await bot.sweep_at(at(9))
    [started] = posts(fake)
    assert "thread_ts" not in started.params
    assert mentions(posts(fake)) == Counter({("started", booking.id): 1})


async def test_user_text_is_escaped_in_every_message(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    """Scenario 13: a task that would ping the channel appears literally, single or summarised."""
    await add_gpu(service)
    first = await book(service, at(9), at(10), task=NASTY)
    await book(service, at(9), at(10), task=NASTY, actor=BOB)
    await bot.sweep_at(at(9))  # announcements and starts: one summary
    await bot.sweep_at(at(9, 45))  # two reminder DMs
    service.clock.set(at(9, 50))
    await service.release(ALICE, first.id)
    await bot.sweep_at(at(9, 50))  # one release message
    assert len(posts(fake)) == 4
    for call in posts(fake):
        for shown in (call.params["text"], message_text(call)):
            assert "<!channel>" not in shown and "<@U123>" not in shown
        assert ESCAPED in message_text(call)


# ---------------------------------------------------------------------------- coalescing


async def test_two_hundred_starts_become_one_message_per_channel(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service, "a100-1", "1000GB", channel="CA")
    await add_gpu(service, "a100-2", "1000GB", channel="CB")
    booked = [
        await book(service, at(9), at(10), gpu=f"a100-{1 + n % 2}", memory="5GB")
        for n in range(200)
    ]
    await bot.sweep_at(at(8))
    fake.clear()

    await bot.sweep_at(at(9))

    assert sorted(c.params["channel"] for c in posts(fake)) == ["CA", "CB"]
    assert mentions(posts(fake)) == Counter({("started", b.id): 1 for b in booked})
    for call in posts(fake):
        assert "100 bookings started on" in call.params["text"]
        assert "thread_ts" not in call.params


async def test_restart_catches_up_on_everything_missed(
    service: BookingService, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    """The bot is down from before the start until after the end: one sweep after the restart
    reports each booking announced, started and ended exactly once."""
    await add_gpu(service)
    booked = [await book(service, at(9), at(10), memory="1GB") for _ in range(5)]

    await Bot(service, client).sweep_at(at(11))  # a fresh process, after the whole window

    [summary] = posts(fake)
    expected = Counter({(k, b.id): 1 for b in booked for k in ("announced", "started", "ended")})
    assert mentions([summary]) == expected
    assert all(n.sent_at is not None for n in await outbox(service.db))


# ---------------------------------------------------------------------------- failures


async def test_rate_limited_post_is_retried_after_retry_after(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    await book(service, at(9), at(10))
    fake.fail_next("chat.postMessage", 429, retry_after=0)

    await bot.sweep_at(at(8))

    assert len(fake.calls_to("chat.postMessage", include_failed=True)) == 2
    assert len(posts(fake)) == 1
    [row] = await outbox(service.db)
    assert row.sent_at is not None and row.attempts == 1


async def test_server_error_is_retried_on_a_later_flush_and_never_doubled(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    fake.fail_next("chat.postMessage", 500)

    stats = await bot.notifier.flush(at(8))
    assert (stats.failed, stats.sent) == (1, 0)
    [row] = await outbox(service.db)
    assert row.sent_at is None and row.attempts == 1 and "500" in (row.last_error or "")
    assert row.claimed_by is None and row.due_at == at(8) + retry_delay(1)

    assert (await bot.notifier.flush(at(8))).claimed == 0  # backing off
    await bot.notifier.flush(at(8) + retry_delay(1))
    await bot.notifier.flush(at(8, 5))

    assert mentions(posts(fake)) == Counter({("announced", booking.id): 1})
    [row] = await outbox(service.db)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error is None


async def test_slack_error_is_recorded_and_retried_later(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    await book(service, at(9), at(10))
    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)

    await bot.notifier.flush(at(8))
    await bot.notifier.flush(at(8) + retry_delay(1))
    [row] = await outbox(service.db)
    assert (row.sent_at, row.attempts) == (None, 2)
    assert "channel_not_found" in (row.last_error or "")
    assert row.due_at == at(8) + retry_delay(1) + retry_delay(2)

    await bot.notifier.flush(row.due_at)
    assert len(posts(fake)) == 1


async def test_a_message_that_cannot_be_rendered_fails_alone(
    service: BookingService, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    """A bug in one builder must not hold up the other destinations' messages."""
    await add_gpu(service)
    booking = await book(service, at(9), at(10))  # announced in CHANNEL
    await service.cancel(Actor(ADMIN), booking.id)  # and a DM to its owner

    def broken_for_dms(notices, *, direct, now):
        if direct:
            raise KeyError("details")
        return render_notices(notices, direct=direct, now=now)

    notifier = notifier_for(service, client, render=broken_for_dms)
    stats = await notifier.flush(at(8))
    assert (stats.sent, stats.failed) == (2, 1)
    assert [c.params["channel"] for c in posts(fake)] == [CHANNEL]
    failed = [r for r in await outbox(service.db) if r.sent_at is None]
    assert [(r.channel, r.attempts) for r in failed] == [(booking.user_id, 1)]
    assert "KeyError" in (failed[0].last_error or "")


async def test_a_worker_killed_after_claiming_is_taken_over_once_its_lease_expires(
    service: BookingService, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    lease = timedelta(minutes=2)
    dead = notifier_for(service, client, "dead", lease=lease)
    survivor = notifier_for(service, client, "survivor", lease=lease)

    assert len(await dead.claim(at(8))) == 1  # ...and the process dies before posting

    assert (await survivor.flush(at(8, 1))).claimed == 0  # the lease still holds
    assert (await survivor.flush(at(8, 2) + timedelta(seconds=1))).sent == 1
    assert (await survivor.flush(at(8, 10))).claimed == 0
    assert (await dead.flush(at(8, 10))).claimed == 0

    assert mentions(posts(fake)) == Counter({("announced", booking.id): 1})
    [row] = await outbox(service.db)
    assert row.claimed_by == "survivor"


async def test_a_late_failure_never_releases_a_claim_another_worker_took_over(
    service: BookingService, client: AsyncWebClient
) -> None:
    """A post slower than the lease fails after a survivor has claimed the row: the survivor's
    claim stands (a release would let a third worker post it again)."""
    await add_gpu(service)
    await book(service, at(9), at(10))
    lease = timedelta(minutes=2)
    slow = notifier_for(service, client, "slow", lease=lease)
    survivor = notifier_for(service, client, "survivor", lease=lease)
    assert len(await slow.claim(at(8))) == 1
    assert len(await survivor.claim(at(8, 3))) == 1  # the slow worker's lease has lapsed

    await slow._failed(await outbox(service.db), at(8, 4), "HTTP 500")

    [row] = await outbox(service.db)
    assert (row.claimed_by, row.attempts, row.last_error) == ("survivor", 0, None)


async def test_two_notifiers_flushing_together_post_each_row_once(
    service: BookingService, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service, "a100-1", "1000GB", channel="CA")
    await add_gpu(service, "a100-2", "1000GB", channel="CB")
    booked = [
        await book(service, at(9), at(10), gpu=f"a100-{1 + n % 2}", memory="5GB") for n in range(40)
    ]
    first, second = (notifier_for(service, client, w, claim_limit=7) for w in ("a", "b"))
    for _ in range(4):
        await asyncio.gather(first.flush(at(8)), second.flush(at(8)))

    assert mentions(posts(fake)) == Counter({("announced", b.id): 1 for b in booked})
    async with service.db.read() as session:
        assert set(await session.scalars(select(Notification.claimed_by))) == {"a", "b"}
        assert all(b.announce_ts for b in (await session.scalars(select(Booking))).unique())


async def test_a_notice_written_without_a_default_channel_goes_to_the_bots(
    db: Database, clock: FrozenClock, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    """A booking made from the CLI, whose environment lacks GPUBOOK_CHANNEL, is announced where
    the bot (which has it) announces its own: the channel is chosen when the message is posted."""
    cli = BookingService(db, ServiceConfig(admins=frozenset({ADMIN})), clock)
    await add_gpu(cli)
    booking = await book(cli, at(9), at(10))
    bot = Notifier(db, client, clock, render=render_notices, default_channel=CHANNEL)

    stats = await bot.flush(at(8))

    [announced] = posts(fake)
    assert (stats.sent, announced.params["channel"]) == (1, CHANNEL)
    assert f"#{booking.id}" in announced.params["text"]
    assert (await booking_row(db, booking.id)).announce_channel == CHANNEL


async def test_without_any_default_channel_nobody_is_told_and_the_row_is_closed(
    db: Database, clock: FrozenClock, client: AsyncWebClient, fake: FakeSlackWebAPI
) -> None:
    cli = BookingService(db, ServiceConfig(admins=frozenset({ADMIN})), clock)
    await add_gpu(cli)
    await book(cli, at(9), at(10))
    silent = Notifier(db, client, clock, render=render_notices)

    stats = await silent.flush(at(8))

    assert (stats.skipped, posts(fake)) == (1, [])
    [row] = await outbox(db)
    assert (row.sent_at, row.last_error) == (at(8), "skipped: no channel configured")
    assert (await silent.flush(at(9))).claimed == 0


class _Lookup:
    """Per-workspace clients as many-workspace mode resolves them; ``down`` fails the lookup."""

    def __init__(self, clients: dict[str, AsyncWebClient]) -> None:
        self.clients = clients
        self.down = False

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        if self.down:
            raise ConnectionError("database unreachable")
        return self.clients.get(team_id)


async def test_each_workspace_is_posted_with_its_own_token_and_a_failed_lookup_is_retried(
    service: BookingService, fake: FakeSlackWebAPI
) -> None:
    other = "T0002"
    await add_gpu(service)
    await service.add_gpu(Actor(ADMIN, other), "a100-1", "80GB")
    await book(service, at(9), at(10))
    await book(service, at(9), at(10), actor=Actor(BOB.user_id, other))
    lookup = _Lookup(
        {
            ALICE.team_id: build_client("xoxb-a", fake.base_url),
            other: build_client("xoxb-b", fake.base_url),
        }
    )
    notifier = notifier_for(service, lookup)  # type: ignore[arg-type]

    lookup.down = True
    stats = await notifier.flush(at(8))
    assert (stats.failed, stats.sent, posts(fake)) == (2, 0, [])
    assert all(r.due_at == at(8) + retry_delay(1) for r in await outbox(service.db))

    lookup.down = False
    await notifier.flush(at(8) + retry_delay(1))
    # Both announce in the same channel id, but each in its own workspace: two posts.
    assert sorted((p.params["channel"], p.token) for p in posts(fake)) == [
        (CHANNEL, "xoxb-a"),
        (CHANNEL, "xoxb-b"),
    ]


async def test_notices_of_a_workspace_without_a_token_are_closed_unposted(
    service: BookingService, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    await book(service, at(9), at(10))
    notifier = notifier_for(service, _Lookup({}))  # type: ignore[arg-type]

    stats = await notifier.flush(at(8))
    assert (stats.skipped, stats.posts, posts(fake)) == (1, 0, [])
    [row] = await outbox(service.db)
    assert row.sent_at == at(8) and "uninstalled" in (row.last_error or "")
