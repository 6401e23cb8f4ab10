"""The pure reconciliation: which bookings are kept, over-used, idle, or missing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.reconcile import CardState, Finding, Holding, Limits, per_person, reconcile
from bot.core.vocabulary import FindingKind
from tests.conftest import T0

LIMITS = Limits(512, timedelta(minutes=30), timedelta(seconds=45))
LINKS = {"alice": "UA", "al": "UA", "bob": "UB"}
GB = 1024


def card(users, prev=None, *, seen=None, at=T0, first=T0 - timedelta(hours=2), capacity=24 * GB):
    return CardState(1, capacity, at, first, users, prev, seen or {})


def held(user: str = "UA", mib: int = 18 * GB, booking: int = 7, start=T0 - timedelta(hours=1)):
    return Holding(booking, 1, user, mib, start)


def test_logins_add_up_per_person_and_unlinked_ones_are_left_out() -> None:
    readings = {"alice": 1000, "al": 500, "bob": None, "mallory": 9, "?": 3}
    assert per_person(readings, LINKS) == {"UA": 1500, "UB": None}


def test_over_use_needs_two_reports_in_a_row_beyond_the_tolerance() -> None:
    over = {"alice": 18 * GB + 513}
    at_limit = {"alice": 18 * GB + 512}
    assert reconcile([card(over, at_limit)], [held()], LINKS, T0, LIMITS) == []
    assert reconcile([card(over, None)], [held()], LINKS, T0, LIMITS) == []
    assert reconcile([card(over, over)], [held()], LINKS, T0, LIMITS) == [
        Finding(FindingKind.OVERUSE, 1, "UA", 18 * GB + 513, 18 * GB, 7, 0)
    ]


def test_over_use_counts_every_login_and_booking_of_the_person_and_names_the_biggest() -> None:
    use = {"alice": 10 * GB, "al": 6 * GB}
    mine = [held(mib=8 * GB, booking=7), held(mib=6 * GB, booking=8), held("UB", 4 * GB, 9)]
    found = reconcile([card(use, use)], mine, LINKS, T0, LIMITS)
    [finding] = [f for f in found if f.kind == FindingKind.OVERUSE]
    assert [f.booking_id for f in found if f.kind == FindingKind.IDLE] == [9]  # bob is not there
    assert (finding.used_mib, finding.booked_mib, finding.booking_id, finding.others_mib) == (
        16 * GB,
        14 * GB,
        7,
        4 * GB,
    )


def test_unbooked_use_of_a_linked_person_beyond_the_tolerance() -> None:
    use = {"bob": 3 * GB, "mallory": 20 * GB, "alice": 100}
    [finding] = reconcile([card(use, use)], [held("UA", GB)], LINKS, T0, LIMITS)
    assert finding == Finding(FindingKind.UNBOOKED, 1, "UB", 3 * GB, 0, None, GB)
    assert finding.subject == "UB"


def test_unknown_memory_is_never_called_over_use() -> None:
    use = {"alice": None}
    assert reconcile([card(use, use)], [held(mib=GB)], LINKS, T0, LIMITS) == []


def test_idle_when_the_owner_had_no_process_on_the_card_for_the_whole_while() -> None:
    long_ago = T0 - timedelta(minutes=31)
    idle = reconcile([card({}, {}, seen={"alice": long_ago})], [held()], LINKS, T0, LIMITS)
    assert idle == [Finding(FindingKind.IDLE, 1, "UA", 0, 18 * GB, 7)]
    assert idle[0].subject == "7"
    recent = {"al": T0 - timedelta(minutes=29)}
    assert reconcile([card({}, {}, seen=recent)], [held()], LINKS, T0, LIMITS) == []


def test_idle_is_not_called_too_early_or_without_a_way_to_see_the_owner() -> None:
    quiet = card({}, {})
    just_started = held(start=T0 - timedelta(minutes=29))
    assert reconcile([quiet], [just_started], LINKS, T0, LIMITS) == []
    new_card = card({}, {}, first=T0 - timedelta(minutes=10))
    assert reconcile([new_card], [held()], LINKS, T0, LIMITS) == []
    assert reconcile([quiet], [held("UNOLOGIN")], LINKS, T0, LIMITS) == []


def test_a_silent_card_yields_nothing() -> None:
    use = {"alice": 23 * GB}
    stale = card(use, use, at=T0 - timedelta(seconds=46))
    assert reconcile([stale], [held()], LINKS, T0, LIMITS) == []


@given(
    st.integers(0, 30 * GB),
    st.integers(0, 30 * GB),
    st.lists(st.integers(GB, 24 * GB), max_size=3),
)
def test_over_use_is_exactly_both_reports_beyond_the_booked_memory(
    now_mib: int, before_mib: int, bookings: list[int]
) -> None:
    holdings = [held(mib=m, booking=n) for n, m in enumerate(bookings, 1)]
    findings = reconcile(
        [card({"alice": now_mib}, {"alice": before_mib})], holdings, LINKS, T0, LIMITS
    )
    use = [f for f in findings if f.kind != FindingKind.IDLE]
    limit = sum(bookings) + LIMITS.tolerance_mib
    expected = now_mib > limit and before_mib > limit
    assert bool(use) == expected
    if use:
        assert use[0].kind == (FindingKind.OVERUSE if bookings else FindingKind.UNBOOKED)
