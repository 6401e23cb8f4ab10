"""The agent's Unix socket, where ``gpubook run`` asks which card its caller may use.

The agent keeps the host's bookings from the bot's latest answer (:meth:`Desk.learn`) and answers
one JSON request per connection with one JSON line. It knows who asks from the socket's peer
credentials (``SO_PEERCRED``: the kernel's word for the connecting process's uid, which the
client cannot forge), mapped to a login through the password database; a login in the request
would be a claim, so there is none. Requests::

    {"ask": "run", "gpu": null, "command": "python train.py"}
    {"ask": "book", "gpu": null, "memory": "8GB", "seconds": 7200, "command": "…"}

and answers ``{"ok": true, "env": {...}, "gpu": NAME, "memory_mib": N, "until": ISO}`` or
``{"ok": false, "reason": SENTENCE}``. ``book`` is forwarded to the bot with the host's token
for that login (:meth:`bot.agent.sender.Sender.book`), then answered like ``run``.

The bookings may be as old as one report interval: a booking made in Slack a moment ago is
known at the next report; one the bot has not confirmed for the silence threshold is not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.agent.sender import Booked
from bot.cli.wording import TerminalText
from bot.core.agent_report import load_json
from bot.core.clock import Clock, system_clock
from bot.core.errors import GpubookError, InputError
from bot.core.host_bookings import HostBookings, grant
from bot.core.phrases import Code
from bot.core.sentence import When

log = logging.getLogger("gpubook.agent")

#: A request is a few hundred bytes; anything longer is not one.
MAX_REQUEST_BYTES = 64 * 1024
#: How long one client may take to send its request.
REQUEST_TIMEOUT = 10.0
#: Forwards ``--book`` to the bot: login, memory, seconds, GPU.
BookAtBot = Callable[[str, str, int, str | None], Awaitable[Booked]]


def make_room(path: Path) -> None:
    """Create the socket's directory, and remove the socket an agent that died left behind
    (only a socket: a file someone put there is not ours to delete, and listening then fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()


def login_of(uid: int) -> str:
    """The login of ``uid``; KeyError when the password database has none."""
    return pwd.getpwuid(uid).pw_name


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket, from the kernel (Linux)."""
    creds = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class Desk:
    """The latest bookings the bot told this host, and the socket that answers from them."""

    def __init__(
        self,
        book: BookAtBot | None,
        *,
        stale_after: timedelta,
        clock: Clock = system_clock,
        user_of: Callable[[int], str] = login_of,
    ) -> None:
        self.book, self.stale_after, self.clock, self.user_of = book, stale_after, clock, user_of
        self.known: HostBookings | None = None
        self.heard_at: datetime | None = None

    def learn(self, known: HostBookings) -> None:
        self.known, self.heard_at = known, self.clock()

    async def serve(self, path: Path) -> asyncio.Server:
        """Listen on ``path`` (a leftover socket file is replaced), open to every local user:
        the answer depends on who connects, so anyone may ask."""
        make_room(path)
        server = await asyncio.start_unix_server(self._client, path=str(path))
        os.chmod(path, 0o666)  # noqa: ASYNC240 - one system call, once, at start
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer_connection(reader, writer)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away; nobody is left to tell
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        uid = peer_uid(writer.get_extra_info("socket"))
        try:
            login = self.user_of(uid)
        except KeyError:
            return _refused(f"uid {uid} has no login on this host")
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            request = load_json(line[:MAX_REQUEST_BYTES])
        except ValueError as error:
            return _refused(f"the request is not JSON ({error})")
        if not isinstance(request, dict):
            return _refused("the request is not a JSON object")
        return await self.answer(login, request)

    async def answer(self, login: str, request: dict[str, Any]) -> dict[str, Any]:
        """What ``login`` is told for ``request`` (the socket has already said who asks)."""
        now = self.clock()
        gpu = request.get("gpu") if isinstance(request.get("gpu"), str) else None
        command = str(request.get("command") or "CMD")
        if request.get("ask") == "book":
            booked = await self._book(login, gpu, request)
            if not booked.ok:
                return _refused(booked.detail)
            if booked.bookings is not None:
                self.learn(booked.bookings)
                gpu = gpu or _card_of(booked.bookings, booked.booking)
        elif request.get("ask") != "run":
            return _refused("ask for run or book")
        if self.known is None or self.heard_at is None:
            return _refused(_words(InputError(Code.RUN_NOT_HEARD), now))
        if now - self.heard_at > self.stale_after:
            return _refused(_words(InputError(Code.RUN_STALE, since=When(self.heard_at)), now))
        try:
            granted = grant(self.known, login, now, gpu, command)
        except GpubookError as refusal:
            return _refused(_words(refusal, now))
        log.info("%s runs on %s (booking %s)", login, granted.card.gpu, granted.bookings[0].id)
        return {
            "ok": True,
            "env": granted.environment(),
            "gpu": granted.card.gpu,
            "memory_mib": granted.memory_mib,
            "until": granted.end.isoformat(),
        }

    async def _book(self, login: str, gpu: str | None, request: dict[str, Any]) -> Booked:
        memory, seconds = request.get("memory"), request.get("seconds")
        if self.book is None:
            return Booked(False, "this agent does not report to a bot, so it cannot book")
        if not isinstance(memory, str) or type(seconds) is not int:
            return Booked(False, "a booking needs memory and seconds")
        booked = await self.book(login, memory, seconds, gpu)
        if booked.ok:
            log.info("booked #%s for %s: %s for %ss", booked.booking, login, memory, seconds)
        return booked


def _card_of(known: HostBookings, booking_id: int | None) -> str | None:
    """The GPU the booking just made is on: what to run on, whatever else the caller holds."""
    uuid = next((b.uuid for b in known.bookings if b.id == booking_id), None)
    return next((c.gpu for c in known.cards if c.uuid == uuid), None)


def _words(error: GpubookError, now: datetime) -> str:
    return error.render(TerminalText(_local_zone(now), now))


def _local_zone(now: datetime) -> Any:
    """The host's zone, as people on it read times."""
    return now.astimezone().tzinfo


def _refused(reason: str) -> dict[str, Any]:
    return {"ok": False, "reason": reason}
