"""The notification builders alone: limits, escaping, fallbacks and buttons (no Slack, no DB)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.core.snapshots import BookingInfo, Notice
from bot.core.vocabulary import BookingStatus, NoticeKind
from bot.lifecycle.routing import obsolete
from handlers import ids
from handlers.blocks.notifications import (
    DETAIL_LINES,
    DM_FULL_ITEMS,
    EMOJI,
    Message,
    booking_message,
    dm_message,
    render,
    summary_message,
)
from storage.models import Notification
from tests.conftest import T0
from tests.slackfake import validate_blocks

NASTY = "<!channel> <@U123> *bold* & more"
ESCAPED = "&lt;!channel&gt; &lt;@U123&gt; *bold* &amp; more"


def info(booking_id: int, *, task: str = "train", gpu: str = "a100-1") -> BookingInfo:
    return BookingInfo(
        id=booking_id,
        gpu_name=gpu,
        gpu_capacity_mib=81920,
        user_id="UALICE",
        task=task,
        memory_mib=20480,
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        original_end=T0 + timedelta(hours=2),
        status=BookingStatus.ACTIVE,
        end_reason=None,
        created_by="UALICE",
        created_at=T0,
    )


def dicts(message: Message) -> list[dict]:
    """The blocks as Slack receives them."""
    return [block.to_dict() for block in message.blocks]


def section_text(blocks: list[dict]) -> str:
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")


@pytest.mark.parametrize("kind", sorted(EMOJI))
def test_every_kind_escapes_user_text_and_has_a_fallback(kind: str) -> None:
    details = {"action": "edited", "by": "UADMIN", "planned_end": T0.isoformat()}
    message = booking_message(Notice(kind, info(7, task=NASTY), details), now=T0)

    validate_blocks(dicts(message))
    assert message.text.startswith(EMOJI[kind]) and "#7" in message.text
    for shown in (message.text, section_text(dicts(message))):
        assert ESCAPED in shown and "<!channel>" not in shown and "<@U123>" not in shown


def test_released_message_says_how_much_memory_was_freed() -> None:
    item = Notice("released", info(3), {"planned_end": (T0 + timedelta(hours=3)).isoformat()})
    text = booking_message(item, now=T0).text
    assert "20 GB freed on `a100-1`" in text
    assert f"<!date^{int((T0 + timedelta(hours=3)).timestamp())}^" in text


def test_only_the_reminder_carries_extend_and_release_buttons() -> None:
    reminder = booking_message(Notice("reminder", info(9)), now=T0)
    [actions] = [b for b in dicts(reminder) if b["type"] == "actions"]
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        (ids.EXTEND, "9", "Extend 1 h"),
        (ids.RELEASE, "9", "Release now"),
    ]
    started = booking_message(Notice("started", info(9)), now=T0)
    assert all(b["type"] != "actions" for b in dicts(started))


def test_a_thousand_bookings_fit_one_valid_message_and_each_id_appears_once() -> None:
    items = [Notice("started", info(n, task=NASTY)) for n in range(1, 1001)]

    message = summary_message(items, now=T0)

    validate_blocks(dicts(message))
    text = section_text(dicts(message))
    assert sorted(int(n) for n in re.findall(r"#(\d+)", text)) == list(range(1, 1001))
    assert text.count(ESCAPED) == DETAIL_LINES  # full lines for the first few only
    assert message.text == "1000 bookings started on `a100-1`"


def test_summary_groups_kinds_in_lifecycle_order_and_names_the_gpus() -> None:
    items = [
        Notice("ended", info(1, gpu="b")),
        Notice("started", info(2, gpu="a")),
        Notice("started", info(3, gpu="c")),
    ]
    message = summary_message(items, now=T0)
    assert message.text == "2 bookings started on `a`, `c`; 1 booking ended on `b`"
    text = section_text(dicts(message))
    assert text.index(EMOJI["started"]) < text.index(EMOJI["ended"])


def test_several_dms_keep_each_reminders_buttons_until_too_many() -> None:
    few = dm_message([Notice("reminder", info(n)) for n in range(1, 4)], now=T0)
    validate_blocks(dicts(few))
    assert sum(b["type"] == "actions" for b in dicts(few)) == 3

    many = dm_message([Notice("reminder", info(n)) for n in range(1, DM_FULL_ITEMS + 2)], now=T0)
    validate_blocks(dicts(many))
    assert "ending soon" in many.text


def test_watch_notices_render_without_a_booking_beside_booking_ones() -> None:
    """A window opened (with its Book button) and an expiry: rendered from their details, after
    a booking's notice in the same DM; the rows are not obsolete for lacking a booking."""
    window = {"watch": 3, "mib": 10240, "seconds": 7200, "pattern": None}
    opened = Notice(
        NoticeKind.WATCH_OPEN,
        None,
        window
        | {
            "gpu": "rtx-0",
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=2)).isoformat(),
            "task": NASTY,
            "deadline": (T0 + timedelta(days=1)).isoformat(),
        },
    )
    expired = Notice(
        NoticeKind.WATCH_EXPIRED,
        None,
        window | {"pattern": "a100-*", "deadline": T0.isoformat()},
    )
    later = (T0 + timedelta(hours=5)).isoformat()
    moved = Notice(NoticeKind.MOVED, info(1), {"was_gpu": "a100-1", "was_start": later})
    message = render([moved, opened, expired], direct=True, now=T0)
    validate_blocks(dicts(message))
    text = json.dumps(dicts(message), ensure_ascii=False)
    assert text.index("#1 moved up") < text.index("Watch #3: 10 GB for 2h fits on `rtx-0`")
    assert "Watch #3 expired: 10 GB for 2h never fitted on `a100-*`" in text
    [book] = [
        e
        for b in dicts(message)
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.BOOK_SLOT
    ]
    assert book["text"]["text"] == "Book rtx-0 Mon 08:00–10:00 UTC"
    assert json.loads(book["value"])["task"] == NASTY  # the button books with the raw task
    for kind in (NoticeKind.WATCH_OPEN, NoticeKind.WATCH_EXPIRED):
        assert not obsolete(Notification(kind=kind, booking=None, details={}))


def test_a_booking_shifted_aside_is_told_it_keeps_its_start_on_another_card() -> None:
    """Shifted to make room for a booking made later: same start, another card — not "moved up"."""
    same = (T0 + timedelta(hours=1)).isoformat()
    shifted = Notice(
        NoticeKind.MOVED, info(1, gpu="rtx-0"), {"was_gpu": "a100-1", "was_start": same}
    )
    text = json.dumps(dicts(render([shifted], direct=True, now=T0)), ensure_ascii=False)
    assert "#1 moved to `rtx-0` instead of `a100-1`, still at" in text
    assert "moved up" not in text
