"""``POST /agent/report``: where host agents (and any reporter keeping the contract) send usage.

Served on ``$PORT`` in both modes, beside ``/healthz`` and ``/metrics``. Checks run cheapest and
most telling first, and every refusal is a JSON body ``{"ok": false, "error": CODE, "reason":
SENTENCE}`` with nothing stored:

- no bearer token, or an unknown or revoked one → 401 (the body is never read; a token
  revoked since this process remembered it is refused when the report would be stored);
- a body that is not ``application/json`` → 415, larger than :data:`MAX_REPORT_BYTES` → 413
  (read no further than the limit), not JSON → 400, not the contract → 422;
- a report about another host than the token's, or listing a card another host has reported
  within the silent-host window (a card moves once its old host is silent about it) → 403;
- the database unavailable (down, restarting, locked past the busy timeout) → 503.

A stored report answers 200 ``{"ok": true, "devices": N, "unbound": [UUID…], "host_bookings":
{"cards": […], "bookings": […]}}``: the host's bound cards and their bookings, which its agent keeps
for ``gpubook run`` (:mod:`bot.core.host_bookings`). ``POST /agent/book`` (:mod:`bot.runtime.agent_book`)
authenticates and reads its body the same way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from bot.booking import BookingService
from bot.core.agent_report import load_json, parse_report
from bot.core.errors import GpubookError, InputError, PermissionDenied, Unauthorized
from bot.core.phrases import Code
from bot.core.usage import HostIdentity
from bot.runtime.agent_book import AGENT_BOOK_PATH, book_for_host
from bot.runtime.metrics import Metrics
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

AGENT_REPORT_PATH = "/agent/report"
#: 500 processes on 8 cards are ~40 KB; a megabyte leaves room and bounds what one request costs.
MAX_REPORT_BYTES = 1024 * 1024


def _refusal(status: int, error: GpubookError) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(
        {"ok": False, "error": error.code.value, "reason": error.render()},
        status=status,
        headers=headers,
    )


def add_agent_route(
    application: web.Application, service: BookingService, metrics: Metrics | None = None
) -> None:
    """Serve ``POST /agent/report`` on ``application`` through ``service``."""

    async def report(request: web.Request) -> web.Response:
        started = time.perf_counter()
        response = await _handle(request, service)
        if metrics is not None:
            metrics.observe_agent_report(response.status, time.perf_counter() - started)
        return response

    async def book(request: web.Request) -> web.Response:
        opened = await _opened(request, service)
        if isinstance(opened, web.Response):
            return opened
        return await book_for_host(service, *opened)

    application.router.add_post(AGENT_REPORT_PATH, report)
    application.router.add_post(AGENT_BOOK_PATH, book)


async def _body_within(request: web.Request, limit: int) -> bytes | None:
    """The body, read no further than ``limit`` bytes (``None`` beyond): a chunked body
    announces no length, and one ``read`` returns whatever has arrived, not all of it."""
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _authenticated(
    request: web.Request, service: BookingService
) -> HostIdentity | web.Response:
    """The host the request's bearer token speaks for, or the 401 refusal."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return _refusal(401, InputError(Code.REPORT_NO_TOKEN))
    identity = await service.reporting_host(secret.strip())
    if identity is None:
        return _refusal(401, InputError(Code.REPORT_BAD_TOKEN))
    return identity


async def _json_body(request: web.Request) -> Any:
    """The body as JSON, or the refusal (415, 413, 400) as a :class:`web.Response`."""
    if request.content_type != "application/json":
        return _refusal(415, InputError(Code.REPORT_CONTENT_TYPE))
    body = None
    if (request.content_length or 0) <= MAX_REPORT_BYTES:
        body = await _body_within(request, MAX_REPORT_BYTES)
    if body is None:
        return _refusal(413, InputError(Code.REPORT_TOO_LARGE, limit=MAX_REPORT_BYTES))
    try:
        return load_json(body)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        return _refusal(400, InputError(Code.REPORT_NOT_JSON, reason=str(exc)))


async def _opened(
    request: web.Request, service: BookingService
) -> tuple[HostIdentity, Any] | web.Response:
    """The host the token speaks for and the JSON body, or the first refusal: every agent route
    opens this way (the token before the body, which an unauthenticated caller never gets read)."""
    identity = await _authenticated(request, service)
    if isinstance(identity, web.Response):
        return identity
    data = await _json_body(request)
    if isinstance(data, web.Response):
        return data
    return identity, data


async def _handle(request: web.Request, service: BookingService) -> web.Response:
    opened = await _opened(request, service)
    if isinstance(opened, web.Response):
        return opened
    identity, data = opened
    try:
        parsed = parse_report(data)
    except InputError as error:
        return _refusal(422, error)
    try:
        result = await service.ingest_report(identity, parsed)
    except Unauthorized as error:  # revoked since its token was remembered
        return _refusal(401, error)
    except PermissionDenied as error:
        return _refusal(403, error)
    except DatabaseUnavailable as error:  # nothing stored: the agent sends its next one
        return _refusal(503, error)
    except Exception:
        log.exception("storing a report from %s failed", identity.host)
        return web.json_response({"ok": False, "error": "internal"}, status=500)
    return web.json_response(
        {
            "ok": True,
            "devices": result.devices,
            "unbound": result.unbound,
            "host_bookings": result.host_bookings.to_json(),
        }
    )
