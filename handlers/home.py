"""The App Home tab: published when the user opens it and again after every change made to their
bookings — by them, or by an admin — so a dashboard on screen is never older than the last action.

Only a Home opened lately (``Deps.home_in_view_for``) is rebuilt after a change: Slack sends
``app_home_opened`` each time the tab is shown, and that publishes it afresh, so rebuilding the
Home of someone not looking would cost every booking a whole dashboard for nobody to see."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor
from bot.core.pool import PoolStatus
from bot.core.snapshots import BookingInfo
from bot.core.timeparse import week_bounds
from handlers.ack import after_ack
from handlers.blocks.home import MAX_HOME_CARDS, home_view
from handlers.context import Deps, actor_for
from handlers.home_refresh import Batch

log = logging.getLogger(__name__)


async def pool_now(deps: Deps, actor: Actor, batch: Batch | None = None) -> PoolStatus:
    """The Home's GPUs: the pool's summary and the cards shown. A pool that shows every card
    looks the same on every Home of the workspace, so a ``batch`` of rebuilds reads it once; a
    larger one shows each person their own cards first, so it is read for each of them."""
    service = deps.service
    if batch is None:
        return await service.pool_status(actor)

    async def read() -> tuple[str, PoolStatus]:
        return actor.user_id, await service.pool_status(actor)

    reader, pool = await batch.once(("pool", actor.team_id), read)
    if pool.complete or reader == actor.user_id:
        return pool
    return await service.pool_status(actor)


async def publish_home(
    deps: Deps, client: AsyncWebClient, actor: Actor, batch: Batch | None = None
) -> None:
    """Render and publish the user's App Home: their bookings, every GPU now, this week's use.

    Each read is bounded by what the tab shows: the first bookings (one more tells whether a
    More button is due), the pool's summary and a line per GPU shown, the week's sum; all in one
    read transaction. A rebuild in a ``batch`` reuses the pool the batch has read already for
    the workspace when it is the same for everyone there (:func:`pool_now`).
    """
    service, now = deps.service, deps.now()
    week_of = week_bounds(now.astimezone(actor.tz).date(), actor.tz)
    async with service.one_read():
        pool = await pool_now(deps, actor, batch)
        mine = await service.list_bookings(actor, limit=MAX_HOME_CARDS + 1)
        week = await service.my_usage(actor, *week_of)
    view = home_view(
        user_id=actor.user_id,
        mine=mine,
        statuses=pool.shown,
        pool=pool,
        week_usage_mib_s=week.booked_mib_s,
        now=now,
        is_admin=service.is_admin(actor),
        tz=actor.tz,
    )
    await client.views_publish(user_id=actor.user_id, view=view)


async def show_opened_home(deps: Deps, client: AsyncWebClient, actor: Actor) -> None:
    """Note that the Home is open (changes from now on rebuild it), then publish it afresh.

    Noted first, so a change made while this one publishes is rebuilt too. A failure only
    leaves the tab stale, so it is logged, not shown.
    """
    try:
        await deps.service.home_opened(actor)
        await publish_home(deps, client, actor)
    except Exception:
        log.exception("could not refresh the App Home of %s", actor.user_id)


def refresh_homes(
    deps: Deps, client: AsyncWebClient, actor: Actor, changed: Iterable[BookingInfo] = ()
) -> None:
    """Mark stale the actor's Home and the Home of everyone else whose booking they changed (an
    admin cancelling or extending someone's booking); each one opened lately is rebuilt soon, in
    its owner's zone, once for however many changes came meanwhile, with the GPUs read once for
    the whole batch where they look the same to everyone (``handlers.home_refresh``)."""

    async def publish(team_id: str, user_id: str, batch: Batch) -> None:
        who = actor
        if user_id != actor.user_id:
            who = await actor_for(
                deps, client, team_id, user_id, max_wait=deps.reply_lookup_timeout
            )
        await publish_home(deps, client, who, batch)

    for user_id in [actor.user_id, *sorted({b.user_id for b in changed} - {actor.user_id})]:
        deps.homes.stale(actor.team_id, user_id, publish)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def app_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        # The event also fires for the Messages tab, which has nothing to publish.
        if event.get("tab", "home") != "home":
            return

        async def show() -> None:
            actor = await actor_for(deps, client, context.team_id, event["user"])
            await show_opened_home(deps, client, actor)

        after_ack(show(), f"showing {event['user']}'s Home")
