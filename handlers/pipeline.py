"""The one path every interactive request takes: slash commands, buttons and form submissions.

Each listener only reads its payload into an :class:`Incoming` and says what the request will
do (a :class:`Plan`); the steps that must be the same everywhere happen here, in this order:

1. ``ack()`` at once, so Slack never shows a timeout — or, for a slash command, with its answer
   when that is ready soon enough (``handlers.ack``);
2. the asker's profile: a short wait (``lookup_timeout``) when the request opens a form, because
   its trigger_id expires within seconds, else a long one (``reply_lookup_timeout``), since a
   response_url stays valid and times are better read in the user's zone than in UTC;
3. the reply target: the response_url, else an ephemeral in the channel, else a DM;
4. for zoned answers, a note when the zone is only a UTC fallback;
5. the work under :func:`~handlers.context.answer` (refusal blocks, or an apology and a log);
6. after a change, the App Homes of the asker and of every owner of a changed booking.

A form submission is the same path with another ack rule (:func:`submit`): its refusal has to
*be* the ack, so the save runs before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor, collect_moves
from bot.core.errors import GpubookError
from bot.core.formats import format_size
from bot.core.sentence import Sentence
from bot.core.snapshots import BookingInfo, SeriesResult
from bot.core.timefmt import zoned_window
from handlers.ack import COMMANDS, AckReply, after_ack
from handlers.blocks.bookings import booking_confirmation
from handlers.blocks.common import Message, context
from handlers.blocks.series import series_confirmation
from handlers.context import APOLOGY, Deps, Reply, actor_and_profile, answer, reply_for, zone_reply
from handlers.home import refresh_homes
from handlers.wording import FormText, mrkdwn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """What a listener read from Slack's payload, before anything is looked up."""

    team_id: str | None
    user_id: str
    #: Where answers and forms opened by this request confirm; ``None`` answers by DM.
    channel: str | None
    body: dict[str, Any]
    #: The request's response_url, when answers may go through it.
    respond: AsyncRespond | None = None

    @property
    def trigger_id(self) -> str:
        return str(self.body.get("trigger_id") or "")


@dataclass(frozen=True)
class Request:
    """One request once its asker is known: what every piece of work gets, and the bookings it
    changed (whose owners' App Homes are refreshed along with the asker's)."""

    deps: Deps
    actor: Actor
    client: AsyncWebClient
    channel: str | None
    trigger_id: str
    now: datetime
    body: dict[str, Any]
    changed: list[BookingInfo] = field(default_factory=list)

    def confirm(self, booking: BookingInfo, headline: str) -> Message:
        """Record a change to ``booking`` and confirm it with its card."""
        self.changed.append(booking)
        return confirmation(booking, headline, self.actor, self.deps.now())


Work = Callable[[Request], Awaitable[Message | None]]


def never(_: object) -> bool:
    """The "opens a form?" test of requests that never do."""
    return False


def always(_: object) -> bool:
    """The "opens a form?" test of requests that always do."""
    return True


@dataclass(frozen=True)
class Plan:
    """What a request will do, declared before the asker is known (it decides the wait)."""

    work: Work
    opens_form: bool = False
    #: The answer reads or shows times in the user's zone (so it says when that is UTC).
    zoned: bool = False
    #: The work changes bookings: App Homes are refreshed after it succeeds.
    changes: bool = False
    #: The answer replaces the message the request came from (calendar navigation).
    replace: bool = False
    #: The task a refusal's "book this window" buttons carry.
    task: str | None = None


#: The headline of a new booking's confirmation, and of a new one that waits in the queue.
BOOKED, QUEUED = "Booked", "Queued"
#: What a queued booking's confirmation adds: it is not fixed where it was placed.
MOVES_BY_ITSELF = "flexible: it moves earlier by itself when room frees, never later"


def confirmation(b: BookingInfo, headline: str, actor: Actor, now: datetime) -> Message:
    """A booking's confirmation card; the fallback text names no user text (so it pings nobody).

    A new booking that is flexible (it waits in the queue) is *queued*, not booked, whichever
    way it was made (`book any … asap` or the form's checkbox): it will not stay where it is.
    """
    if headline == BOOKED and b.flexible:
        headline = f"{QUEUED} ({MOVES_BY_ITSELF})"
    window = zoned_window(b.start, b.end, actor.tz, now)
    text = f"{headline} #{b.id}: {format_size(b.memory_mib)} on {b.gpu_name}, {window}."
    blocks = booking_confirmation(
        b, headline=f":white_check_mark: {headline}", now=now, viewer_id=actor.user_id
    )
    return Message(text, blocks)


def confirm_series(request: Request, result: SeriesResult, headline: str) -> Message:
    """A booked series' confirmation; every occurrence counts as changed (App Homes)."""
    request.changed.extend(result.booked)
    first = result.booked[0]
    text = f"{headline} {len(result.booked)} occurrences of series #{first.id} on {first.gpu_name}."
    blocks = series_confirmation(
        result,
        headline=headline,
        now=request.deps.now(),
        viewer_id=request.actor.user_id,
        tz=request.actor.tz,
    )
    return with_notes(request, Message(text, blocks), result.notes)


def with_notes(request: Request, message: Message, notes: tuple[Sentence, ...]) -> Message:
    """How a wall time was read on a DST day (it did not exist, or happened twice), under it."""
    if not notes:
        return message
    return Message(
        message.text, [*message.blocks, context(mrkdwn(notes, request.actor.tz, request.now))]
    )


async def begin(
    deps: Deps,
    client: AsyncWebClient,
    incoming: Incoming,
    *,
    quick: bool,
    zoned: bool,
    in_ack: AckReply | None = None,
) -> tuple[Request, Reply]:
    """Steps 2–4: the asker (``quick``: within a trigger_id's life), the request, the reply
    (into the ack first, when ``in_ack`` is given)."""
    wait = deps.lookup_timeout if quick else deps.reply_lookup_timeout
    actor, profile = await actor_and_profile(
        deps, client, incoming.team_id, incoming.user_id, max_wait=wait
    )
    reply = reply_for(client, incoming.user_id, incoming.respond, incoming.channel)
    if in_ack is not None:
        reply = in_ack.around(reply)
    if zoned:
        reply = zone_reply(reply, profile)
    request = Request(
        deps, actor, client, incoming.channel, incoming.trigger_id, deps.now(), incoming.body
    )
    return request, reply


async def finish(request: Request, reply: Reply, plan: Plan) -> None:
    """Steps 5–6: answer with the work's outcome; after a change, refresh the App Homes."""
    ok = await answer(
        reply,
        request.deps,
        lambda: plan.work(request),
        task=plan.task,
        replace=plan.replace,
        tz=request.actor.tz,
    )
    if ok and plan.changes:
        refresh_homes(request.deps, request.client, request.actor, request.changed)


async def serve(
    ack: Any,
    deps: Deps,
    client: AsyncWebClient,
    incoming: Incoming,
    plan_for: Callable[[], Plan],
    *,
    answer_in_ack: bool = False,
) -> None:
    """The whole path for a command or a button.

    A button's ack carries nothing Slack shows, so it is sent at once and the plan made after
    it. A slash command's may carry the answer (``answer_in_ack``) unless another command is
    being answered (its answer would queue behind that one's work: see ``handlers.ack``): its
    plan is made first (the text parsed) and its answer awaited for
    ``deps.answer_in_ack_within`` to go in the ack. A request that opens a form acks at once,
    since its work waits on Slack.
    """
    name = f"answering {incoming.user_id}"
    if not answer_in_ack or COMMANDS.busy:
        await ack()
        work = after_ack(_carry_on(deps, client, incoming, plan_for), name)
        if answer_in_ack:
            COMMANDS.track(work)
        return
    plan = plan_for()
    if plan.opens_form:
        await ack()
        COMMANDS.track(after_ack(_carry_on(deps, client, incoming, lambda: plan), name))
        return
    in_ack = AckReply(ack)
    work = after_ack(_carry_on(deps, client, incoming, lambda: plan, in_ack), name)
    COMMANDS.track(work)
    await asyncio.wait(
        {work, in_ack.answered},
        timeout=deps.answer_in_ack_within,
        return_when=asyncio.FIRST_COMPLETED,
    )
    await in_ack.close()


async def _carry_on(
    deps: Deps,
    client: AsyncWebClient,
    incoming: Incoming,
    plan_for: Callable[[], Plan],
    in_ack: AckReply | None = None,
) -> None:
    """Steps 2–6 of :func:`serve`, from the plan to the App Homes. The plan (a command's text
    parsed) and the work with its answer each take a turn (``deps.answering``): twenty requests
    parsing at once held the loop nearly as long as twenty working, and the acks still due
    waited behind them. The asker's profile is looked up between the two turns, since it may
    wait on Slack; a form's work takes no turn (its trigger_id expires)."""
    async with deps.answering:
        plan = plan_for()
    request, reply = await begin(
        deps, client, incoming, quick=plan.opens_form, zoned=plan.zoned, in_ack=in_ack
    )
    async with nullcontext() if plan.opens_form else deps.answering:
        with collect_moves(request.changed):  # bookings the queue moved: their owners' Homes
            await finish(request, reply, plan)


#: Saves a submitted form and returns the booking (or the series) saved.
Save = Callable[[Request], Awaitable[BookingInfo | SeriesResult]]
#: The ack that shows a sentence under a form's input: (error field, sentence) → ack arguments.
FormError = Callable[[str | None, str], dict[str, Any]]


async def submit(
    ack: Any,
    deps: Deps,
    client: AsyncWebClient,
    incoming: Incoming,
    save: Save,
    *,
    headline: str,
    form_error: FormError,
) -> None:
    """The path for a form submission: a refusal goes back into the form as the ack itself,
    success closes the form and confirms by message.

    So the asker is looked up and the save awaited *before* the ack, all within
    ``deps.submit_deadline`` (an ack after 3 s is lost). A save still running then is left to
    finish rather than cancelled, because its commit may already be under way and a "try again"
    would book twice: the form is closed at once and the save's real outcome (confirmation or
    refusal) follows as a message.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.submit_deadline
    request, reply = await begin(deps, client, incoming, quick=True, zoned=False)
    with collect_moves(request.changed):  # the save's task inherits it (see serve)
        await _save_then_answer(ack, request, reply, save, deadline, headline, form_error)


async def _save_then_answer(
    ack: Any,
    request: Request,
    reply: Reply,
    save: Save,
    deadline: float,
    headline: str,
    form_error: FormError,
) -> None:
    """:func:`submit` once the asker is known: save until ``deadline`` (loop time), then ack."""
    loop, deps = asyncio.get_running_loop(), request.deps
    saving = asyncio.create_task(save(request))
    done, _ = await asyncio.wait({saving}, timeout=max(0.0, deadline - loop.time()))
    if not done:
        log.warning(
            "saving %s for %s took over %.1fs; its outcome goes by message",
            request.body.get("view", {}).get("callback_id"),
            request.actor.user_id,
            deps.submit_deadline,
        )
    elif await _refused_in_form(ack, saving, form_error, FormText(request.actor.tz, request.now)):
        return
    await ack()

    async def outcome(request: Request) -> Message:
        # shield: should this listener be cancelled, the save still finishes.
        saved = await asyncio.shield(saving)
        if isinstance(saved, SeriesResult):
            return confirm_series(request, saved, headline)
        return request.confirm(saved, headline)

    after_ack(
        finish(request, reply, Plan(outcome, changes=True)), f"confirming {request.actor.user_id}"
    )


async def _refused_in_form(
    ack: Any, saving: asyncio.Task[Any], form_error: FormError, surface: FormText
) -> bool:
    """Ack a finished save's refusal (or an apology) into the form, as plain text (a field
    error shows no mrkdwn); False if it saved."""
    try:
        saving.result()
    except GpubookError as error:
        await ack(**form_error(error.field, error.render(surface)))
        return True
    except Exception:
        log.exception("saving a modal failed")
        await ack(**form_error(None, APOLOGY))
        return True
    return False
