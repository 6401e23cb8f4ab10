"""The App Home tab: the dashboard of the seed's web app, as one ``home`` view.

It reuses the message builders (booking cards, status lines) so a booking looks the same in a
reply and on the Home tab, and stays within 100 blocks however many bookings and GPUs there are.

The view is returned as Slack's JSON. A Home open on screen is rebuilt after every change its
owner makes, and serialising its blocks through slack_sdk's validating ``to_dict`` cost more
than the rest of a rebuild — most of it in the booking cards, which rarely change between two
rebuilds. So each card's JSON is kept by everything it shows (:func:`_card_json`) and a rebuild
serialises only the cards that changed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock

from bot.core.pool import PoolStatus
from bot.core.snapshots import BookingInfo, GpuStatus
from bot.core.stats import gb_hours
from bot.core.usage import LiveCard
from handlers import ids
from handlers.blocks.bookings import booking_card, grouped, more_button, series_line
from handlers.blocks.common import button, context, header, pack_lines, section, your_zone
from handlers.blocks.reports import NO_GPUS_TEXT, status_line, summarised_gpus

#: Own bookings shown as cards (two blocks each); give one more to get the More button.
MAX_HOME_CARDS = 20
#: Blocks left for the "GPUs now" lines, packed into sections of up to 3000 characters.
MAX_GPU_SECTIONS = 40
#: Cards whose JSON is kept: a few thousand KB-sized entries, the cards of a few hundred Homes.
CARDS_KEPT = 2048

#: A block as Slack's JSON.
Json = dict[str, Any]


def _json(blocks: Iterable[Block]) -> list[Json]:
    return [block.to_dict() for block in blocks]


@functools.lru_cache(maxsize=CARDS_KEPT)
def _card_json(
    b: BookingInfo, day: date, viewer_id: str, is_admin: bool, text: str | None
) -> tuple[Json, ...]:
    """A booking card as JSON, for any instant of the UTC ``day``: a card reads the time only
    for its times' UTC fallback text, which depends on the date alone (``format_time``). The
    dicts are shared by every view that shows the card: they are sent, never changed."""
    noon = datetime.combine(day, time(12), UTC)
    return tuple(
        _json(booking_card(b, now=noon, viewer_id=viewer_id, is_admin=is_admin, text=text))
    )


def _my_bookings(
    mine: list[BookingInfo], *, user_id: str, now: datetime, is_admin: bool
) -> list[Json]:
    """The first cards of the user's bookings; a More button (as under a list) brings the rest."""
    blocks = _json([header("My bookings")])
    if not mine:
        return [*blocks, *_json([section("You have no upcoming or active bookings.")])]
    shown, day = mine[:MAX_HOME_CARDS], now.astimezone(UTC).date()
    for b, left in grouped(shown):  # a series is one card
        text = None if left is None else series_line(b, left, now=now, tz=None)
        blocks.extend(_card_json(b, day, user_id, is_admin, text))
    if len(mine) > len(shown):
        blocks.extend(_json([more_button(shown[-1], everyone=False, shown=len(shown))]))
    return blocks


def _gpus_now(
    statuses: list[GpuStatus],
    now: datetime,
    live: Mapping[str, LiveCard],
    pool: PoolStatus | None,
) -> list[Block]:
    blocks: list[Block] = [header("GPUs now")]
    if not statuses:
        return [*blocks, section(NO_GPUS_TEXT)]
    if pool is not None and not pool.complete:
        return blocks + summarised_gpus(pool, now, more="`/gpubook status a100-*` shows others.")
    lines = [status_line(s, now, live.get(s.gpu.name)) for s in statuses]
    return blocks + pack_lines(lines, max_blocks=MAX_GPU_SECTIONS, more="see `/gpubook status`.")


def home_view(
    *,
    user_id: str,
    mine: list[BookingInfo],
    statuses: list[GpuStatus],
    week_usage_mib_s: int,
    now: datetime,
    is_admin: bool = False,
    tz: tzinfo = UTC,
    live: Mapping[str, LiveCard] | None = None,
    pool: PoolStatus | None = None,
) -> Json:
    """The Home tab as Slack's JSON: New booking / Calendar buttons, my bookings, every GPU now
    (or, given a ``pool`` of more GPUs than it shows — ``statuses`` and ``live`` are then its
    own — their summary and the GPUs that matter), my week's usage."""
    if pool is not None:
        statuses, live = pool.shown, pool.live
    top = [
        header("gpubook"),
        ActionsBlock(
            block_id="home_actions",
            elements=[
                button("New booking", ids.HOME_NEW_BOOKING, "new", style="primary"),
                button("Calendar", ids.HOME_CALENDAR, "calendar"),
            ],
        ),
        DividerBlock(),
    ]
    rest = [
        DividerBlock(),
        *_gpus_now(statuses, now, live or {}, pool),
        DividerBlock(),
        section(f"*My usage this week*: {gb_hours(week_usage_mib_s)} GB·h"),
        context(f"Times are shown in {your_zone(tz)}. GB = 1024 MiB."),
    ]
    mine_json = _my_bookings(mine, user_id=user_id, now=now, is_admin=is_admin)
    return {"type": "home", "blocks": [*_json(top), *mine_json, *_json(rest)]}
