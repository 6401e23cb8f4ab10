"""The App Home tab: published when the user opens it and again after every change they make,
so the dashboard is never older than the user's last action."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.service import Actor
from handlers.blocks.home import home_view
from handlers.context import Deps, actor_for

log = logging.getLogger(__name__)


def week_window(now: datetime, actor: Actor) -> tuple[datetime, datetime]:
    """This week in the user's zone, Monday 00:00 to the next Monday 00:00, as aware datetimes."""
    today = now.astimezone(actor.tz).date()
    monday = today - timedelta(days=today.weekday())
    start = datetime.combine(monday, time(0), tzinfo=actor.tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=actor.tz)
    return start, end


async def publish_home(deps: Deps, client: AsyncWebClient, actor: Actor) -> None:
    """Render and publish the user's App Home: their bookings, every GPU now, this week's use."""
    service, now = deps.service, deps.now()
    mine = await service.list_bookings(actor)
    statuses = await service.status(actor)
    week = await service.my_usage(actor, *week_window(now, actor))
    view = home_view(
        user_id=actor.user_id,
        mine=mine,
        statuses=statuses,
        week_usage_mib_s=week.booked_mib_s,
        now=now,
        is_admin=service.is_admin(actor),
    )
    await client.views_publish(user_id=actor.user_id, view=view)


async def refresh_home(deps: Deps, client: AsyncWebClient, actor: Actor) -> None:
    """Re-publish after a change; a failure only leaves the tab stale, so it is logged, not shown."""
    try:
        await publish_home(deps, client, actor)
    except Exception:
        log.exception("could not refresh the App Home of %s", actor.user_id)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def app_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        # The event also fires for the Messages tab, which has nothing to publish.
        if event.get("tab", "home") != "home":
            return
        actor = await actor_for(deps, client, context.team_id, event["user"])
        await refresh_home(deps, client, actor)
