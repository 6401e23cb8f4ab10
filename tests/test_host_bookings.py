"""Which card `gpubook run` gives its caller, from the host's bookings the bot sent: pure, timed
by an injected instant."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.cli.wording import terminal_text
from bot.core.errors import GpubookError, InputError, NotFound, PermissionDenied
from bot.core.host_bookings import (
    HostBooking,
    HostBookings,
    HostCard,
    grant,
    host_bookings_from,
    parse_host_bookings,
)
from tests.conftest import T0

RTX0 = HostCard("GPU-aaaa-0000", "rtx-0", 24564, 24 * 1024)
RTX1 = HostCard("GPU-bbbb-1111", "rtx-1", 24564, 24 * 1024)
HOUR = timedelta(hours=1)


def booking(
    id: int, card: HostCard, *logins: str, gb: int = 8, start=T0 - HOUR, end=T0 + HOUR
) -> HostBooking:
    return HostBooking(id, card.uuid, logins, gb * 1024, start, end)


def refusal(kind: type[GpubookError], known: HostBookings, login: str, **kw) -> str:
    with pytest.raises(kind) as info:
        grant(known, login, T0, **kw)
    return terminal_text(info.value, now=T0)


def test_the_callers_booking_under_way_gives_its_card_and_caps() -> None:
    known = HostBookings((RTX0, RTX1), (booking(7, RTX1, "alice", "al"), booking(8, RTX0, "bob")))
    granted = grant(known, "al", T0)
    assert granted.card == RTX1 and granted.memory_mib == 8192
    env = granted.environment()
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb-1111"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.333"  # 8192 / 24564, rounded down
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=8192M"
    assert (env["GPUBOOK_BOOKING"], env["GPUBOOK_MEMORY_MIB"], env["GPUBOOK_GPU"]) == (
        "7",
        "8192",
        "rtx-1",
    )
    assert env["GPUBOOK_UNTIL"] == (T0 + HOUR).isoformat()


def test_two_bookings_on_one_card_hold_together() -> None:
    later_end = T0 + 3 * HOUR
    known = HostBookings(
        (RTX0,), (booking(1, RTX0, "alice"), booking(2, RTX0, "alice", gb=4, end=later_end))
    )
    granted = grant(known, "alice", T0)
    assert granted.memory_mib == 12 * 1024 and granted.end == later_end
    assert granted.environment()["GPUBOOK_BOOKING"] == "1,2"


def test_someone_elses_booking_is_never_given_and_an_offer_is_made_when_memory_is_free() -> None:
    known = HostBookings((RTX0, RTX1), (booking(8, RTX0, "bob", gb=20),))
    said = refusal(PermissionDenied, known, "alice", command="python t.py")
    assert "No booking of yours (login alice) is under way on this host's cards" in said
    assert "the Slack command 'link alice'" in said
    # rtx-1 has the most free; at most 8 GB is offered
    assert "24 GB is free on rtx-1 now" in said
    assert "gpubook run --gpu rtx-1 --book 8GB --for 2h -- python t.py" in said
    on_bobs = refusal(PermissionDenied, known, "alice", gpu="rtx-0")
    assert "No booking of yours (login alice) is under way on rtx-0." in on_bobs
    assert "4 GB is free on rtx-0 now" in on_bobs and "--book 4GB" in on_bobs


def test_no_offer_when_nothing_is_free() -> None:
    known = HostBookings((RTX0,), (booking(8, RTX0, "bob", gb=24),))
    said = refusal(PermissionDenied, known, "alice")
    assert "free" not in said and "--book" not in said


def test_an_ended_booking_gives_nothing_and_one_not_started_says_when() -> None:
    ended = HostBookings((RTX0,), (booking(1, RTX0, "alice", start=T0 - 2 * HOUR, end=T0),))
    assert "No booking of yours" in refusal(PermissionDenied, ended, "alice")
    soon = HostBookings((RTX0,), (booking(2, RTX0, "alice", start=T0 + HOUR / 2),))
    assert "Your booking #2 on rtx-0 starts 08:30 UTC; run then." in refusal(
        PermissionDenied, soon, "alice"
    )


def test_two_cards_under_way_need_gpu_and_gpu_chooses() -> None:
    known = HostBookings((RTX0, RTX1), (booking(1, RTX0, "alice"), booking(2, RTX1, "alice", gb=4)))
    said = refusal(InputError, known, "alice")
    assert said == "You have bookings under way on rtx-0, rtx-1; choose one with '--gpu NAME'."
    assert grant(known, "alice", T0, gpu="rtx-1").bookings == (known.bookings[1],)
    assert (
        refusal(NotFound, known, "alice", gpu="rtx-9")
        == "rtx-9 is not a card of this host; its cards are: rtx-0, rtx-1."
    )


def test_the_answer_reads_back_and_a_wrong_one_is_a_value_error() -> None:
    known = HostBookings((RTX0,), (booking(1, RTX0, "alice", "al"),))
    assert parse_host_bookings(known.to_json()) == known
    assert host_bookings_from({"ok": True, "host_bookings": known.to_json()}) == known
    assert host_bookings_from({"ok": True}) is None  # an older bot answers without them
    for wrong in ({}, {"cards": [{}], "bookings": []}, {"cards": 3, "bookings": []}):
        with pytest.raises(ValueError):
            parse_host_bookings(wrong)
    naive = known.to_json()
    naive["bookings"][0]["end"] = "2026-01-05T09:00:00"
    with pytest.raises(ValueError, match="no time zone"):
        parse_host_bookings(naive)


def test_free_now_counts_only_bookings_under_way() -> None:
    known = HostBookings(
        (RTX0,), (booking(1, RTX0, "a", gb=10), booking(2, RTX0, "b", start=T0 + HOUR))
    )
    assert known.free_now(T0) == {"rtx-0": 14 * 1024}
