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
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import aiohttp

from bot.core.agent_report import DeviceReading, Report
from bot.core.clock import Clock, system_clock

log = logging.getLogger("gpubook.agent")

REPORT_PATH = "/agent/report"
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
    ``refused 401``, ``unreadable``: a new one is logged) and what happened, in words."""

    ok: bool
    state: str
    detail: str


def reading(probe: Probe, host: str, clock: Clock = system_clock) -> Report:
    return Report(host, clock().replace(microsecond=0), probe.read())


class Sender:
    """Posts reports to ``{url}/agent/report`` with the host's bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/") + REPORT_PATH
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def send(self, report: Report) -> Delivery:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self._session.post(self.url, json=report.to_json(), headers=headers) as r:
                body = await r.text()
                status = r.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            detail = f"the bot at {self.url} is unreachable ({_describe(error)})"
            return Delivery(False, "unreachable", detail)
        if status < 300:
            return Delivery(True, "reporting", "reporting")
        detail = f"the bot refused the report: HTTP {status}, {_reason(body)}"
        return Delivery(False, f"refused {status}", detail)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


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
    ) -> None:
        self.probe, self.sender, self.host = probe, sender, host
        self.interval, self.clock = interval, clock
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
