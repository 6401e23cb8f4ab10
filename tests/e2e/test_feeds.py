"""Calendar links and charts end to end: signed slash commands and clicks to the real HTTP
endpoint, the link by DM, the feed fetched from the same server (conditional GETs, 404s), and
the chart's upload arriving at the fake Slack as a real PNG."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar
from matplotlib import image
from multidict import CIMultiDict
from sqlalchemy import func, select

from bot.booking import Actor, BookingService
from bot.core.feeds import new_token
from bot.render.chart import chart_png
from bot.runtime.runner import start_http
from handlers import ids
from handlers.blocks.calendar import calendar_value
from storage.models import CalendarLink
from tests.conftest import T0
from tests.e2e.conftest import Bot, dump

PUBLIC = "https://gpus.example.com"
FEEDS = {"public_url": PUBLIC, "draw_chart": chart_png}
_LINK = re.compile(re.escape(PUBLIC) + r"(/ics/[A-Za-z0-9_-]+\.ics)")


async def get(url: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def link_by_dm(bot: Bot, text: str = "calendar link", user: str = "UA") -> str:
    """Run the command; return the feed's path from the DM it sent (and check the reply)."""
    reply = await bot.command(text, user=user)
    assert "sent you the link in a direct message" in dump(reply)
    [dm] = await bot.fake.wait_for(
        "chat.postMessage", predicate=lambda c: c.params["channel"] == user
    )
    match = _LINK.search(dump(dm))
    assert match, dump(dm)
    assert "revoke" in dump(dm)
    return match[1]


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_a_calendar_link_by_dm_serves_the_feed_with_conditional_gets(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 8GB 10:00 for 2h train resnet")
    await bot.command("book rtx-0 4GB 11:00 for 1h eval", user="UB")
    path = await link_by_dm(bot)

    status, headers, body = await get(bot.url + path)
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    [event] = Calendar.from_ical(body).walk("VEVENT")
    assert str(event["SUMMARY"]) == "rtx-0 · 8 GB · train resnet" and int(event["SEQUENCE"]) == 0
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert modified == format_datetime(T0, usegmt=True)

    assert (await get(bot.url + path, **{"If-None-Match": etag}))[::2] == (304, b"")
    assert (await get(bot.url + path, **{"If-None-Match": f'"x", {etag}'}))[0] == 304
    assert (await get(bot.url + path, **{"If-Modified-Since": modified}))[0] == 304
    earlier = format_datetime(T0 - timedelta(seconds=1), usegmt=True)
    assert (await get(bot.url + path, **{"If-Modified-Since": earlier}))[0] == 200
    # An ETag that does not match wins over a date that would.
    assert (await get(bot.url + path, **{"If-None-Match": '"x"', "If-Modified-Since": modified}))[
        0
    ] == 200

    await bot.command("extend 1 1h")
    status, headers, body = await get(bot.url + path, **{"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    [event] = Calendar.from_ical(body).walk("VEVENT")
    assert int(event["SEQUENCE"]) == 1 and str(event["UID"]).startswith("booking-1-")


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_a_gpu_link_shows_everyones_bookings_there(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 8GB 10:00 for 2h train resnet")
    await bot.command("book rtx-0 4GB 11:00 for 1h eval", user="UB")
    path = await link_by_dm(bot, "calendar link rtx-0")
    _, _, body = await get(bot.url + path)
    summaries = sorted(str(e["SUMMARY"]) for e in Calendar.from_ical(body).walk("VEVENT"))
    assert summaries == ["rtx-0 · 4 GB · eval", "rtx-0 · 8 GB · train resnet"]


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_revoked_and_guessed_links_get_the_404_any_unknown_path_gets(bot: Bot) -> None:
    path = await link_by_dm(bot)
    assert (await get(bot.url + path))[0] == 200
    reply = await bot.command("calendar link revoke")
    assert "Turned off your 1 calendar link;" in dump(reply)

    unknown = await get(bot.url + "/no/such/page")
    for url in (path, f"/ics/{new_token()}.ics", "/ics/short.ics", "/ics/a%2Fb.ics"):
        status, headers, body = await get(bot.url + url)
        assert (status, body) == (404, unknown[2]), url
        assert "ETag" not in headers
    assert "no calendar links" in dump(await bot.command("calendar link revoke"))


async def test_without_a_public_url_the_link_command_says_what_to_set(bot: Bot) -> None:
    reply = await bot.command("calendar link")
    assert "GPUBOOK_PUBLIC_URL" in dump(reply)
    assert bot.fake.calls_to("chat.postMessage") == []
    async with bot.service.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CalendarLink)) == 0


def png_pixels(data: bytes) -> Any:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return image.imread(io.BytesIO(data), format="png")


async def chart_arrived(bot: Bot, user: str = "UA") -> Any:
    """The upload flow as Slack sees it, in order; the picture that arrived."""
    methods = [
        c.method
        for c in bot.fake.calls
        if c.method.startswith(("conversations.open", "files.")) or c.method == "file_upload"
    ]
    assert methods == [
        "conversations.open",
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ]
    [opened] = bot.fake.calls_to("conversations.open")
    assert opened.params["users"] == user
    [complete] = bot.fake.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == f"D{user}"
    [shared] = bot.fake.files.values()
    assert shared.channel == f"D{user}" and shared.name.startswith("gpubook-rtx-0-")
    assert shared.alt_txt.startswith("Memory held on rtx-0 over the ")
    return png_pixels(shared.content or b"")


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_a_chart_arrives_in_the_askers_dm_as_a_png(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 8GB 10:00 for 2h train resnet")
    await bot.command("book rtx-0 12GB 11:00 for 3h eval", user="UB")
    bot.fake.clear()
    reply = await bot.command("chart rtx-0")
    assert "sent you the chart of `rtx-0`" in dump(reply)
    pixels = await chart_arrived(bot)
    assert pixels.shape[:2] == (480, 1000)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::7]}) > 20


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_the_calendars_chart_button_sends_the_day_it_shows(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 8GB 10:00 for 2h train resnet")
    bot.fake.clear()
    value = calendar_value("rtx-0", T0.date(), True)
    reply = await bot.click(ids.CALENDAR_CHART, value)
    assert "sent you the chart" in dump(reply)
    await chart_arrived(bot)
    [shared] = bot.fake.files.values()
    assert shared.name == "gpubook-rtx-0-2026-01-05-week.png"
    assert shared.title == "rtx-0, week of Mon 5 Jan 2026"


async def test_without_matplotlib_the_chart_says_what_to_install(bot: Bot) -> None:
    await bot.add_gpu()
    reply = await bot.command("chart rtx-0")
    assert "pip install 'gpubook[chart]'" in dump(reply)
    assert bot.fake.calls_to("files.getUploadURLExternal") == []


@pytest.mark.parametrize("deps_options", [FEEDS])
async def test_an_installation_without_files_write_is_told_to_reinstall(bot: Bot) -> None:
    await bot.add_gpu()
    bot.fake.fail_next("files.getUploadURLExternal", error="missing_scope")
    reply = await bot.command("chart rtx-0")
    assert "files:write" in dump(reply) and "reinstall" in dump(reply)
    assert bot.fake.files == {}


async def test_socket_modes_http_server_serves_feeds_but_no_events(
    service: BookingService,
) -> None:
    token = await service.issue_calendar_link(Actor("UA"))
    runner = await start_http(None, {}, host="127.0.0.1", port=0, service=service)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        assert (await get(f"{url}/ics/{token}.ics"))[0] == 200
        async with aiohttp.ClientSession() as session, session.post(f"{url}/slack/events") as resp:
            assert resp.status in (404, 405)
    finally:
        await runner.cleanup()
