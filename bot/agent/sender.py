"""Posting readings to the bot, and the loop that keeps doing it whatever happens.

The loop never stops on a failure and never shows a traceback: a card that cannot be read, a bot
that is down or refuses the report — each is a *state*, logged as one line when it begins (and
one when reporting works again), not once per attempt. While failing, it waits longer each time
(the interval, doubling, at most :data:`MAX_BACKOFF`), so a fleet of agents does not hammer a bot
that is coming back up. Readings are never queued: each attempt sends a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import aiohttp

from bot.core.agent_report import DeviceReading, Report
from bot.core.clock import Clock, system_clock
from bot.core.host_bookings import HostBookings, host_bookings_from

log = logging.getLogger("gpubook.agent")

REPORT_PATH = "/agent/report"
BOOK_PATH = "/agent/book"
MAX_BACKOFF = timedelta(minutes=5)
#: One report must be answered within this, or the attempt counts as unreachable.
REQUEST_TIMEOUT = timedelta(seconds=10)


class Probe(Protocol):
    def open(self) -> None: ...
    def read(self) -> tuple[DeviceReading, ...]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """How one attempt went: ``ok``, which state that is (``reporting``, ``unreachable``,
    ``refused 401``, ``unreadable``: a new one is logged) and what happened, in words; and the
    host's bookings the bot answered with (``None`` if it did not, as an older bot would not)."""

    ok: bool
    state: str
    detail: str
    bookings: HostBookings | None = None


@dataclass(frozen=True)
class Booked:
    """How ``gpubook run --book`` went at the bot: the booking, or the sentence refusing it."""

    ok: bool
    detail: str
    booking: int | None = None
    bookings: HostBookings | None = None


def reading(probe: Probe, host: str, clock: Clock = system_clock) -> Report:
    return Report(host, clock().replace(microsecond=0), probe.read())


class Sender:
    """Posts reports to ``{url}/agent/report`` with the host's bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/") + REPORT_PATH
        self.book_url = url.rstrip("/") + BOOK_PATH
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def send(self, report: Report) -> Delivery:
        try:
            status, body = await self._post(self.url, report.to_json())
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Delivery(False, "unreachable", self._unreachable(error))
        if status < 300:
            return Delivery(True, "reporting", "reporting", _bookings(body))
        detail = f"the bot refused the report: HTTP {status}, {_reason(body)}"
        return Delivery(False, f"refused {status}", detail)

    async def book(self, login: str, memory: str, seconds: int, gpu: str | None) -> Booked:
        """Ask the bot to book for the Slack user linked to ``login`` on this host's cards."""
        request = {"login": login, "memory": memory, "seconds": seconds, "gpu": gpu}
        try:
            status, body = await self._post(self.book_url, request)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Booked(False, self._unreachable(error))
        if status >= 300:
            return Booked(False, _reason(body))
        try:
            booking = int(json.loads(body)["booking"])
        except (ValueError, KeyError, TypeError):
            return Booked(False, f"the bot's answer is not a booking: {body[:200]}")
        return Booked(True, "booked", booking, _bookings(body))

    async def _post(self, url: str, payload: Any) -> tuple[int, str]:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._session.post(url, json=payload, headers=headers) as response:
            return response.status, await response.text()

    def _unreachable(self, error: BaseException) -> str:
        return f"the bot at {self.url} is unreachable ({_describe(error)})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _bookings(body: str) -> HostBookings | None:
    """The host's bookings in the bot's answer; ``None`` (logged) if it carries none readable."""
    try:
        return host_bookings_from(json.loads(body))
    except ValueError as error:  # JSONDecodeError is one
        log.warning("the bot's answer carries no readable bookings (%s)", error)
        return None


def _reason(body: str) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:200] or "no reason given"
    reason = answer.get("reason") if isinstance(answer, dict) else None
    return str(reason or body[:200])


def backoff(interval: timedelta, failures: int) -> timedelta:
    """How long to wait after ``failures`` failed attempts in a row (0: all is well)."""
    if failures == 0:
        return interval
    return min(interval * 2 ** min(failures, 16), max(MAX_BACKOFF, interval))


class AgentLoop:
    """Read, send, wait; until ``stop`` is set. One log line per change of state."""

    def __init__(
        self,
        probe: Probe,
        sender: Sender,
        host: str,
        interval: timedelta,
        *,
        clock: Clock = system_clock,
        learn: Callable[[HostBookings], None] | None = None,
    ) -> None:
        self.probe, self.sender, self.host = probe, sender, host
        self.interval, self.clock = interval, clock
        #: Told the host's bookings after each report the bot answered with them.
        self.learn = learn
        self.state: str | None = None
        self.failures = 0

    async def attempt(self) -> Delivery:
        """One reading sent; the outcome is logged if it changes the state."""
        try:
            report = reading(self.probe, self.host, self.clock)
        except Exception as error:  # NVML or a stand-in file: a state, never a traceback
            detail = f"cannot read the cards ({_describe(error)})"
            delivery = Delivery(False, "unreadable", detail)
        else:
            delivery = await self.sender.send(report)
        if delivery.bookings is not None and self.learn is not None:
            self.learn(delivery.bookings)
        self.failures = 0 if delivery.ok else self.failures + 1
        if delivery.state != self.state:
            (log.info if delivery.ok else log.warning)(
                "%s%s", delivery.detail, "" if delivery.ok else "; retrying with backoff"
            )
            self.state = delivery.state
        return delivery

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.attempt()
            wait = backoff(self.interval, self.failures).total_seconds()
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                continue
