"""The chart answer, shared by `/gpubook chart` and the calendar's Chart button: the memory
timeline of a GPU's day or week, drawn off the event loop and uploaded to the asker's DM.

Slack's upload (``files_upload_v2``: ``files.getUploadURLExternal``, the bytes, then
``files.completeUploadExternal``) shares a file into a conversation by its id, and a user id is
not one, so the DM is opened first (``conversations.open``, scope ``im:write``); uploading
needs ``files:write``. The picture names owners by their Slack names (a PNG cannot hold a
mention), read through the same cached ``users.info`` as everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor
from bot.core.errors import GpubookError
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from handlers.blocks.common import Message, notice
from handlers.calendar import calendar_data
from handlers.context import Deps
from handlers.wording import mrkdwn


async def send_chart(
    deps: Deps,
    client: AsyncWebClient,
    actor: Actor,
    gpu: str | None,
    day: date | None,
    week: bool,
) -> Message:
    """Draw the chart, put it in the asker's DM, and say so."""
    if deps.draw_chart is None:
        raise GpubookError(Code.CHART_NEEDS_MATPLOTLIB)
    cal, _ = await calendar_data(deps, actor, gpu, day, week)
    now = deps.now()
    names = await _names(deps, client, actor.team_id, {b.user_id for b in cal.bookings})
    png = await asyncio.to_thread(
        deps.draw_chart,
        cal,
        now=now,
        tz=actor.tz,
        week=week,
        viewer=actor.user_id,
        names=names,
    )
    first = cal.start.astimezone(actor.tz).date()
    when = f"{first:%a} {first.day} {first:%b %Y}"
    period = f"week of {when}" if week else when
    opened = await client.conversations_open(users=actor.user_id)
    try:
        await client.files_upload_v2(
            channel=opened["channel"]["id"],
            file=png,
            filename=f"gpubook-{cal.gpu.name}-{first.isoformat()}{'-week' if week else ''}.png",
            title=f"{cal.gpu.name}, {period}",
            alt_txt=f"Memory held on {cal.gpu.name} over the {period}, booking by booking.",
        )
    except SlackApiError as error:
        # An app installed before charts existed has no files:write until it is reinstalled.
        if error.response.get("error") == "missing_scope":
            raise GpubookError(Code.CHART_NEEDS_SCOPE) from None
        raise
    text = mrkdwn(say(Code.CHART_SENT, gpu=Quote(cal.gpu.name)), actor.tz, now)
    return Message(text, notice(text))


async def _names(
    deps: Deps, client: AsyncWebClient, team_id: str, user_ids: Iterable[str]
) -> dict[str, str]:
    """What each owner is called in Slack, where Slack says so in time."""
    ids = sorted(user_ids)
    profiles = await asyncio.gather(
        *(deps.users.get(client, team_id, u, max_wait=deps.lookup_timeout) for u in ids)
    )
    return {u: p.name for u, p in zip(ids, profiles, strict=True) if p.name}
