"""``POST /agent/book``: ``gpubook run --book`` as a host's agent forwards it.

The agent authenticates with its host token (as for reports) and names the Unix login it read from
its socket's peer credentials — never one the caller typed. The body::

    {"login": "alice", "memory": "8GB", "seconds": 7200, "gpu": null}

The service books for the Slack user linked to that login, as that user, on that host's cards
(:meth:`bot.booking.host_runs.HostRuns.book_from_host`). A booking answers 200 ``{"ok": true,
"booking": ID, "host_bookings": {…}}``; a refusal answers with the sentence a person reads, in the
terminal's words (``gpubook run`` prints it): 422 for a malformed request, 401 for a token revoked
meanwhile, 403 for an unlinked login or a limit, 404 for a card the host does not have, 409 when
the memory is not free.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.booking import BookingService
from bot.cli.wording import TerminalText
from bot.core.agent_report import valid_login
from bot.core.errors import (
    CapacityError,
    GpubookError,
    InputError,
    InvalidState,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    Unauthorized,
)
from bot.core.phrases import Code
from bot.core.usage import HostIdentity

AGENT_BOOK_PATH = "/agent/book"
#: Longer than any booking the rules could allow: beyond, the request is malformed, not refused.
_MAX_SECONDS = 366 * 24 * 3600

_STATUS: tuple[tuple[type[GpubookError], int], ...] = (
    (Unauthorized, 401),  # revoked since this process remembered the token
    (InputError, 422),
    (PermissionDenied, 403),
    (PolicyViolation, 403),
    (NotFound, 404),
    (CapacityError, 409),
    (InvalidState, 409),
)


def _answer(status: int, error: GpubookError) -> web.Response:
    reason = error.render(TerminalText())
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(
        {"ok": False, "error": error.code.value, "reason": reason}, status=status, headers=headers
    )


def _request(data: Any) -> tuple[str, str, timedelta, str | None]:
    """The login, memory, length and GPU of a well-formed request; else InputError."""
    if not isinstance(data, dict):
        raise InputError(Code.REPORT_FIELD_TYPE, path="the request", expected="a JSON object")
    login, memory, seconds, gpu = (data.get(k) for k in ("login", "memory", "seconds", "gpu"))
    if not isinstance(login, str) or not valid_login(login):
        raise InputError(Code.REPORT_FIELD_TYPE, path="login", expected="a Unix login")
    if not isinstance(memory, str) or not memory.strip():
        raise InputError(Code.REPORT_FIELD_TYPE, path="memory", expected="a size like 8GB")
    if type(seconds) is not int or not 0 < seconds <= _MAX_SECONDS:
        raise InputError(Code.REPORT_FIELD_TYPE, path="seconds", expected="a positive whole number")
    if gpu is not None and not isinstance(gpu, str):
        raise InputError(Code.REPORT_FIELD_TYPE, path="gpu", expected="a GPU name or null")
    return login, memory.strip(), timedelta(seconds=seconds), gpu


async def book_for_host(service: BookingService, identity: HostIdentity, data: Any) -> web.Response:
    try:
        login, memory, length, gpu = _request(data)
        booking, known = await service.book_from_host(identity, login, memory, length, gpu)
    except GpubookError as error:
        status = next((s for kind, s in _STATUS if isinstance(error, kind)), 400)
        return _answer(status, error)
    return web.json_response({"ok": True, "booking": booking.id, "host_bookings": known.to_json()})
