"""Unit tests of the Block Kit builders: valid payloads, escaping, buttons, limits, numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.core import capacity, stats
from bot.core.errors import (
    CapacityError,
    NotFound,
    PermissionDenied,
    SuggestedExtension,
    SuggestedSlot,
)
from bot.core.phrases import Code
from bot.core.pool import PoolStatus, PoolSummary
from bot.core.sentence import Quote, Size, Span, User, When, Window, say
from bot.core.snapshots import (
    AuditInfo,
    BookingInfo,
    CalendarData,
    FreeWindows,
    GpuInfo,
    GpuStatus,
    Slot,
    Usage,
    Utilisation,
)
from bot.core.timeparse import day_bounds
from bot.core.usage import LiveCard
from bot.core.vocabulary import BookingStatus
from handlers import ids
from handlers.blocks import admin, bookings, calendar, common, help, home, modals, refusals, reports
from handlers.command_parser import EXAMPLES
from tests.conftest import T0, at
from tests.slackfake.blockkit import validate_blocks, validate_view

GB = 1024
NASTY = "<!channel> <@U123> *bold* & more"
ESCAPED = "&lt;!channel&gt; &lt;@U123&gt; *bold* &amp; more"
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


# --------------------------------------------------------------------------- fixtures & helpers


def gpu(name: str = "rtx-0", gb: int = 24, gpu_id: int = 1, description: str = "") -> GpuInfo:
    return GpuInfo(gpu_id, name, gb * GB, description, None, False)


def booking(
    booking_id: int = 42,
    *,
    user: str = "U1",
    status: BookingStatus = BookingStatus.UPCOMING,
    task: str = NASTY,
    start: datetime | None = None,
    hours: int = 2,
    gb: int = 10,
    gpu_name: str = "rtx-0",
) -> BookingInfo:
    start = start or at(10)
    end = start + timedelta(hours=hours)
    return BookingInfo(
        booking_id, gpu_name, 24 * GB, user, task, gb * GB, start, end, end, status, None, user, T0
    )


def status(name: str = "rtx-0", used_gb: int = 10, gb: int = 24, gpu_id: int = 1) -> GpuStatus:
    return GpuStatus(
        gpu(name, gb, gpu_id, description=NASTY), used_gb * GB, (gb - used_gb) * GB, at(12), 1
    )


def valid(blocks: list[Block]) -> list[dict[str, Any]]:
    """Validate a message like Slack would (and round-trip it); return the dicts."""
    dicts = [b.to_dict() for b in blocks]
    validate_blocks(dicts)
    assert [b.to_dict() for b in Block.parse_all(dicts)] == dicts
    _check_action_ids_unique(dicts)
    return dicts


def valid_view(view: View | dict[str, Any]) -> dict[str, Any]:
    raw = view.to_dict() if isinstance(view, View) else view
    validate_view(raw)
    assert View(**raw).to_dict() == raw
    _check_action_ids_unique(raw["blocks"])
    return raw


def _check_action_ids_unique(dicts: list[dict[str, Any]]) -> None:
    """Slack rejects a block whose elements repeat an action_id (the SDK does not check it)."""
    for block in dicts:
        action_ids = [e["action_id"] for e in block.get("elements", []) if "action_id" in e]
        assert len(action_ids) == len(set(action_ids)), block


def strings(node: Any) -> Iterator[str]:
    """Every string in a payload (texts, values, ids)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def mrkdwn(node: Any) -> Iterator[str]:
    """Every mrkdwn text of a payload: what Slack parses for mentions and links."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield node["text"]
        for value in node.values():
            yield from mrkdwn(value)
    elif isinstance(node, list):
        for value in node:
            yield from mrkdwn(value)


def all_text(dicts: Any) -> str:
    return "\n".join(mrkdwn(dicts))


def buttons(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in dicts:
        found += [e for e in block.get("elements", []) if e.get("type") == "button"]
        if (block.get("accessory") or {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def action_ids(dicts: list[dict[str, Any]]) -> list[str]:
    return [b["action_id"] for b in buttons(dicts)]


def assert_escaped(dicts: Any) -> None:
    text = all_text(dicts)
    assert ESCAPED in text
    assert "<!channel>" not in text and "<@U123>" not in text


# --------------------------------------------------------------------------- booking cards


def test_card_shows_booking_escaped_with_date_tokens() -> None:
    dicts = valid(bookings.booking_card(booking(), now=T0, viewer_id="U1"))
    text = all_text(dicts)
    assert_escaped(dicts)
    assert "*#42*" in text and "`rtx-0`" in text and "10 GB" in text and "<@U1>" in text
    assert f"<!date^{int(at(10).timestamp())}^" in text
    assert f"<!date^{int(at(12).timestamp())}^" in text


def test_owner_of_upcoming_booking_gets_extend_cancel_edit() -> None:
    dicts = valid(bookings.booking_card(booking(), now=T0, viewer_id="U1"))
    assert action_ids(dicts) == [ids.EXTEND, ids.CANCEL, ids.EDIT]
    assert {b["value"] for b in buttons(dicts)} == {"42"}
    cancel = buttons(dicts)[1]
    assert cancel["style"] == "danger" and "confirm" in cancel
    assert "42" in dicts[-1]["block_id"]


def test_owner_of_active_booking_gets_release_not_cancel() -> None:
    card = bookings.booking_card(booking(status=BookingStatus.ACTIVE), now=T0, viewer_id="U1")
    assert action_ids(valid(card)) == [ids.EXTEND, ids.RELEASE, ids.EDIT]


@pytest.mark.parametrize(
    ("viewer", "is_admin", "state", "has_buttons"),
    [
        ("U2", False, BookingStatus.UPCOMING, False),
        ("U2", True, BookingStatus.UPCOMING, True),
        ("U2", True, BookingStatus.ACTIVE, True),
        ("U1", False, BookingStatus.COMPLETED, False),
        ("U1", True, BookingStatus.CANCELLED, False),
    ],
)
def test_buttons_only_for_owner_or_admin_while_holding(
    viewer: str, is_admin: bool, state: BookingStatus, has_buttons: bool
) -> None:
    card = bookings.booking_card(booking(status=state), now=T0, viewer_id=viewer, is_admin=is_admin)
    assert bool(action_ids(valid(card))) is has_buttons


def test_confirmation_has_headline_then_card() -> None:
    dicts = valid(
        bookings.booking_confirmation(
            booking(), headline=":white_check_mark: Booked", now=T0, viewer_id="U1"
        )
    )
    assert dicts[0]["text"]["text"] == ":white_check_mark: Booked"
    assert_escaped(dicts)
    assert ids.CANCEL in action_ids(dicts)


def test_notice_is_one_trusted_section() -> None:
    dicts = valid(common.notice("Cancelled #42.", emoji=":wastebasket:"))
    assert dicts == [
        {"type": "section", "text": {"type": "mrkdwn", "text": ":wastebasket: Cancelled #42."}}
    ]


# --------------------------------------------------------------------------- lists


def test_empty_list_says_how_to_book() -> None:
    text = all_text(valid(bookings.booking_list([], everyone=False, viewer_id="U1", now=T0)))
    assert "You have no upcoming or active bookings" in text and "`/gpubook`" in text


def test_everyone_list_has_buttons_only_on_own_bookings() -> None:
    mine, theirs = booking(1, user="U1"), booking(2, user="U2")
    dicts = valid(bookings.booking_list([mine, theirs], everyone=True, viewer_id="U1", now=T0))
    assert {b["value"] for b in buttons(dicts)} == {"1"}
    assert_escaped(dicts)


def test_a_long_list_shows_a_page_and_a_more_button_holding_the_cursor() -> None:
    many = [
        booking(i, task="<&>" * 66 + "xx", start=at(9) + timedelta(minutes=i)) for i in range(16)
    ]
    dicts = valid(bookings.booking_list(many, everyone=False, viewer_id="U1", now=T0, shown=30))
    assert len(dicts) <= 50
    shown = [b["block_id"] for b in dicts if b.get("block_id", "").startswith("booking_actions:")]
    assert shown == [f"booking_actions:{i}" for i in range(15)]
    assert "Bookings 31–45." in all_text(dicts)
    [more] = [b for b in buttons(dicts) if b["action_id"] == ids.LIST_MORE]
    cursor = json.loads(more["value"])
    assert cursor == {"all": False, "start": many[14].start.isoformat(), "id": 14, "shown": 45}


def test_the_last_page_has_no_more_button() -> None:
    page = [booking(i) for i in range(15)]
    dicts = valid(bookings.booking_list(page, everyone=True, viewer_id="U1", now=T0))
    assert ids.LIST_MORE not in action_ids(dicts) and "Bookings" not in all_text(dicts)
    after_the_end = valid(
        bookings.booking_list([], everyone=True, viewer_id="U1", now=T0, shown=15)
    )
    assert "No more bookings." in all_text(after_the_end)


# --------------------------------------------------------------------------- refusals


def test_refusal_escapes_sentence_but_keeps_mentions() -> None:
    error = PermissionDenied(Code.NOT_OWNER, id=7, owner=User("U42"), verb="cancel")
    assert "<@U42>" in all_text(valid(refusals.refusal(error, task=None, now=T0)))
    error = NotFound(Code.GPU_UNKNOWN, gpu=Quote("<!channel>"), known=say(Code.NO_GPUS))
    text = all_text(valid(refusals.refusal(error, task=None, now=T0)))
    assert "`&lt;!channel&gt;`" in text and "<!channel>" not in text


def test_capacity_refusal_offers_bookable_slots() -> None:
    same = SuggestedSlot("rtx-0", at(12), at(14), 2 * GB)
    other = SuggestedSlot("a100-1", at(10), at(12), 2 * GB)
    error = CapacityError(
        Code.NOT_ENOUGH,
        gpu_name="rtx-0",
        capacity_mib=24 * GB,
        peak_mib=23 * GB,
        requested_mib=2 * GB,
        suggestion=same,
        alternative=other,
        gpu=Quote("rtx-0"),
        window=Window(at(10), at(12)),
        held=Size(23 * GB),
        capacity=Size(24 * GB),
        peak=Window(at(10), at(12), zone=False),
        free=Size(GB),
        asked=Size(2 * GB),
    )
    dicts = valid(refusals.refusal(error, task=NASTY, now=T0))
    assert "1 GB free" in all_text(dicts)
    offered = buttons(dicts)
    assert [b["action_id"] for b in offered] == [ids.BOOK_SLOT, ids.BOOK_SLOT]
    assert json.loads(offered[0]["value"]) == {
        "gpu": "rtx-0",
        "start": int(at(12).timestamp()),
        "end": int(at(14).timestamp()),
        "mib": 2 * GB,
        "task": NASTY,
    }
    assert json.loads(offered[1]["value"])["gpu"] == "a100-1"
    assert offered[0]["text"]["text"] == "Book rtx-0 12:00–14:00 UTC"
    assert f"<!date^{int(at(12).timestamp())}^" in all_text(dicts)
    # Button text cannot hold date tokens: it is written in the one reader's own zone.
    berlin = valid(refusals.refusal(error, task=NASTY, now=T0, tz=ZoneInfo("Europe/Berlin")))
    assert buttons(berlin)[0]["text"]["text"] == "Book rtx-0 13:00–15:00 CET"


def test_capacity_refusal_without_task_or_alternative() -> None:
    error = CapacityError(
        Code.NO_GPU_FREE,
        gpu_name="rtx-0",
        capacity_mib=24 * GB,
        peak_mib=24 * GB,
        requested_mib=GB,
        suggestion=SuggestedSlot("rtx-0", at(12, day=30), at(14, day=31), GB),
        asked=Size(GB),
        window=Window(at(10), at(12)),
    )
    offered = buttons(valid(refusals.refusal(error, task=None, now=T0)))
    assert len(offered) == 1 and json.loads(offered[0]["value"])["task"] == ""
    assert len(offered[0]["text"]["text"]) <= 75


def test_refused_extension_offers_the_longest_that_fits_as_an_extend_button() -> None:
    offer = SuggestedExtension(7, timedelta(hours=1, minutes=30), at(11, 30))
    error = CapacityError(
        Code.EXTEND_AT_MOST,
        gpu_name="rtx-0",
        capacity_mib=24 * GB,
        peak_mib=20 * GB,
        requested_mib=8 * GB,
        suggestion=None,
        extension=offer,
        longest=Span(offer.by),
        until=When(offer.end),
    )
    dicts = valid(refusals.refusal(error, task=None, now=T0))
    [extend] = buttons(dicts)
    assert (extend["action_id"], extend["text"]["text"]) == (ids.EXTEND_OFFER, "Extend 1h 30m")
    assert json.loads(extend["value"]) == {"id": 7, "seconds": 5400}
    assert "Extend *#7* by 1h 30m, until <!date^" in all_text(dicts)


def test_slot_button_text_is_clipped_to_75_chars() -> None:
    long_name = "g" * 32
    button = refusals.slot_button(
        long_name, at(10), at(10) + timedelta(days=400), GB, task=None, now=T0
    )
    assert len(button.to_dict()["text"]["text"]) <= 75


# --------------------------------------------------------------------------- status & free


def test_status_shows_every_gpu_with_bar_and_numbers() -> None:
    dicts = valid(reports.status_message([status("rtx-0", 23), status("a100-1", 0, 80, 2)], now=T0))
    text = all_text(dicts)
    assert "23/24 GB" in text and "`▓" in text and "1 GB free" not in text  # detailed form
    assert "*Free now*\n1 GB" in text
    assert f"<!date^{int(at(12).timestamp())}^" in text
    assert ESCAPED in text


def test_a_full_gpu_shows_0_gb_free_in_the_unit_of_its_line() -> None:
    full = status("rtx-0", 24)
    assert "24/24 GB · 0 GB free" in reports.status_line(full, T0)
    assert "*Free now*\n0 GB" in all_text(valid(reports.status_message([full], now=T0)))


def test_status_with_300_gpus_is_compact_and_within_limits() -> None:
    many = [status(f"gpu-{i}", i % 24, gpu_id=i) for i in range(300)]
    dicts = valid(reports.status_message(many, now=T0))
    assert len(dicts) <= 50
    text = all_text(dicts)
    assert "`gpu-0`" in text and "`gpu-299`" in text


def large_pool(n: int, shown: int = 20) -> PoolStatus:
    """A pool of ``n`` GPUs of which the first ``shown`` are shown, one of them measured."""
    statuses = [status(f"gpu-{i}", i % 24, gpu_id=i) for i in range(shown)]
    live = {"gpu-1": LiveCard("gpu-1", GB, 24 * GB, 3 * GB, T0, silent=False, over=True)}
    summary = PoolSummary(n, n * 24 * GB, n * 10 * GB, n - 3, 40, 2)
    return PoolStatus(summary, statuses, live)


def test_status_of_a_large_pool_sums_it_up_and_shows_the_gpus_that_matter() -> None:
    pool = large_pool(200)
    dicts = valid(reports.status_message(pool.shown, now=T0, pool=pool))
    assert len(dicts) <= 10
    text = all_text(dicts)
    assert "*200 GPUs* · 2000/4800 GB held now · 197 with room (40 idle) · 3 full" in text
    assert ":warning: 2 to look at" in text
    assert "`gpu-0`" in text and "`gpu-19`" in text and "`gpu-20`" not in text
    assert "in use 3 GB :warning:" in text
    assert "Showing 20 of 200" in text and "`/gpubook status a100-*`" in text
    assert "*Free now*" not in text  # lines, not a section per GPU


def test_status_of_a_pool_shown_whole_looks_as_before() -> None:
    few = [status("rtx-0", 23), status("a100-1", 0, 80, 2)]
    pool = PoolStatus(PoolSummary(2, 104 * GB, 23 * GB, 2, 1, 0), few, {})
    assert reports.status_message(few, now=T0, pool=pool) == reports.status_message(few, now=T0)


def test_a_filtered_status_names_its_pattern() -> None:
    pool = large_pool(30)
    pool = replace(pool, summary=replace(pool.summary, pattern="a100-*"))
    text = all_text(valid(reports.status_message(pool.shown, now=T0, pool=pool)))
    assert "*30 GPUs* matching `a100-*`" in text


def test_status_without_gpus() -> None:
    assert "no GPUs yet" in all_text(valid(reports.status_message([], now=T0)))


def _free(n_gpus: int, *, best: bool = True) -> FreeWindows:
    per_gpu = []
    for i in range(n_gpus):
        g = gpu(f"gpu-{i}", gpu_id=i)
        slot = Slot(g.name, at(10 + i % 10), at(14 + i % 10), 20 * GB) if best and i % 3 else None
        per_gpu.append((g, slot))
    slots = [s for _, s in per_gpu if s]
    first = min(slots, key=lambda s: s.start) if slots else None
    return FreeWindows(20 * GB, timedelta(hours=4), per_gpu, first, UNTIL)


UNTIL = T0 + timedelta(days=30)


def test_free_offers_best_and_per_gpu_buttons() -> None:
    dicts = valid(reports.free_message(_free(4), now=T0, task="train"))
    text = all_text(dicts)
    assert text.startswith("*20 GB for 4h*: soonest on `gpu-1`")
    assert "Nothing fits before Wed 4 Feb 08:00 UTC on `gpu-0`, `gpu-3`." in text
    values = [json.loads(b["value"]) for b in buttons(dicts)]
    assert [v["gpu"] for v in values] == ["gpu-1", "gpu-1", "gpu-2"]
    assert values[0] == {
        "gpu": "gpu-1",
        "start": int(at(11).timestamp()),
        "end": int(at(15).timestamp()),
        "mib": 20 * GB,
        "task": "train",
    }


def test_free_with_nothing_anywhere() -> None:
    week = replace(_free(3, best=False), until=T0 + timedelta(days=7))
    dicts = valid(reports.free_message(week, now=T0))
    assert "Nothing fits on any GPU before Mon 12 Jan 08:00 UTC; ask for less" in all_text(dicts)
    assert buttons(dicts) == []


def test_free_names_gpus_too_small_for_the_request_apart_from_full_ones() -> None:
    small, full, big = gpu("rtx-0", 16, 1), gpu("rtx-1", 24, 2), gpu("a100-1", 80, 3)
    slot = Slot(big.name, at(10), at(14), 20 * GB)
    fw = FreeWindows(
        20 * GB, timedelta(hours=4), [(small, None), (full, None), (big, slot)], slot, UNTIL
    )
    text = all_text(valid(reports.free_message(fw, now=T0)))
    assert (
        "Too small for 20 GB: `rtx-0`. Nothing fits before Wed 4 Feb 08:00 UTC on `rtx-1`." in text
    )


def test_free_with_300_gpus_within_limits() -> None:
    dicts = valid(reports.free_message(_free(300), now=T0))
    assert len(dicts) <= 50
    assert "more GPUs with a later window" in all_text(dicts)


# --------------------------------------------------------------------------- calendar


def _scenario_4(tz_day_start: datetime) -> CalendarData:
    """Scenario 4: A 10 GB, B 8 GB, C 5 GB on the 24 GB card, all 10:00–12:00 UTC."""
    bookings = [
        booking(1, user="UA", gb=10, task="a"),
        booking(2, user="UB", gb=8, task="b"),
        booking(3, user="UC", gb=5, task=NASTY),
    ]
    start, end = tz_day_start, tz_day_start + timedelta(days=1)
    spans = [capacity.Span(b.start, b.end, b.memory_mib) for b in bookings]
    return CalendarData(gpu(), start, end, bookings, capacity.profile(spans, start, end))


def _strip_lines(dicts: list[dict[str, Any]]) -> list[str]:
    code = next(t for t in mrkdwn(dicts) if t.startswith("```"))
    return code.strip("`").strip().splitlines()


def test_calendar_day_strip_shows_scenario_4_peaks() -> None:
    dicts = valid(calendar.calendar_message(_scenario_4(at(0)), now=T0, tz=UTC_ZONE))
    lines = _strip_lines(dicts)
    assert len(lines) == 24
    assert lines[10] == "10:00 ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓░ 23/24 GB"
    assert lines[11] == "11:00 ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓░ 23/24 GB"
    assert lines[9].endswith("░" * 20 + " 0/24 GB")
    assert lines[12].startswith("12:00 " + "░" * 20)
    assert dicts[0]["text"]["text"] == "rtx-0 — Mon 5 Jan 2026"
    text = all_text(dicts)
    assert "<@UA>" in text and ESCAPED in text and "<!channel>" not in text
    assert f"<!date^{int(at(10).timestamp())}^" in text


def test_calendar_strip_uses_viewer_zone_and_labels_it() -> None:
    berlin_midnight = datetime(2026, 1, 5, tzinfo=BERLIN).astimezone(UTC)
    dicts = valid(calendar.calendar_message(_scenario_4(berlin_midnight), now=T0, tz=BERLIN))
    lines = _strip_lines(dicts)
    assert lines[11].startswith("11:00 ") and lines[11].endswith(" 23/24 GB")  # 10:00 UTC
    assert lines[10].endswith(" 0/24 GB")
    assert "CET" in all_text(dicts)


@pytest.mark.parametrize(
    ("day", "hours", "around_the_change", "zones"),
    [
        # Spring: 02:00 CET becomes 03:00 CEST, so the day has 23 hours.
        (datetime(2026, 3, 29), 23, ["01:00 CET ", "03:00 CEST"], "CET/CEST"),
        # Autumn: 03:00 CEST becomes 02:00 CET, so 02:00 happens twice and the day has 25 hours.
        (
            datetime(2026, 10, 25),
            25,
            ["01:00 CEST", "02:00 CEST", "02:00 CET ", "03:00 CET "],
            "CEST/CET",
        ),
    ],
)
def test_calendar_day_over_a_dst_change_labels_each_hour_by_its_clock(
    day: datetime, hours: int, around_the_change: list[str], zones: str
) -> None:
    start, end = day_bounds(day.date(), BERLIN)
    cal = CalendarData(gpu(), start, end, [], capacity.profile([], start, end))
    dicts = valid(calendar.calendar_message(cal, now=T0, tz=BERLIN))
    lines = _strip_lines(dicts)
    assert len(lines) == hours
    labels = [line[:10] for line in lines]
    first = labels.index(around_the_change[0])
    assert labels[first : first + len(around_the_change)] == around_the_change
    assert f"times in {zones}." in all_text(dicts)


def test_calendar_week_over_a_dst_change_names_both_clocks() -> None:
    start, end = day_bounds(datetime(2026, 3, 23).date(), BERLIN, days=7)
    cal = CalendarData(gpu(), start, end, [], capacity.profile([], start, end))
    assert "times in CET/CEST." in all_text(
        valid(calendar.calendar_message(cal, now=T0, tz=BERLIN, week=True))
    )


def test_calendar_week_strip_has_one_peak_per_day() -> None:
    cal = _scenario_4(at(0))
    cal = replace(
        cal,
        end=at(0, day=12),
        steps=capacity.profile(
            [capacity.Span(b.start, b.end, b.memory_mib) for b in cal.bookings],
            at(0),
            at(0, day=12),
        ),
    )
    lines = _strip_lines(valid(calendar.calendar_message(cal, now=T0, tz=UTC_ZONE, week=True)))
    assert len(lines) == 7
    assert lines[0].startswith("Mon  5 ") and lines[0].endswith("23/24 GB")
    assert all(line.endswith(" 0/24 GB") for line in lines[1:])


def test_calendar_navigation_values_parse_back() -> None:
    dicts = valid(calendar.calendar_message(_scenario_4(at(0)), now=T0, tz=UTC_ZONE))
    *nav, chart = buttons(dicts)
    assert all(calendar.CALENDAR_NAV_ACTION.match(b["action_id"]) for b in nav)
    assert [json.loads(b["value"]) for b in nav] == [
        {"gpu": "rtx-0", "day": "2026-01-04", "week": False},
        {"gpu": "rtx-0", "day": "2026-01-06", "week": False},
        {"gpu": "rtx-0", "day": "2026-01-05", "week": True},
    ]
    # The Chart button draws the day or week shown, and is not a navigation button.
    assert chart["action_id"] == ids.CALENDAR_CHART
    assert not calendar.CALENDAR_NAV_ACTION.match(chart["action_id"])
    assert json.loads(chart["value"]) == {"gpu": "rtx-0", "day": "2026-01-05", "week": False}
    week = valid(calendar.calendar_message(_scenario_4(at(0)), now=T0, tz=UTC_ZONE, week=True))
    assert [json.loads(b["value"])["day"] for b in buttons(week)] == [
        "2025-12-29",
        "2026-01-12",
        "2026-01-05",
        "2026-01-05",
    ]
    assert json.loads(buttons(week)[-1]["value"])["week"] is True


def test_calendar_nav_pattern_rejects_other_actions() -> None:
    assert calendar.CALENDAR_NAV_ACTION.match(ids.CALENDAR_NAV)
    assert not calendar.CALENDAR_NAV_ACTION.match(ids.BOOK_SLOT)
    assert not calendar.CALENDAR_NAV_ACTION.match(ids.CALENDAR_NAV + "_x")


def test_calendar_with_200_long_bookings_within_limits() -> None:
    many = [booking(i, task="&" * 200, start=at(0) + timedelta(minutes=5 * i)) for i in range(200)]
    spans = [capacity.Span(b.start, b.end, GB) for b in many]
    cal = CalendarData(gpu(), at(0), at(0, day=6), many, capacity.profile(spans, at(0), at(0, 6)))
    dicts = valid(calendar.calendar_message(cal, now=T0, tz=UTC_ZONE))
    assert len(dicts) <= 50
    assert "…and 180 more bookings" in all_text(dicts)


def test_peak_in_takes_the_maximum_step_overlapping_the_bucket() -> None:
    steps = [
        capacity.Step(at(9), at(10, 30), 5),
        capacity.Step(at(10, 30), at(10, 45), 9),
        capacity.Step(at(10, 45), at(12), 1),
    ]
    assert calendar.peak_in(steps, at(10), at(11)) == 9
    assert calendar.peak_in(steps, at(11), at(12)) == 1
    assert calendar.peak_in(steps, at(12), at(13)) == 0


# --------------------------------------------------------------------------- help & stats


def test_help_lists_forms_and_admin_section_only_for_admins() -> None:
    user = all_text(valid(help.help_message(EXAMPLES, is_admin=False)))
    assert "/gpubook book a100-1 20GB tomorrow 9:00 for 3h fine-tune" in user
    assert "&lt;gpu|any&gt;" in user and "<gpu|any>" not in user
    assert "1024 MiB" in user and "admin gpu add" not in user
    admin = all_text(valid(help.help_message(EXAMPLES, is_admin=True)))
    assert "admin gpu add" in admin


def test_gb_hours_are_exact() -> None:
    gb_hour = 1024 * 3600
    assert stats.gb_hours(gb_hour * 123) == "123.0"
    assert stats.gb_hours(gb_hour * 5 // 100) == "0.0"  # 0.05 → half-even → 0.0
    assert stats.gb_hours(gb_hour * 15 // 100) == "0.2"  # 0.15 → 0.2
    assert stats.percent(1, 3) == "33.3%" and stats.percent(1, None) == "—"


def test_stats_per_gpu_user_and_total() -> None:
    gb_hour = 1024 * 3600
    u = Utilisation(
        at(0),
        at(0, day=6),
        [Usage("rtx-0", 48 * gb_hour, 576 * gb_hour, 3), Usage("old", 0, None, 0)],
        [Usage("U1", 48 * gb_hour, None, 3)],
        Usage("total", 48 * gb_hour, 576 * gb_hour, 3),
    )
    text = all_text(valid(reports.stats_message(u, now=T0)))
    assert "`rtx-0` 48.0 / 576.0 GB·h (8.3%) · 3 bookings" in text
    assert "`old` 0.0 / — GB·h (—)" in text
    assert "<@U1> 48.0 GB·h · 3 bookings" in text
    assert "*Total*: 48.0 / 576.0 GB·h (8.3%)" in text


def test_stats_show_measured_beside_booked_and_unlinked_logins() -> None:
    gb_hour = 1024 * 3600
    u = Utilisation(
        at(0),
        at(0, day=6),
        [Usage("rtx-0", 80 * gb_hour, 576 * gb_hour, 1, 24 * gb_hour), Usage("rtx-1", 0, 1, 0)],
        [Usage("U1", 80 * gb_hour, None, 1, 24 * gb_hour), Usage("U2", 8 * gb_hour, None, 1)],
        Usage("total", 80 * gb_hour, 576 * gb_hour, 1, 30 * gb_hour),
        [Usage("<mallory>", 0, None, 0, 6 * gb_hour)],
    )
    text = all_text(valid(reports.stats_message(u, now=T0)))
    assert (
        "`rtx-0` 80.0 / 576.0 GB·h (13.9%) · 1 booking · used 24.0 GB·h (30.0% of booked)" in text
    )
    assert "<@U1> 80.0 GB·h · 1 booking · used 24.0 GB·h (30.0% of booked)" in text
    assert "<@U2> 8.0 GB·h · 1 booking\n" in text + "\n"  # no linked login: nothing measured
    assert "`rtx-1` 0.0 / 0.0 GB·h (0.0%) · 0 bookings\n" in text + "\n"
    assert "used 30.0 GB·h (37.5% of booked)" in text
    assert "*Unix logins nobody linked*" in text and "`&lt;mallory&gt;` used 6.0 GB·h" in text


def test_stats_counts_one_booking_in_the_singular() -> None:
    """`admin stats 7` said "1 bookings"."""
    gb_hour = 1024 * 3600
    u = Utilisation(
        at(0),
        at(0, day=6),
        [Usage("rtx-0", gb_hour, 576 * gb_hour, 1)],
        [Usage("U1", gb_hour, None, 1)],
        Usage("total", gb_hour, 576 * gb_hour, 1),
    )
    text = all_text(valid(reports.stats_message(u, now=T0)))
    assert text.count("· 1 booking") == 3 and "1 bookings" not in text


def test_stats_with_300_gpus_and_users_within_limits() -> None:
    u = Utilisation(
        at(0),
        at(0, day=6),
        [Usage(f"gpu-{i}", i, 10**9, 1) for i in range(300)],
        [Usage(f"U{i}", i, None, 1) for i in range(300)],
        Usage("total", 1, 1, 1),
    )
    assert len(valid(reports.stats_message(u, now=T0))) <= 50


# --------------------------------------------------------------------------- modals


def _modal_blocks(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


def test_booking_modal_defaults() -> None:
    view = valid_view(
        modals.booking_modal(
            [status("rtx-0"), status("a100-1", 0, 80, 2)], now=T0, tz=BERLIN, selected_gpu="a100-1"
        )
    )
    assert view["callback_id"] == ids.BOOK_MODAL
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Book a GPU",
        "Book",
        "Cancel",
    )
    blocks = _modal_blocks(view)
    select = blocks[ids.BLOCK_GPU]
    assert select["dispatch_action"] is True
    assert select["element"]["action_id"] == ids.MODAL_GPU_SELECT
    assert [o["value"] for o in select["element"]["options"]] == ["any", "rtx-0", "a100-1"]
    assert select["element"]["options"][1]["text"]["text"] == "rtx-0 · 24 GB · 14 GB free now"
    assert select["element"]["initial_option"]["value"] == "a100-1"
    assert blocks[ids.BLOCK_MEMORY]["element"]["initial_value"] == "40GB"
    assert blocks[ids.BLOCK_START]["element"]["initial_date_time"] == int(at(8, 15).timestamp())
    assert blocks[ids.BLOCK_DURATION]["element"]["initial_value"] == "2h"
    assert blocks[ids.BLOCK_TASK]["element"]["max_length"] == 200


def test_memory_default_follows_the_gpu_with_a_new_action_id() -> None:
    gpus = [status("rtx-0"), status("a100-1", 0, 80, 2)]
    first = _modal_blocks(valid_view(modals.booking_modal(gpus, now=T0, tz=BERLIN)))
    assert "initial_value" not in first[ids.BLOCK_MEMORY]["element"]
    assert "initial_option" not in first[ids.BLOCK_GPU]["element"]
    second = _modal_blocks(
        valid_view(modals.booking_modal(gpus, now=T0, tz=BERLIN, selected_gpu="rtx-0"))
    )
    assert second[ids.BLOCK_MEMORY]["element"]["initial_value"] == "12GB"
    assert (
        second[ids.BLOCK_MEMORY]["element"]["action_id"]
        != first[ids.BLOCK_MEMORY]["element"]["action_id"]
    )


def test_memory_default_is_exact_for_odd_capacities() -> None:
    odd = GpuStatus(GpuInfo(1, "odd", 24564, "", None, False), 0, 24564, None, 0)
    view = valid_view(modals.booking_modal([odd], now=T0, tz=UTC_ZONE, selected_gpu="odd"))
    assert _modal_blocks(view)[ids.BLOCK_MEMORY]["element"]["initial_value"] == "12282MiB"


def test_booking_modal_keeps_given_values() -> None:
    view = valid_view(
        modals.booking_modal(
            [status()],
            now=T0,
            tz=UTC_ZONE,
            selected_gpu="any",
            memory_text="20GB",
            start=at(14),
            duration_text="3h",
            task=NASTY,
            private_metadata='{"channel": "C1"}',
        )
    )
    blocks = _modal_blocks(view)
    assert blocks[ids.BLOCK_GPU]["element"]["initial_option"]["value"] == "any"
    assert blocks[ids.BLOCK_MEMORY]["element"]["initial_value"] == "20GB"
    assert blocks[ids.BLOCK_START]["element"]["initial_date_time"] == int(at(14).timestamp())
    assert blocks[ids.BLOCK_DURATION]["element"]["initial_value"] == "3h"
    assert blocks[ids.BLOCK_TASK]["element"]["initial_value"] == NASTY  # plain text: not escaped
    assert view["private_metadata"] == '{"channel": "C1"}'


def test_booking_modal_with_300_gpus_shows_99_with_most_free_and_the_selected() -> None:
    many = [status(f"gpu-{i:03}", i % 24, gpu_id=i) for i in range(300)]
    view = valid_view(modals.booking_modal(many, now=T0, tz=UTC_ZONE, selected_gpu="gpu-023"))
    options = _modal_blocks(view)[ids.BLOCK_GPU]["element"]["options"]
    assert len(options) == 100
    assert options[1]["value"] == "gpu-000"  # 0 GB used: most free
    assert "gpu-023" in [o["value"] for o in options]  # 23 GB used, kept as the selection
    assert "Showing the 99 GPUs" in all_text(view)


def test_edit_modal_upcoming_and_active() -> None:
    upcoming = valid_view(modals.edit_modal(booking(hours=3), now=T0, private_metadata="{}"))
    assert upcoming["callback_id"] == ids.EDIT_MODAL and upcoming["private_metadata"] == "{}"
    assert upcoming["title"]["text"] == "Edit booking #42"
    blocks = _modal_blocks(upcoming)
    assert blocks[ids.BLOCK_MEMORY]["element"]["initial_value"] == "10GB"
    assert blocks[ids.BLOCK_DURATION]["element"]["initial_value"] == "3h"
    assert blocks[ids.BLOCK_TASK]["element"]["initial_value"] == NASTY
    assert ids.BLOCK_START in blocks
    assert_escaped(upcoming)
    active = valid_view(
        modals.edit_modal(booking(status=BookingStatus.ACTIVE), now=T0, private_metadata="")
    )
    assert ids.BLOCK_START not in _modal_blocks(active)
    assert "<!date^" in all_text(active)


def test_edit_modal_title_fits_24_chars_for_huge_ids() -> None:
    view = valid_view(modals.edit_modal(booking(123456789012345), now=T0, private_metadata=""))
    assert len(view["title"]["text"]) <= 24


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(10), at(10, 15)),
        (at(10, 7), at(10, 15)),
        (at(10, 14) + timedelta(seconds=59, microseconds=999999), at(10, 15)),
        (at(10, 15) + timedelta(microseconds=1), at(10, 30)),
        (at(10, 45), at(11)),
        (at(23, 50), at(0, day=6)),
        (datetime(2026, 1, 5, 11, 50, tzinfo=BERLIN), at(11)),
    ],
)
def test_next_quarter_hour(now: datetime, expected: datetime) -> None:
    result = modals.next_quarter_hour(now)
    assert result == expected and result.tzinfo == UTC


def test_modal_values_reads_submitted_state_by_block() -> None:
    view = {
        "state": {
            "values": {
                ids.BLOCK_GPU: {
                    ids.MODAL_GPU_SELECT: {
                        "type": "static_select",
                        "selected_option": {"value": "rtx-0"},
                    }
                },
                ids.BLOCK_MEMORY: {
                    modals.memory_action_id("rtx-0"): {"type": "plain_text_input", "value": "8GB"}
                },
                ids.BLOCK_START: {
                    ids.INPUT: {"type": "datetimepicker", "selected_date_time": 1767607200}
                },
                ids.BLOCK_DURATION: {ids.INPUT: {"type": "plain_text_input", "value": None}},
                ids.BLOCK_TASK: {ids.INPUT: {"type": "plain_text_input", "value": "train"}},
            }
        }
    }
    assert modals.modal_values(view) == {
        "gpu": "rtx-0",
        "memory": "8GB",
        "start": 1767607200,
        "duration": None,
        "task": "train",
    }


# --------------------------------------------------------------------------- home


def test_home_view_shows_my_bookings_gpus_and_usage() -> None:
    raw = valid_view(
        home.home_view(
            user_id="U1",
            mine=[booking(1), booking(2, status=BookingStatus.ACTIVE)],
            statuses=[status("rtx-0", 23)],
            week_usage_mib_s=1024 * 3600 * 15,
            now=T0,
        )
    )
    assert raw["type"] == "home"
    ids_ = action_ids(raw["blocks"])
    assert ids_[:2] == [ids.HOME_NEW_BOOKING, ids.HOME_CALENDAR]
    assert ids.RELEASE in ids_ and ids.CANCEL in ids_
    text = all_text(raw)
    assert "23/24 GB" in text and "15.0 GB·h" in text
    assert_escaped(raw)


def test_home_cards_are_the_cards_json_at_any_instant_of_the_day() -> None:
    """The Home keeps each card's JSON by the UTC day: it must be what the card renders to at
    any instant of it, and follow the booking when it changes."""
    today, tomorrow = booking(1), booking(2, start=T0 + timedelta(days=1, hours=1))
    day_start, day_end = T0.replace(hour=0, minute=0), T0.replace(hour=23, minute=59, second=59)
    for now in (day_start, day_end, day_end + timedelta(hours=12)):  # then on tomorrow's day
        for shown in (today, tomorrow, replace(today, end=today.end + timedelta(hours=1))):
            raw = home.home_view(
                user_id="U1", mine=[shown], statuses=[], week_usage_mib_s=0, now=now
            )
            card = [b.to_dict() for b in bookings.booking_card(shown, now=now, viewer_id="U1")]
            assert raw["blocks"][4:6] == card


def test_home_view_empty() -> None:
    raw = valid_view(home.home_view(user_id="U1", mine=[], statuses=[], week_usage_mib_s=0, now=T0))
    text = all_text(raw)
    assert "no upcoming or active bookings" in text and "no GPUs yet" in text


def test_home_view_with_200_bookings_and_300_gpus_within_limits() -> None:
    mine = [booking(i, task="<&>" * 66 + "xx") for i in range(200)]
    statuses = [status(f"gpu-{i}", i % 24, gpu_id=i) for i in range(300)]
    raw = valid_view(
        home.home_view(
            user_id="U1", mine=mine, statuses=statuses, week_usage_mib_s=0, now=T0, is_admin=True
        )
    )
    assert len(raw["blocks"]) <= 100
    [more] = [b for b in buttons(raw["blocks"]) if b["action_id"] == ids.LIST_MORE]
    assert json.loads(more["value"])["shown"] == home.MAX_HOME_CARDS
    assert "`gpu-299`" in all_text(raw)


def test_home_view_of_a_large_pool_sums_it_up_within_limits() -> None:
    mine = [booking(i, task="<&>" * 66 + "xx") for i in range(200)]
    pool = large_pool(300)
    raw = valid_view(
        home.home_view(
            user_id="U1", mine=mine, statuses=pool.shown, pool=pool, week_usage_mib_s=0, now=T0
        )
    )
    assert len(raw["blocks"]) <= 100
    text = all_text(raw)
    assert "*300 GPUs*" in text and "Showing 20 of 300" in text
    assert "`gpu-19`" in text and "`gpu-20`" not in text


# --------------------------------------------------------------------------- common


def test_clip_never_exceeds_the_limit_and_prefers_a_word_break() -> None:
    assert common.clip("short", 10) == "short"
    assert common.clip("fine tune llama", 12) == "fine tune…"
    assert common.clip("x" * 100, 10) == "x" * 9 + "…"
    for limit in range(2, 40):
        assert len(common.clip("a bb ccc dddd " * 5, limit)) <= limit


def test_pack_lines_without_a_block_cap_keeps_every_line() -> None:
    lines = [f"line {n} " + "x" * 200 for n in range(100)]
    blocks = valid(common.pack_lines(lines))
    text = all_text(blocks)
    assert all(f"line {n} " in text for n in range(100)) and "more" not in text
    assert all(len(b["text"]["text"]) <= common.MAX_SECTION_TEXT for b in blocks)


def test_pack_lines_with_a_cap_summarises_the_rest() -> None:
    blocks = valid(common.pack_lines(["y" * 1000] * 20, max_blocks=2, more="see more."))
    assert len(blocks) == 2 and "…and 16 more; see more." in all_text(blocks)


# --------------------------------------------------------------------------- admin


def audit(entry_id: int, **changes: Any) -> AuditInfo:
    entry = AuditInfo(entry_id, at(9), "UADMIN", "create", 7, None, {"task": NASTY})
    return replace(entry, **changes)


def test_audit_lines_name_when_who_what_and_escape_details() -> None:
    entries = [
        audit(3),
        audit(2, actor="cli", action="gpu_add", booking_id=None, gpu_id=4, details={}),
    ]
    dicts = valid(reports.audit_message(entries, now=T0))
    text = all_text(dicts)
    first, second = text.split("\n")[:2]
    assert first.startswith(f"<!date^{int(at(9).timestamp())}^")
    assert "<@UADMIN> `create` booking *#7*" in first and "&lt;!channel&gt;" in first
    assert "`cli` `gpu_add` GPU 4" in second and "·" not in second
    assert "<!channel>" not in text and "<@U123>" not in text


def test_audit_with_200_long_entries_stays_within_limits() -> None:
    entries = [audit(n, booking_id=n, details={"task": "z" * 5000}) for n in range(200, 0, -1)]
    dicts = valid(reports.audit_message(entries, now=T0))
    assert len(dicts) <= common.MAX_MESSAGE_BLOCKS
    assert all(len(t) <= common.MAX_SECTION_TEXT for t in mrkdwn(dicts))
    assert "booking *#1*" in all_text(dicts)  # the oldest of the 200 still has its line


def test_audit_without_entries() -> None:
    assert "Nothing has been changed yet" in all_text(valid(reports.audit_message([], now=T0)))


def test_retired_message_lists_ended_and_cancelled_bookings() -> None:
    ended = [
        booking(1, status=BookingStatus.COMPLETED),
        booking(2, status=BookingStatus.CANCELLED, user="U2"),
    ]
    dicts = valid(admin.retired_message("rtx-0", ended, now=T0))
    text = all_text(dicts)
    assert text.index("*Ended early* (1)") < text.index("*#1* <@U1>") < text.index("*Cancelled*")
    assert text.index("*Cancelled* (1)") < text.index("*#2* <@U2>")
    assert_escaped(dicts)
    assert "Ended early" not in all_text(valid(admin.retired_message("rtx-0", [], now=T0)))


def test_retired_message_with_1000_bookings_within_limits() -> None:
    ended = [booking(n, status=BookingStatus.CANCELLED) for n in range(1000)]
    dicts = valid(admin.retired_message("rtx-0", ended, now=T0))
    assert "more" in all_text(dicts)


def test_gpu_edited_message_escapes_the_description() -> None:
    text = all_text(valid(admin.gpu_edited_message(gpu("rtx-1", 48, description=NASTY))))
    assert "Updated `rtx-1`: 48 GB — " + ESCAPED in text
