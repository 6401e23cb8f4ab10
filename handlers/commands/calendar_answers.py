"""How `calendar link`, `calendar link revoke` and `chart` are answered.

A calendar link is a private URL that cannot be shown again (only its hash is kept), so it goes
by DM, where it stays to be copied later; the command itself is answered with a short note.
"""

from __future__ import annotations

from bot.core.errors import GpubookError
from bot.core.feeds import feed_url
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from handlers.blocks.common import Message, notice, section
from handlers.chart import send_chart
from handlers.commands.syntax import CalendarLink, CalendarLinkRevoke, Chart
from handlers.context import DirectReply
from handlers.pipeline import Request
from handlers.wording import mrkdwn


async def calendar_link(request: Request, cmd: CalendarLink) -> Message:
    public_url = request.deps.public_url
    if public_url is None:
        raise GpubookError(Code.CALENDAR_LINK_NEEDS_URL)
    actor = request.actor
    token = await request.deps.service.issue_calendar_link(actor, cmd.gpu)
    url = feed_url(public_url, token)
    which = (
        say(Code.CALENDAR_LINK_GPU, gpu=Quote(cmd.gpu), url=url)
        if cmd.gpu
        else say(Code.CALENDAR_LINK_OWN, url=url)
    )
    link = mrkdwn(which, actor.tz, request.now)
    how = mrkdwn(say(Code.CALENDAR_LINK_HOW), actor.tz, request.now)
    dm = Message(link, [section(link), section(how)])
    await DirectReply(request.client, actor.user_id).send(dm)
    return _said(request, Code.CALENDAR_LINK_SENT)


async def calendar_link_revoke(request: Request, cmd: CalendarLinkRevoke) -> Message:
    count = await request.deps.service.revoke_calendar_links(request.actor)
    if not count:
        return _said(request, Code.CALENDAR_LINKS_NONE)
    return _said(request, Code.CALENDAR_LINKS_REVOKED, count=count)


async def chart(request: Request, cmd: Chart) -> Message:
    return await send_chart(request.deps, request.client, request.actor, cmd.gpu, cmd.day, cmd.week)


def _said(request: Request, code: Code, **data: object) -> Message:
    text = mrkdwn(say(code, **data), request.actor.tz, request.now)
    return Message(text, notice(text))
