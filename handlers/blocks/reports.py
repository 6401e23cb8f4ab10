"""Reports on the GPUs: memory held now, free windows, utilisation stats and the audit log.

Inputs of any size are summarised rather than overflowing Slack's limits (50 blocks, 3000
characters per section): many GPUs become one line each, long lists end in "…and N more".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

from slack_sdk.models.blocks import Block, DividerBlock, MarkdownTextObject, SectionBlock

from bot.core.formats import count_of, format_duration, format_size
from bot.core.phrases import Code
from bot.core.sentence import say
from bot.core.snapshots import AuditInfo, FreeWindows, GpuStatus, Utilisation
from handlers.blocks.common import (
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    bar,
    clip,
    context,
    escape,
    header,
    pack_lines,
    section,
    slack_date,
    slack_window,
    usage,
)
from handlers.blocks.refusals import slot_button
from handlers.wording import mrkdwn

#: Above this many GPUs, status shows one compact line per GPU instead of a section each.
MAX_DETAILED_GPUS = 20
#: What a listing says when a workspace has no GPU to book.
NO_GPUS_TEXT = mrkdwn(say(Code.NO_GPUS))
_USER_ID = re.compile(r"[UW][A-Z0-9]+")


# --------------------------------------------------------------------------- status & free


def _next_change(s: GpuStatus, now: datetime) -> str:
    return slack_date(s.next_change, now=now) if s.next_change else "—"


def _gpu_title(s: GpuStatus) -> str:
    desc = f" — {escape(clip(s.gpu.description, 120))}" if s.gpu.description else ""
    return f"*`{escape(s.gpu.name)}`*{desc}"


def _status_section(s: GpuStatus, now: datetime) -> SectionBlock:
    cap = s.gpu.capacity_mib
    return SectionBlock(
        text=MarkdownTextObject(text=_gpu_title(s)),
        fields=[
            MarkdownTextObject(
                text=f"*Held now*\n`{bar(s.used_mib, cap)}` {usage(s.used_mib, cap)}"
            ),
            MarkdownTextObject(text=f"*Free now*\n{format_size(s.free_mib)}"),
            MarkdownTextObject(text=f"*Next change*\n{_next_change(s, now)}"),
            MarkdownTextObject(text=f"*Active bookings*\n{s.active_bookings}"),
        ],
    )


def status_line(s: GpuStatus, now: datetime) -> str:
    """One GPU on one line, for long lists (status with many GPUs, the App Home)."""
    cap = s.gpu.capacity_mib
    return (
        f"`{escape(s.gpu.name)}` `{bar(s.used_mib, cap)}` {usage(s.used_mib, cap)} · "
        f"{format_size(s.free_mib)} free · next change {_next_change(s, now)}"
    )


def status_message(statuses: list[GpuStatus], *, now: datetime) -> list[Block]:
    """Every GPU's memory held right now: a section each, or compact lines when there are many."""
    blocks: list[Block] = [header("GPUs now")]
    if not statuses:
        return [*blocks, section(NO_GPUS_TEXT)]
    if len(statuses) <= MAX_DETAILED_GPUS:
        blocks.extend(_status_section(s, now) for s in statuses)
    else:
        lines = [status_line(s, now) for s in statuses]
        blocks.extend(pack_lines(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2))
    blocks.append(context("Times are shown in your own time zone."))
    return blocks


def free_message(
    fw: FreeWindows,
    *,
    now: datetime,
    horizon: timedelta,
    task: str | None = None,
    tz: tzinfo = UTC,
) -> list[Block]:
    """Where and when ``fw.memory_mib`` is free for ``fw.duration``: soonest first, with Book buttons.

    ``horizon`` is how far ahead the service searched (its policy), named when nothing fits.

    Each Book button sits in a section of its own (an accessory), since one block may not repeat
    the ``book_slot`` action id.
    """
    want = f"*{format_size(fw.memory_mib)} for {format_duration(fw.duration)}*"
    nowhere = f"nothing fits in the next {format_duration(horizon)}"
    if fw.best is None:
        blocks: list[Block] = [
            section(f"{want}: {nowhere} on any GPU. Ask for less memory or a shorter window.")
        ]
    else:
        best = fw.best
        blocks = [
            section(
                f"{want}: soonest on `{escape(best.gpu_name)}` at "
                f"{slack_window(best.start, best.end, now=now)}",
                accessory=slot_button(
                    best.gpu_name, best.start, best.end, best.memory_mib, task=task, now=now, tz=tz
                ),
            ),
            DividerBlock(),
        ]
    fitting = sorted(
        ((g, s) for g, s in fw.per_gpu if s is not None), key=lambda gs: (gs[1].start, gs[0].name)
    )
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 2  # keep two blocks for the summaries below
    for gpu, slot in fitting[:room]:
        blocks.append(
            section(
                f"`{escape(gpu.name)}` ({format_size(gpu.capacity_mib)}): "
                f"{slack_window(slot.start, slot.end, now=now)}",
                accessory=slot_button(
                    slot.gpu_name, slot.start, slot.end, slot.memory_mib, task=task, now=now, tz=tz
                ),
            )
        )
    if len(fitting) > room:
        later = count_of(len(fitting) - room, "more GPU")
        blocks.append(context(f"…and {later} with a later window."))
    never = [g.name for g, s in fw.per_gpu if s is None]
    if never and fw.best is not None:
        names = ", ".join(f"`{escape(n)}`" for n in never)
        blocks.append(context(clip(f"{nowhere.capitalize()} on {names}", MAX_SECTION_TEXT)))
    return blocks


# --------------------------------------------------------------------------- stats


_MIB_S_PER_GB_H = Decimal(1024 * 3600)
_TENTH = Decimal("0.1")


def gb_hours(mib_s: int) -> str:
    """MiB·seconds as GB·hours with one decimal, computed exactly (no float rounding)."""
    return str((Decimal(mib_s) / _MIB_S_PER_GB_H).quantize(_TENTH, rounding=ROUND_HALF_EVEN))


def percent(part: int, whole: int | None) -> str:
    if not whole:
        return "—"
    return f"{(Decimal(part) * 100 / Decimal(whole)).quantize(_TENTH, rounding=ROUND_HALF_EVEN)}%"


def stats_message(u: Utilisation, *, now: datetime) -> list[Block]:
    """Utilisation over a window: GB·h booked vs available per GPU, GB·h per user, the total."""
    gpu_lines = [
        f"`{escape(g.key)}` {gb_hours(g.booked_mib_s)} / "
        f"{gb_hours(g.available_mib_s) if g.available_mib_s is not None else '—'} GB·h "
        f"({percent(g.booked_mib_s, g.available_mib_s)}) · {count_of(g.bookings, 'booking')}"
        for g in u.per_gpu
    ]
    user_lines = [
        f"<@{p.key}> {gb_hours(p.booked_mib_s)} GB·h · {count_of(p.bookings, 'booking')}"
        for p in u.per_user
    ]
    t = u.total
    blocks: list[Block] = [
        header("Utilisation"),
        section(f"From {slack_window(u.start, u.end, now=now)}"),
        section(
            f"*Total*: {gb_hours(t.booked_mib_s)} / {gb_hours(t.available_mib_s or 0)} GB·h "
            f"({percent(t.booked_mib_s, t.available_mib_s)}) · {count_of(t.bookings, 'booking')}"
        ),
        section("*Per GPU*"),
    ]
    blocks.extend(pack_lines(gpu_lines or ["No GPUs."], max_blocks=20))
    blocks.append(section("*Per user*"))
    blocks.extend(pack_lines(user_lines or ["No bookings in this window."], max_blocks=20))
    blocks.append(
        context("GB·h = memory held × hours; GB = 1024 MiB. Cancelled bookings count for nothing.")
    )
    return blocks


# --------------------------------------------------------------------------- audit


#: Characters of an audit entry's details shown on its line (the whole entry is in the database).
AUDIT_DETAILS_CHARS = 300


def _who(user_id: str) -> str:
    """A mention for Slack user ids; anything else (the CLI's ``cli``) as escaped code."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else f"`{escape(user_id)}`"


def _audit_line(e: AuditInfo, now: datetime) -> str:
    subject = " ".join(
        part
        for part in (
            f"booking *#{e.booking_id}*" if e.booking_id is not None else "",
            f"GPU {e.gpu_id}" if e.gpu_id is not None else "",
        )
        if part
    )
    details = json.dumps(e.details, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        f"{slack_date(e.at, now=now)} {_who(e.actor)} `{escape(e.action)}`"
        + (f" {subject}" if subject else "")
        + (f" · {escape(clip(details, AUDIT_DETAILS_CHARS))}" if e.details else "")
    )


def audit_message(entries: Sequence[AuditInfo], *, now: datetime) -> list[Block]:
    """The latest audit entries, newest first, one line each: when, who, what, on what, details."""
    blocks: list[Block] = [header("Audit log")]
    if not entries:
        return [*blocks, section("Nothing has been changed yet.")]
    lines = [_audit_line(e, now) for e in entries]
    blocks.extend(pack_lines(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2))
    blocks.append(context("Newest first; times in your own time zone."))
    return blocks
