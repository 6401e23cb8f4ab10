"""Reports on the GPUs: memory held now, free windows, utilisation stats and the audit log.

Inputs of any size are summarised rather than overflowing Slack's limits (50 blocks, 3000
characters per section): many GPUs become one line each, long lists end in "…and N more".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from slack_sdk.models.blocks import Block, DividerBlock, MarkdownTextObject, SectionBlock

from bot.core.formats import count_of, format_duration, format_size, size_unit
from bot.core.phrases import Code
from bot.core.pool import PoolStatus, PoolSummary
from bot.core.sentence import Quote, Size, When, say
from bot.core.slack_ids import is_user_id
from bot.core.snapshots import AuditInfo, FreeWindows, GpuStatus, Utilisation
from bot.core.stats import STATS_NOTE, gpu_line, unlinked_line, user_line
from bot.core.usage import LiveCard
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
    your_zone,
)
from handlers.blocks.refusals import slot_button
from handlers.blocks.usage import live_text
from handlers.wording import mrkdwn

#: Above this many GPUs, status shows one compact line per GPU instead of a section each.
MAX_DETAILED_GPUS = 20
#: What a listing says when a workspace has no GPU to book.
NO_GPUS_TEXT = mrkdwn(say(Code.NO_GPUS))


# --------------------------------------------------------------------------- status & free


def _next_change(s: GpuStatus, now: datetime) -> str:
    return slack_date(s.next_change, now=now) if s.next_change else "—"


def _gpu_title(s: GpuStatus) -> str:
    desc = f" — {escape(clip(s.gpu.description, 120))}" if s.gpu.description else ""
    return f"*`{escape(s.gpu.name)}`*{desc}"


def _status_section(s: GpuStatus, now: datetime, live: LiveCard | None = None) -> SectionBlock:
    cap = s.gpu.capacity_mib
    unit = size_unit(s.used_mib, cap, s.free_mib)
    fields = [
        MarkdownTextObject(
            text=f"*Held now*\n`{bar(s.used_mib, cap)}` {usage(s.used_mib, cap, unit)}"
        ),
        MarkdownTextObject(text=f"*Free now*\n{format_size(s.free_mib, unit)}"),
        MarkdownTextObject(text=f"*Next change*\n{_next_change(s, now)}"),
        MarkdownTextObject(text=f"*Active bookings*\n{s.active_bookings}"),
    ]
    if live is not None:
        fields.append(MarkdownTextObject(text=f"*Measured*\n{live_text(live, now=now)}"))
    return SectionBlock(text=MarkdownTextObject(text=_gpu_title(s)), fields=fields)


def status_line(s: GpuStatus, now: datetime, live: LiveCard | None = None) -> str:
    """One GPU on one line, for long lists (status with many GPUs, the App Home); with what its
    agent measures when a card reports for it (``held 18/24 GB · in use 21 GB ⚠``)."""
    cap = s.gpu.capacity_mib
    unit = size_unit(s.used_mib, cap, s.free_mib)
    measured = f" · {live_text(live, now=now)}" if live is not None else ""
    return (
        f"`{escape(s.gpu.name)}` `{bar(s.used_mib, cap)}` {usage(s.used_mib, cap, unit)}{measured} · "
        f"{format_size(s.free_mib, unit)} free · next change {_next_change(s, now)}"
    )


def pool_line(p: PoolSummary) -> str:
    """The whole pool (or every GPU matching a filter) in one line: ``*200 GPUs* · 3,456/9,600
    GB held now · 150 with room (60 idle) · ⚠ 3 to look at``."""
    unit = size_unit(p.held_mib, p.capacity_mib)
    which = f" matching `{escape(p.pattern)}`" if p.pattern is not None else ""
    problems = f" · :warning: {p.problems} to look at" if p.problems else ""
    return (
        f"*{count_of(p.gpus, 'GPU')}*{which} · {usage(p.held_mib, p.capacity_mib, unit)} "
        f"held now · {p.with_room} with room ({p.idle} idle) · "
        f"{p.gpus - p.with_room} full{problems}"
    )


def summarised_gpus(pool: PoolStatus, now: datetime, *, more: str) -> list[Block]:
    """A pool of more GPUs than are shown: its summary line, then a line for each GPU shown,
    then which they are and how to see others (``more``)."""
    lines = [status_line(s, now, pool.live.get(s.gpu.name)) for s in pool.shown]
    shown = f"{len(pool.shown)} of {pool.summary.gpus}"
    return [
        section(pool_line(pool.summary)),
        *pack_lines(lines),
        context(
            f"Showing {shown}: those you hold memory on, those whose measured use needs a look, "
            f"then the most room now. {more}"
        ),
    ]


#: How ``status`` tells about the GPUs not shown.
STATUS_MORE = "`/gpubook status a100-*` shows the GPUs whose names match."


def status_message(
    statuses: list[GpuStatus],
    *,
    now: datetime,
    tz: tzinfo = UTC,
    live: Mapping[str, LiveCard] | None = None,
    pool: PoolStatus | None = None,
) -> list[Block]:
    """Every GPU's memory held right now (and measured, where an agent reports): a section
    each, or compact lines when there are many; given a ``pool`` with more GPUs than it shows
    (``statuses`` and ``live`` are then its own), a summary line and the GPUs shown."""
    if pool is not None:
        statuses, live = pool.shown, pool.live
    live = live or {}
    blocks: list[Block] = [header("GPUs now")]
    if not statuses:
        return [*blocks, section(NO_GPUS_TEXT)]
    if pool is not None and not pool.complete:
        blocks.extend(summarised_gpus(pool, now, more=STATUS_MORE))
    elif len(statuses) <= MAX_DETAILED_GPUS:
        blocks.extend(_status_section(s, now, live.get(s.gpu.name)) for s in statuses)
    else:
        lines = [status_line(s, now, live.get(s.gpu.name)) for s in statuses]
        blocks.extend(pack_lines(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2))
    blocks.append(context(f"Times are shown in {your_zone(tz)}."))
    return blocks


def free_message(
    fw: FreeWindows, *, now: datetime, task: str | None = None, tz: tzinfo = UTC
) -> list[Block]:
    """Where and when ``fw.memory_mib`` is free for ``fw.duration``: soonest first, with Book buttons.

    A GPU without a window is named as too small for the request, or as full until ``fw.until``
    (the latest start searched). Each Book button sits in a section of its own (an accessory),
    since one block may not repeat the ``book_slot`` action id.
    """
    want = f"*{format_size(fw.memory_mib)} for {format_duration(fw.duration)}*"
    until = When(fw.until)
    if fw.best is None:
        nowhere = mrkdwn(say(Code.NOTHING_FITS_ANYWHERE, until=until), tz, now)
        blocks: list[Block] = [section(f"{want}: {nowhere}")]
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
    small = [Quote(g.name) for g, s in fw.per_gpu if s is None and g.capacity_mib < fw.memory_mib]
    full = [Quote(g.name) for g, s in fw.per_gpu if s is None and g.capacity_mib >= fw.memory_mib]
    notes = [say(Code.TOO_SMALL_FOR, asked=Size(fw.memory_mib), gpus=small)] if small else []
    if full and fw.best is not None:
        notes.append(say(Code.NOTHING_FITS_ON, until=until, gpus=full))
    if notes:
        blocks.append(context(clip(mrkdwn(notes, tz, now), MAX_SECTION_TEXT)))
    return blocks


# --------------------------------------------------------------------------- stats


def stats_message(u: Utilisation, *, now: datetime) -> list[Block]:
    """Utilisation over a window: GB·h booked vs available (and measured) per GPU, per user,
    measured for unlinked logins, the total."""
    gpu_lines = [gpu_line(g, f"`{escape(g.key)}`") for g in u.per_gpu]
    user_lines = [user_line(p, f"<@{p.key}>") for p in u.per_user]
    blocks: list[Block] = [
        header("Utilisation"),
        section(f"From {slack_window(u.start, u.end, now=now)}"),
        section(gpu_line(u.total, "*Total*:")),
        section("*Per GPU*"),
    ]
    blocks.extend(pack_lines(gpu_lines or ["No GPUs."], max_blocks=15))
    blocks.append(section("*Per user*"))
    blocks.extend(pack_lines(user_lines or ["No bookings in this window."], max_blocks=15))
    if u.unlinked:
        blocks.append(section("*Unix logins nobody linked*"))
        lines = [unlinked_line(x, f"`{escape(x.key)}`") for x in u.unlinked]
        blocks.extend(pack_lines(lines, max_blocks=10))
    blocks.append(context(STATS_NOTE))
    return blocks


# --------------------------------------------------------------------------- audit


#: Characters of an audit entry's details shown on its line (the whole entry is in the database).
AUDIT_DETAILS_CHARS = 300


def _who(user_id: str) -> str:
    """A mention for Slack user ids; anything else (the CLI's ``cli``) as escaped code."""
    return f"<@{user_id}>" if is_user_id(user_id) else f"`{escape(user_id)}`"


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


def audit_message(entries: Sequence[AuditInfo], *, now: datetime, tz: tzinfo = UTC) -> list[Block]:
    """The latest audit entries, newest first, one line each: when, who, what, on what, details."""
    blocks: list[Block] = [header("Audit log")]
    if not entries:
        return [*blocks, section("Nothing has been changed yet.")]
    lines = [_audit_line(e, now) for e in entries]
    blocks.extend(pack_lines(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2))
    blocks.append(context(f"Newest first; times in {your_zone(tz)}."))
    return blocks
