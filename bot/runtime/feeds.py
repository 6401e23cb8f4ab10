"""``GET /ics/<token>.ics``: a private calendar feed, on the same HTTP port in both modes.

The token is the credential, so every way of not having a live one — malformed, guessed,
revoked — gets the same bare 404 as any unknown path: nothing tells a guesser how close they
were. A feed answers with an ETag (a hash of its bytes, which are the same for the same
bookings) and Last-Modified (its latest change), and a conditional GET that still matches gets
304 Not Modified without a body (If-None-Match wins over If-Modified-Since, RFC 9110 §13.1.3).
Rendering a large feed the first time takes a while, so it runs off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import web

from bot.booking import BookingService
from bot.core.feeds import FEED_PATH
from bot.render.ics import feed_ics

#: The route: the feed path with the token as a URL-safe word.
FEED_ROUTE = FEED_PATH.format(token="{token:[A-Za-z0-9_-]+}")
CONTENT_TYPE = "text/calendar; charset=utf-8"


def add_feed_route(application: web.Application, service: BookingService) -> None:
    async def feed(request: web.Request) -> web.StreamResponse:
        found = await service.calendar_feed(request.match_info["token"])
        if found is None:
            raise web.HTTPNotFound()
        body = await asyncio.to_thread(feed_ics, found)
        etag = hashlib.sha256(body).hexdigest()[:32]
        modified = found.modified.replace(microsecond=0)
        headers = {"Cache-Control": "private, no-cache"}
        if _unchanged(request, etag, modified):
            response = web.Response(status=304, headers=headers)
        else:
            response = web.Response(body=body, headers={**headers, "Content-Type": CONTENT_TYPE})
        response.etag = etag
        response.last_modified = modified
        return response

    application.router.add_get(FEED_ROUTE, feed)


def _unchanged(request: web.Request, etag: str, modified: object) -> bool:
    """Whether the client's copy is current: by ETag when it sent one (weak comparison, as
    If-None-Match asks), else by date."""
    if request.if_none_match is not None:
        return any(tag.value in (etag, "*") for tag in request.if_none_match)
    since = request.if_modified_since
    return since is not None and modified <= since
