"""Refusals, and the "Book this window" buttons offered with them and with free windows.

A refused series offers to book the occurrences that fit (:func:`series_fit_offer`).
A capacity refusal offers the earliest and a sooner window, each as a Book button carrying
everything needed to book it as offered (:func:`slot_value`); a refused extension offers the
longest extension that fits, as an Extend button. Slack rejects a block whose buttons repeat an
``action_id``, so each button is the accessory of a section of its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo

from slack_sdk.models.blocks import Block, ButtonElement, SectionBlock

from bot.core.errors import (
    CapacityError,
    GpubookError,
    SeriesOffer,
    SeriesRefused,
    SuggestedExtension,
    SuggestedSlot,
)
from bot.core.formats import format_duration, format_size
from bot.core.timefmt import zoned_window
from handlers import ids
from handlers.blocks.common import button, clip, escape, section, slack_date, slack_window
from handlers.wording import SlackText

#: Task text carried in a Book button's JSON value (the service caps tasks at 200 anyway).
MAX_VALUE_TASK_CHARS = 500


def slot_value(gpu: str, start: datetime, end: datetime, mib: int, task: str | None) -> str:
    """The JSON a Book button carries: everything needed to book the window as offered."""
    return json.dumps(
        {
            "gpu": gpu,
            "start": int(start.timestamp()),
            "end": int(end.timestamp()),
            "mib": mib,
            "task": clip(task or "", MAX_VALUE_TASK_CHARS),
        },
        ensure_ascii=False,
    )


def slot_button(
    gpu: str,
    start: datetime,
    end: datetime,
    mib: int,
    *,
    task: str | None,
    now: datetime,
    tz: tzinfo = UTC,
) -> ButtonElement:
    """``Book a100-1 12:00–14:00 CET``: button text cannot hold date tokens, so it is written in
    the zone of the one person who sees it (these buttons are only on ephemeral replies)."""
    label = f"Book {gpu} {zoned_window(start, end, tz, now)}"
    return button(label, ids.BOOK_SLOT, slot_value(gpu, start, end, mib, task), style="primary")


def _offer(
    label: str, slot: SuggestedSlot, task: str | None, now: datetime, tz: tzinfo
) -> SectionBlock:
    text = (
        f"{label} `{escape(slot.gpu_name)}`, {format_size(slot.memory_mib)}: "
        f"{slack_window(slot.start, slot.end, now=now)}"
    )
    accessory = slot_button(
        slot.gpu_name, slot.start, slot.end, slot.memory_mib, task=task, now=now, tz=tz
    )
    return section(text, accessory=accessory)


def extension_value(offer: SuggestedExtension) -> str:
    """The JSON an "Extend N" button carries: the booking and the whole seconds to add."""
    return json.dumps({"id": offer.booking_id, "seconds": offer.by // timedelta(seconds=1)})


def _extension_offer(offer: SuggestedExtension, now: datetime) -> SectionBlock:
    length = format_duration(offer.by)
    accessory = button(
        f"Extend {length}", ids.EXTEND_OFFER, extension_value(offer), style="primary"
    )
    text = f"Extend *#{offer.booking_id}* by {length}, until {slack_date(offer.end, now=now)}"
    return section(text, accessory=accessory)


def series_fit_value(offer: SeriesOffer) -> str:
    """The JSON the "Book the N that fit" button carries: the request again, to book partially."""
    return json.dumps(
        {
            "gpu": offer.gpu_name,
            "mib": offer.memory_mib,
            "rule": offer.rule,
            "task": clip(offer.task, MAX_VALUE_TASK_CHARS),
        },
        ensure_ascii=False,
    )


def series_fit_offer(offer: SeriesOffer) -> SectionBlock:
    label = f"Book the {offer.fits} that fit"
    accessory = button(label, ids.BOOK_SERIES_FIT, series_fit_value(offer), style="primary")
    text = f"Or book only the {offer.fits} occurrences that fit, and leave the others out."
    return section(text, accessory=accessory)


def refusal(
    error: GpubookError, *, task: str | None, now: datetime, tz: tzinfo = UTC
) -> list[Block]:
    """The service's sentence, and for a capacity refusal one button per offer: Book for a
    window, Extend for the longest extension that fits."""
    blocks: list[Block] = [section(f":x: {error.render(SlackText(tz, now))}")]
    if isinstance(error, CapacityError):
        if error.suggestion is not None:
            blocks.append(_offer("Earliest on", error.suggestion, task, now, tz))
        if error.alternative is not None:
            blocks.append(_offer("Sooner on", error.alternative, task, now, tz))
        if error.extension is not None:
            blocks.append(_extension_offer(error.extension, now))
    if isinstance(error, SeriesRefused) and error.offer is not None:
        blocks.append(series_fit_offer(error.offer))
    return blocks
