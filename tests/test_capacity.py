"""Tests for the pure capacity core in ``bot/capacity.py``.

Every function is checked against a brute force that evaluates held memory minute by minute on a
grid (``BASE + k minutes``), plus the acceptance scenarios as plain examples.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.capacity import (
    GpuLoad,
    Peak,
    Placement,
    Span,
    Step,
    best_placement,
    earliest_fit,
    fits,
    fits_until,
    peak,
    profile,
)

BASE = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GB = 1024
CARD = 24 * GB

GRID = 600  # span boundaries live on minutes 0..GRID
HORIZON = 1000  # every reference lookup stays below this minute

PROPS = settings(max_examples=300, deadline=None)


def t(k: int) -> datetime:
    """Minute ``k`` of the grid."""
    return BASE + k * MINUTE


def k_of(when: datetime) -> int:
    """The grid minute of ``when`` (which must lie on the grid)."""
    minutes, rest = divmod(when - BASE, MINUTE)
    assert rest == timedelta(0), f"{when} is not on the minute grid"
    return minutes


def at(hour: int, minute: int = 0) -> datetime:
    return BASE.replace(hour=hour, minute=minute)


# --------------------------------------------------------------------------- brute-force reference


def held(spans: list[Span]) -> list[int]:
    """held[k] = MiB held at minute k: the sum over spans with start <= t(k) < end."""
    h = [0] * HORIZON
    for s in spans:
        for k in range(k_of(s.start), k_of(s.end)):
            h[k] += s.mib
    return h


def ref_peak(h: list[int], s: int, e: int) -> int:
    return max(h[k] for k in range(s, e))


def ref_earliest_fit(
    h: list[int], capacity: int, mib: int, d: int, not_before: int, latest_start: int
) -> int | None:
    if mib > capacity:
        return None
    for s in range(not_before, latest_start + 1):
        if all(h[k] + mib <= capacity for k in range(s, s + d)):
            return s
    return None


def ref_best(
    loads: list[tuple[int, list[int]]], mib: int, d: int, not_before: int, latest_start: int
) -> tuple[int, int, int] | None:
    """(start, spare, index) of the best GPU, ties to the first GPU in order."""
    best = None
    for index, (capacity, h) in enumerate(loads):
        s = ref_earliest_fit(h, capacity, mib, d, not_before, latest_start)
        if s is None:
            continue
        candidate = (s, capacity - ref_peak(h, s, s + d) - mib, index)
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    return best


# --------------------------------------------------------------------------------------- strategies


capacities = st.one_of(st.integers(1, 100), st.just(CARD))


@st.composite
def span_lists(draw, capacity: int) -> list[Span]:
    # A coarse granularity makes coinciding boundaries (back to back, same start) common.
    gran = draw(st.sampled_from([1, 1, 15, 60]))
    top = GRID // gran
    # Few distinct sizes make equal usage in separate stretches (ties for the peak) common.
    mibs = st.integers(1, capacity) | st.integers(1, min(capacity, 3))
    spans = []
    for _ in range(draw(st.integers(0, 30))):
        a = draw(st.integers(0, top - 1))
        b = draw(st.integers(a + 1, top))
        spans.append(Span(t(a * gran), t(b * gran), draw(mibs)))
    return spans


@st.composite
def loads(draw) -> tuple[int, list[Span]]:
    capacity = draw(capacities)
    return capacity, draw(span_lists(capacity))


@st.composite
def windows(draw) -> tuple[int, int]:
    s = draw(st.integers(0, GRID + 50))
    e = draw(st.integers(s + 1, GRID + 100))
    return s, e


@st.composite
def requests(draw, capacity: int) -> tuple[int, int, int, int]:
    """(mib, duration, not_before, latest_start) in minutes; sometimes mib > capacity."""
    mib = draw(st.integers(1, capacity + 2))
    d = draw(st.integers(1, 240))
    not_before = draw(st.integers(0, GRID + 20))
    latest_start = draw(st.integers(max(0, not_before - 10), GRID + 100))
    return mib, d, not_before, latest_start


# ------------------------------------------------------------------------------- property tests


@PROPS
@given(loads(), windows())
def test_peak_matches_brute_force(load, window):
    _, spans = load
    s, e = window
    h = held(spans)
    p = peak(spans, t(s), t(e))
    assert p.mib == ref_peak(h, s, e)
    ps, pe = k_of(p.start), k_of(p.end)
    assert s <= ps < pe <= e
    assert all(h[k] == p.mib for k in range(ps, pe))
    # The first stretch: nothing earlier in the window reaches the peak, and the stretch is
    # maximal (the minute right after it, if inside the window, holds less).
    assert all(h[k] < p.mib for k in range(s, ps))
    if pe < e:
        assert h[pe] < p.mib


@PROPS
@given(st.data())
def test_fits_matches_brute_force(data):
    capacity, spans = data.draw(loads())
    s, e = data.draw(windows())
    mib = data.draw(st.integers(0, capacity + 2))
    expected = ref_peak(held(spans), s, e) + mib <= capacity
    assert fits(spans, capacity, mib, t(s), t(e)) is expected


@PROPS
@given(loads(), windows())
def test_profile_is_the_held_step_function(load, window):
    _, spans = load
    s, e = window
    h = held(spans)
    steps = profile(spans, t(s), t(e))
    assert steps
    assert steps[0].start == t(s)
    assert steps[-1].end == t(e)
    for a, b in zip(steps, steps[1:], strict=False):
        assert a.end == b.start
        assert a.used_mib != b.used_mib
    for step in steps:
        assert step.start < step.end
        assert all(h[k] == step.used_mib for k in range(k_of(step.start), k_of(step.end)))


@PROPS
@given(st.data())
def test_earliest_fit_matches_brute_force(data):
    capacity, spans = data.draw(loads())
    mib, d, not_before, latest_start = data.draw(requests(capacity))
    expected = ref_earliest_fit(held(spans), capacity, mib, d, not_before, latest_start)
    got = earliest_fit(spans, capacity, mib, d * MINUTE, t(not_before), t(latest_start))
    assert got == (None if expected is None else t(expected))


@PROPS
@given(st.data())
def test_best_placement_matches_brute_force(data):
    gpus = data.draw(st.lists(loads(), min_size=1, max_size=4))
    smallest = min(capacity for capacity, _ in gpus)
    mib, d, not_before, latest_start = data.draw(requests(smallest))
    got = best_placement(
        [GpuLoad(f"gpu{i}", c, spans) for i, (c, spans) in enumerate(gpus)],
        mib,
        d * MINUTE,
        t(not_before),
        t(latest_start),
    )
    expected = ref_best([(c, held(spans)) for c, spans in gpus], mib, d, not_before, latest_start)
    if expected is None:
        assert got is None
    else:
        start, spare, index = expected
        assert got == Placement(f"gpu{index}", t(start), t(start + d), spare)


@PROPS
@given(st.data())
def test_fits_until_matches_brute_force(data):
    capacity, spans = data.draw(loads())
    s, e = data.draw(windows())
    mib = data.draw(st.integers(0, capacity + 2))
    h = held(spans)
    expected = next((k for k in range(s, e) if h[k] + mib > capacity), e)
    assert fits_until(spans, capacity, mib, t(s), t(e)) == t(expected)


def test_fits_until_stops_where_a_booking_fills_the_card():
    spans = [Span(at(11), at(12), 20 * GB)]
    assert fits_until(spans, CARD, 8 * GB, at(10), at(13)) == at(11)
    assert fits_until(spans, CARD, 4 * GB, at(10), at(13)) == at(13)
    assert fits_until(spans, CARD, 8 * GB, at(11), at(13)) == at(11)  # nothing fits at all


# ----------------------------------------------------------------------- acceptance scenarios


def test_consecutive_bookings_do_not_add_up():
    spans = [Span(at(10), at(11), 16 * GB), Span(at(11), at(12), 16 * GB)]
    assert peak(spans, at(10), at(12)).mib == 16 * GB  # the naive sum would say 32 GB
    assert fits(spans, CARD, 8 * GB, at(10), at(12))
    assert not fits(spans, CARD, 9 * GB, at(10), at(12))


def test_back_to_back_full_card_bookings_fit():
    first = Span(at(10), at(12), CARD)
    assert fits([first], CARD, CARD, at(12), at(14))
    both = [first, Span(at(12), at(14), CARD)]
    assert peak(both, at(10), at(14)) == Peak(CARD, at(10), at(14))
    assert profile(both, at(9), at(15)) == [
        Step(at(9), at(10), 0),
        Step(at(10), at(14), CARD),
        Step(at(14), at(15), 0),
    ]


def test_three_concurrent_bookings_peak():
    spans = [
        Span(at(10), at(12), 10 * GB),
        Span(at(10), at(12), 8 * GB),
        Span(at(10), at(12), 5 * GB),
    ]
    assert peak(spans, at(9), at(13)) == Peak(23 * GB, at(10), at(12))
    assert fits(spans, CARD, 1 * GB, at(10), at(12))
    assert not fits(spans, CARD, 2 * GB, at(10), at(12))


def test_exact_capacity_fits():
    assert fits([], CARD, CARD, at(10), at(12))
    spans = [Span(at(10), at(12), 20 * GB)]
    assert fits(spans, CARD, 4 * GB, at(10), at(12))
    assert not fits(spans, CARD, 4 * GB + 1, at(10), at(12))


def test_fractional_gigabytes_in_integer_mib_fill_the_card_exactly():
    sizes = [8294, 8090, 8192]  # 8.1 GB + 7.9 GB + 8.0 GB
    assert sum(sizes) == CARD
    spans = [Span(at(10), at(12), mib) for mib in sizes[:2]]
    assert fits(spans, CARD, sizes[2], at(10), at(12))
    assert not fits(spans, CARD, sizes[2] + 1, at(10), at(12))
    assert peak([*spans, Span(at(10), at(12), sizes[2])], at(10), at(12)).mib == CARD


def test_request_bigger_than_the_card_never_fits():
    assert earliest_fit([], CARD, CARD + 1, timedelta(hours=1), at(10), at(20)) is None
    gpus = [GpuLoad("a", CARD, [])]
    assert best_placement(gpus, CARD + 1, timedelta(hours=1), at(10), at(20)) is None


def test_earliest_fit_suggests_the_end_of_the_blocking_booking():
    spans = [Span(at(10), at(12), 20 * GB)]
    hour = timedelta(hours=1)
    assert earliest_fit(spans, CARD, 8 * GB, hour, at(10), at(18)) == at(12)
    assert earliest_fit(spans, CARD, 4 * GB, hour, at(10), at(18)) == at(10)
    # A window that ends when the booking starts fits before it.
    assert earliest_fit(spans, CARD, 8 * GB, hour, at(9), at(18)) == at(9)
    # The horizon is inclusive: starting exactly at latest_start is allowed...
    assert earliest_fit(spans, CARD, 8 * GB, hour, at(10), at(12)) == at(12)
    # ...but not one minute after it.
    assert earliest_fit(spans, CARD, 8 * GB, hour, at(10), at(11, 59)) is None
    assert earliest_fit(spans, CARD, 8 * GB, hour, at(11), at(10)) is None


def test_best_placement_prefers_the_sooner_gpu():
    busy = GpuLoad("busy", CARD, [Span(at(10), at(12), 20 * GB)])
    idle = GpuLoad("idle", 48 * GB, [])
    got = best_placement([busy, idle], 8 * GB, timedelta(hours=1), at(10), at(18))
    assert got == Placement("idle", at(10), at(11), 40 * GB)


def test_best_placement_then_prefers_the_tighter_fit():
    roomy = GpuLoad("roomy", CARD, [])
    tight = GpuLoad("tight", CARD, [Span(at(9), at(13), 12 * GB)])
    got = best_placement([roomy, tight], 8 * GB, timedelta(hours=1), at(10), at(18))
    assert got == Placement("tight", at(10), at(11), 4 * GB)


def test_best_placement_remaining_ties_go_to_the_first_gpu():
    gpus = [GpuLoad("a", CARD, []), GpuLoad("b", CARD, [])]
    got = best_placement(gpus, 8 * GB, timedelta(hours=1), at(10), at(18))
    assert got is not None and got.key == "a"
    assert best_placement([], 8 * GB, timedelta(hours=1), at(10), at(18)) is None


def test_peak_reports_the_first_stretch_of_equal_peaks():
    spans = [Span(at(10), at(11), 8 * GB), Span(at(13), at(14), 8 * GB), Span(at(12), at(15), GB)]
    assert peak(spans, at(9), at(16)) == Peak(9 * GB, at(13), at(14))
    spans = [Span(at(10), at(11), 8 * GB), Span(at(13), at(14), 8 * GB)]
    assert peak(spans, at(9), at(16)) == Peak(8 * GB, at(10), at(11))
    assert peak(spans, at(10, 30), at(16)) == Peak(8 * GB, at(10, 30), at(11))


def test_profile_of_no_bookings_is_one_empty_step():
    assert profile([], at(10), at(12)) == [Step(at(10), at(12), 0)]
    assert peak([], at(10), at(12)) == Peak(0, at(10), at(12))


def test_spans_outside_the_window_are_ignored_and_overlaps_are_clipped():
    spans = [Span(at(8), at(10), CARD), Span(at(11), at(15), 4 * GB), Span(at(12), at(13), 0)]
    assert profile(spans, at(10), at(12)) == [
        Step(at(10), at(11), 0),
        Step(at(11), at(12), 4 * GB),
    ]


def test_iterables_are_accepted():
    spans = [Span(at(10), at(11), GB), Span(at(10, 30), at(12), GB)]
    assert peak(iter(spans), at(9), at(13)) == Peak(2 * GB, at(10, 30), at(11))
    assert fits((s for s in spans), CARD, 22 * GB, at(9), at(13))


@pytest.mark.parametrize("end", [at(10), at(9)])
def test_empty_window_raises(end):
    with pytest.raises(ValueError):
        profile([], at(10), end)
    with pytest.raises(ValueError):
        peak([], at(10), end)
    with pytest.raises(ValueError):
        fits([], CARD, GB, at(10), end)


@pytest.mark.parametrize("duration", [timedelta(0), -timedelta(minutes=1)])
def test_non_positive_duration_raises(duration):
    with pytest.raises(ValueError):
        earliest_fit([], CARD, GB, duration, at(10), at(12))
    with pytest.raises(ValueError):
        best_placement([GpuLoad("a", CARD, [])], GB, duration, at(10), at(12))


def test_peak_over_ten_thousand_spans():
    # Span i holds 1 MiB over minutes [i, i + 60): 60 are held at once from minute 59 on.
    spans = [Span(t(i), t(i + 60), 1) for i in range(10_000)]
    assert peak(spans, t(0), t(10_060)) == Peak(60, t(59), t(10_000))
    # From minute 10,000 on only 59 are held, so 1 more MiB fits on a 60 MiB card.
    assert earliest_fit(spans, 60, 1, 30 * MINUTE, t(100), t(20_000)) == t(10_000)
