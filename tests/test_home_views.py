"""Which App Homes may be on screen: opened within the window asked about, per workspace."""

from __future__ import annotations

from datetime import timedelta

from bot.booking import Actor, BookingService
from bot.core.clock import FrozenClock

HOUR = timedelta(hours=1)


async def test_a_home_is_in_view_from_its_opening_for_the_window_asked(
    service: BookingService, clock: FrozenClock
) -> None:
    asked = [("T1", "U1"), ("T2", "U1"), ("T1", "U2")]  # U1 of T2 is someone else
    assert await service.homes_in_view(asked, HOUR) == set()  # never opened
    await service.home_opened(Actor("U1", "T1"))
    await service.home_opened(Actor("U3", "T1"))  # open, but not asked about
    assert await service.homes_in_view(asked, HOUR) == {("T1", "U1")}
    assert await service.homes_in_view([], HOUR) == set()
    clock.advance(HOUR)
    assert await service.homes_in_view(asked, HOUR) == set()


async def test_opening_again_starts_the_window_again(
    service: BookingService, clock: FrozenClock
) -> None:
    await service.home_opened(Actor("U1", "T1"))
    clock.advance(HOUR - timedelta(minutes=1))
    await service.home_opened(Actor("U1", "T1"))  # an update of the same row, not a second one
    clock.advance(timedelta(minutes=30))
    assert await service.homes_in_view([("T1", "U1")], HOUR) == {("T1", "U1")}
