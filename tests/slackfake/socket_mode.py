"""A fake Socket Mode endpoint served by the FakeSlackWebAPI's aiohttp server.

Flow, as with real Slack: the client calls ``apps.connections.open`` with its ``xapp-`` token,
gets a ``ws://.../link/?ticket=...`` URL, connects, and receives ``{"type": "hello"}``. Requests
then arrive as envelopes ``{"envelope_id", "type", "payload", "accepts_response_payload"}`` and
the client acks each with ``{"envelope_id": ..., "payload": {...}}`` (payload omitted when the
listener acked with no body). Bolt only sends the ack when dispatch returned HTTP-like 200.
"""

# The wait helpers take timeout= on purpose: on expiry they raise an AssertionError that
# shows what WAS received, which asyncio.timeout() around the call could not do.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.slackfake.webapi import FakeSlackWebAPI

POLL_INTERVAL = 0.01
# Interactive payload types for which Slack lets the ack carry a response body.
_INTERACTIVE_WITH_RESPONSE = frozenset({"view_submission", "block_suggestion"})


class FakeSocketMode:
    """Socket Mode side of the fake: hands out WebSocket URLs, pushes envelopes, records acks."""

    def __init__(self, server: FakeSlackWebAPI) -> None:
        self._server = server
        self._connections: list[web.WebSocketResponse] = []
        self.tickets: list[str] = []
        self.received: list[dict[str, Any]] = []  # every JSON message the client sent
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> full ack message

    def add_routes(self, app: web.Application) -> None:
        """Register the WebSocket route on the shared aiohttp app."""
        app.router.add_get("/link/", self._handle_ws)

    def issue_url(self) -> str:
        """What ``apps.connections.open`` returns; each call gets a fresh ticket like Slack."""
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        return f"ws://{self._server.host}:{self._server.port}/link/?ticket={ticket}"

    @property
    def connection_count(self) -> int:
        """Currently open client connections."""
        return sum(1 for ws in self._connections if not ws.closed)

    async def wait_connected(self, count: int = 1, timeout: float = 5) -> None:
        """Wait until ``count`` clients are connected (connect happens in the client's task)."""
        await _poll(
            lambda: self.connection_count >= count,
            timeout,
            lambda: f"expected {count} Socket Mode connection(s), have {self.connection_count}",
        )

    async def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5,
    ) -> str:
        """Push a request (``slash_commands``, ``interactive``, ``events_api``); return its id.

        The payload is the same dict Slack would POST over HTTP (slash command fields as a
        dict, not form-encoded). Sent to the newest open connection, as Slack picks one.
        """
        await self.wait_connected(timeout=timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": _accepts_response(type, payload)
            if accepts_response_payload is None
            else accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        await self._newest_connection().send_json(envelope)
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5) -> dict[str, Any]:
        """Wait for the client's ack of ``envelope_id`` and return its ``payload`` ({} if none)."""
        await _poll(
            lambda: envelope_id in self.acks,
            timeout,
            lambda: f"no ack for envelope {envelope_id}; received: {self.received}",
        )
        return self.acks[envelope_id].get("payload") or {}

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask clients to reconnect, as Slack does every few hours."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        for ws in list(self._connections):
            if not ws.closed:
                await ws.send_json(message)

    async def close_all(self) -> None:
        """Close every WebSocket (server shutdown would otherwise wait for them)."""
        for ws in list(self._connections):
            await ws.close(code=1001, message=b"server shutdown")
        self._connections.clear()

    def _newest_connection(self) -> web.WebSocketResponse:
        return [ws for ws in self._connections if not ws.closed][-1]

    async def _handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping answers the SDK's "sdk-ping-pong" pings
        await ws.prepare(request)
        self._connections.append(ws)
        await ws.send_json(_hello(len(self._connections)))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._record(message.data)
        finally:
            if ws in self._connections:
                self._connections.remove(ws)
        return ws

    def _record(self, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            message = {"raw": data}
        self.received.append(message)
        if isinstance(message, dict) and "envelope_id" in message:
            self.acks[message["envelope_id"]] = message


def _hello(num_connections: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A0001"},
    }


def _accepts_response(type: str, payload: dict[str, Any]) -> bool:
    """Slack's default: commands and view submissions/options may answer in the ack."""
    if type == "slash_commands":
        return True
    return type == "interactive" and payload.get("type") in _INTERACTIVE_WITH_RESPONSE


async def _poll(condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    """Poll ``condition()`` until true or raise AssertionError(describe())."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(describe())
        await asyncio.sleep(POLL_INTERVAL)
