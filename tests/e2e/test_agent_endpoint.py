"""POST /agent/report over real HTTP: a stored report answers 2xx; a forged, revoked, oversized
or malformed one answers 4xx with its reason in JSON, and changes nothing.

The endpoint is served here without a Slack app, as in Socket Mode (where only health, metrics
and agent reports listen on $PORT); HTTP mode mounts the same route beside /slack/events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.booking import Actor, BookingService
from bot.runtime.agent_endpoint import AGENT_REPORT_PATH, MAX_REPORT_BYTES
from bot.runtime.metrics import Metrics
from bot.runtime.runner import start_http
from storage.db import DatabaseUnavailable
from storage.models import AgentDevice, UsageSample
from tests.test_agent_report import UUID, report_json


@pytest.fixture
async def endpoint(service: BookingService) -> AsyncIterator[tuple[str, Metrics]]:
    metrics = Metrics()
    runner: web.AppRunner = await start_http(
        None, {}, host="127.0.0.1", port=0, metrics=metrics, service=service
    )
    yield f"http://127.0.0.1:{runner.addresses[0][1]}{AGENT_REPORT_PATH}", metrics
    await runner.cleanup()


@pytest.fixture
async def token(service: BookingService, admin: Actor) -> str:
    return (await service.create_agent_token(admin, "gpu-host-1"))[1]


async def post(
    url: str,
    body: bytes | str | Any,
    *,
    token: str | None = None,
    content_type: str = "application/json",
    chunked: bool = False,
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers, chunked=chunked or None) as response,
    ):
        return response.status, await response.json()


async def stored(service: BookingService) -> tuple[int, int]:
    async with service.db.read() as session:
        samples = await session.scalar(select(func.count()).select_from(UsageSample))
        devices = await session.scalar(select(func.count()).select_from(AgentDevice))
    return samples, devices


async def test_a_valid_report_is_stored_and_names_its_unbound_cards(
    endpoint: tuple[str, Metrics], token: str, service: BookingService
) -> None:
    url, metrics = endpoint
    assert await post(url, report_json(), token=token) == (
        200,
        {
            "ok": True,
            "devices": 1,
            "unbound": [UUID],
            "host_bookings": {"cards": [], "bookings": []},
        },
    )
    assert await stored(service) == (1, 1)
    assert b'gpubook_agent_reports_total{outcome="stored"} 1.0' in metrics.exposition()


@pytest.mark.parametrize(
    ("headers_token", "reason"),
    [(None, "Authorization: Bearer TOKEN"), ("gpb_forged", "unknown or revoked")],
    ids=["no-token", "forged"],
)
async def test_no_token_or_a_forged_one_is_401(
    endpoint: tuple[str, Metrics], service: BookingService, headers_token: str | None, reason: str
) -> None:
    status, body = await post(endpoint[0], report_json(), token=headers_token)
    assert status == 401 and body["ok"] is False and reason in body["reason"]
    assert await stored(service) == (0, 0)


async def test_a_revoked_token_is_401(
    endpoint: tuple[str, Metrics], token: str, service: BookingService, admin: Actor
) -> None:
    await service.revoke_agent_token(admin, "gpu-host-1")
    status, body = await post(endpoint[0], report_json(), token=token)
    assert (status, body["error"]) == (401, "report_bad_token")
    assert await stored(service) == (0, 0)


async def test_a_report_the_database_cannot_take_is_503_and_the_next_one_is_stored(
    endpoint: tuple[str, Metrics],
    token: str,
    service: BookingService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database away (restarting, locked past the busy timeout) is a refusal with its
    reason, not a crash: nothing stored, and the agent's next report goes through."""
    url, metrics = endpoint
    assert (await post(url, report_json(), token=token))[0] == 200  # the token is remembered

    def away(**_: Any) -> Any:
        raise DatabaseUnavailable()

    with monkeypatch.context() as patched:
        patched.setattr(service.db, "write", away)
        status, body = await post(url, report_json(), token=token)
    assert (status, body["error"]) == (503, "database_unavailable")
    assert "nothing was changed" in body["reason"]
    assert await stored(service) == (1, 1)
    assert (await post(url, report_json(), token=token))[0] == 200
    assert await stored(service) == (2, 1)
    assert b'gpubook_agent_reports_total{outcome="503"} 1.0' in metrics.exposition()


async def test_a_token_revoked_after_it_reported_is_401_at_once(
    endpoint: tuple[str, Metrics], token: str, service: BookingService, admin: Actor
) -> None:
    assert (await post(endpoint[0], report_json(), token=token))[0] == 200
    assert service.remembered_tokens  # the next report skips the lookup...
    other = BookingService(service.db, service.config, service.clock)  # another process
    await other.revoke_agent_token(admin, "gpu-host-1")
    status, body = await post(endpoint[0], report_json(), token=token)
    assert (status, body["error"]) == (401, "report_bad_token")  # ...but not the revocation
    assert await stored(service) == (1, 1)  # only the report sent before
    assert not service.remembered_tokens
    assert (await post(endpoint[0], report_json(), token=token))[0] == 401


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_report_is_413_whatever_its_framing(
    endpoint: tuple[str, Metrics], token: str, service: BookingService, chunked: bool
) -> None:
    body = report_json(padding="x" * MAX_REPORT_BYTES)
    status, answer = await post(endpoint[0], body, token=token, chunked=chunked)
    assert (status, answer["error"]) == (413, "report_too_large")
    assert "larger than 1,048,576 bytes" in answer["reason"]
    assert await stored(service) == (0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("{not json", "application/json", 400, "report_not_json"),
        (b"\xff\xfe", "application/json", 400, "report_not_json"),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400, "report_not_json"),
        (report_json(), "text/plain", 415, "report_content_type"),
        ({"host": "gpu-host-1"}, "application/json", 422, "report_field_missing"),
        (report_json(host="gpu-host-2"), "application/json", 403, "report_wrong_host"),
    ],
    ids=["syntax", "encoding", "nesting", "content-type", "contract", "other-host"],
)
async def test_a_malformed_report_is_4xx_with_a_reason_and_stores_nothing(
    endpoint: tuple[str, Metrics],
    token: str,
    service: BookingService,
    body: Any,
    content_type: str,
    status: int,
    error: str,
) -> None:
    answer_status, answer = await post(endpoint[0], body, token=token, content_type=content_type)
    assert (answer_status, answer["error"]) == (status, error)
    assert answer["reason"]
    assert await stored(service) == (0, 0)
