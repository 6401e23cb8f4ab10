"""Block Kit messages: booking cards, refusals, lists, status, free windows, calendar, help, stats.

Every builder is a pure function of the service's snapshots, so it is tested without Slack. User
text (tasks, descriptions) always goes through :func:`escape`; times that several people read are
``<!date^…>`` tokens so each reader sees their own zone. Inputs of any size are summarised rather
than overflowing Slack's limits (50 blocks, 3000 characters per section, 75 per button text).

Slack rejects a block whose buttons repeat an ``action_id``, so buttons that share a listener
(Book, calendar navigation) sit in blocks of their own or carry a suffix; see
:data:`CALENDAR_NAV_ACTION`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.core.capacity import Step
from bot.core.errors import CapacityError, GpubookError, SuggestedSlot
from bot.core.formats import format_duration, format_size
from bot.core.phrases import Code
from bot.core.sentence import say
from bot.core.snapshots import (
    AuditInfo,
    BookingInfo,
    BookingStatus,
    CalendarData,
    FreeWindows,
    GpuInfo,
    GpuStatus,
    Utilisation,
)
from bot.core.timefmt import format_window, zone_label
from bot.core.timeparse import day_bounds
from handlers import ids
from handlers.blocks.common import (
    MAX_SECTION_TEXT,
    bar,
    clip,
    escape,
    pack_lines,
    section,
    slack_date,
    slack_window,
    usage,
)
from handlers.wording import SlackText, mrkdwn

MAX_MESSAGE_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
#: Cards shown in a list before the rest is summarised (each card is two blocks).
MAX_LIST_CARDS = 15
#: Above this many GPUs, status shows one compact line per GPU instead of a section each.
MAX_DETAILED_GPUS = 20
#: Bookings listed under a calendar before the rest is summarised.
MAX_CALENDAR_BOOKINGS = 20
#: A task longer than this is cut in one-line listings (the card shows it whole).
SHORT_TASK_CHARS = 80
#: Task text carried in a Book button's JSON value (the service caps tasks at 200 anyway).
MAX_VALUE_TASK_CHARS = 500

#: Prefix of every block id of a booking card's buttons; the booking id follows.
BOOKING_ACTIONS_BLOCK = "booking_actions:"
#: Action ids of the calendar's three buttons (one block may not repeat an action id).
CALENDAR_PREV = f"{ids.CALENDAR_NAV}:prev"
CALENDAR_NEXT = f"{ids.CALENDAR_NAV}:next"
CALENDAR_TOGGLE = f"{ids.CALENDAR_NAV}:toggle"
#: Register the calendar listener with this pattern: it matches all three buttons.
CALENDAR_NAV_ACTION = re.compile(rf"^{re.escape(ids.CALENDAR_NAV)}(:[a-z]+)?$")

#: What a listing says when a workspace has no GPU to book.
NO_GPUS_TEXT = mrkdwn(say(Code.NO_GPUS))
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_STATUS_LABEL = {
    BookingStatus.UPCOMING: ":hourglass_flowing_sand: upcoming",
    BookingStatus.ACTIVE: ":large_green_circle: active",
    BookingStatus.COMPLETED: ":white_circle: completed",
    BookingStatus.CANCELLED: ":no_entry_sign: cancelled",
}


# --------------------------------------------------------------------------- small pieces


def short_task(task: str) -> str:
    """A task for one-line listings: cut *before* escaping so no ``&amp;`` is split in half."""
    return escape(clip(task, SHORT_TASK_CHARS))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT))])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, MAX_HEADER_TEXT)))


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, **kwargs
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=clip(text, MAX_BUTTON_TEXT)),
        action_id=action_id,
        value=value,
        style=style,
        **kwargs,
    )


def mib_text(mib: int) -> str:
    """Memory as exact text a user could type back: ``40GB`` when whole, else ``1234MiB``."""
    return f"{mib // 1024}GB" if mib % 1024 == 0 else f"{mib}MiB"


# --------------------------------------------------------------------------- bookings


def _card_text(b: BookingInfo, now: datetime) -> str:
    return (
        f"*#{b.id}* · `{escape(b.gpu_name)}` · *{format_size(b.memory_mib)}* · "
        f"{slack_window(b.start, b.end, now=now)} · {_STATUS_LABEL.get(b.status, b.status)}\n"
        f"{escape(b.task)} — <@{b.user_id}>"
    )


def _card_buttons(b: BookingInfo) -> list[ButtonElement]:
    value = str(b.id)
    buttons = [button(ids.EXTEND_LABEL, ids.EXTEND, value)]
    if b.status == BookingStatus.ACTIVE:
        buttons.append(button("Release now", ids.RELEASE, value))
    if b.status == BookingStatus.UPCOMING:
        buttons.append(
            button(
                "Cancel",
                ids.CANCEL,
                value,
                style="danger",
                confirm=ConfirmObject(
                    title="Cancel this booking?",
                    text=f"Booking #{b.id} on {b.gpu_name} will be cancelled.",
                    confirm="Cancel booking",
                    deny="Keep it",
                    style="danger",
                ),
            )
        )
    buttons.append(button("Edit", ids.EDIT, value))
    return buttons


def may_change(b: BookingInfo, *, viewer_id: str, is_admin: bool) -> bool:
    """Whether to show change buttons: the owner or an admin, and the booking still holds memory.

    This only hides buttons; the service re-checks ownership, so a forged click is still refused.
    """
    return b.is_holding and (is_admin or b.user_id == viewer_id)


def booking_card(
    b: BookingInfo, *, now: datetime, viewer_id: str, is_admin: bool = False
) -> list[Block]:
    """One booking: a section, plus Extend/Release/Cancel/Edit buttons for whoever may change it."""
    blocks: list[Block] = [section(_card_text(b, now))]
    if may_change(b, viewer_id=viewer_id, is_admin=is_admin):
        blocks.append(
            ActionsBlock(block_id=f"{BOOKING_ACTIONS_BLOCK}{b.id}", elements=_card_buttons(b))
        )
    return blocks


def booking_confirmation(
    b: BookingInfo, *, headline: str, now: datetime, viewer_id: str
) -> list[Block]:
    """A trusted headline (``:white_check_mark: Booked …``) above the booking's card."""
    return [section(headline), *booking_card(b, now=now, viewer_id=viewer_id)]


def booking_list(
    bookings: list[BookingInfo],
    *,
    everyone: bool,
    viewer_id: str,
    now: datetime,
    is_admin: bool = False,
) -> list[Block]:
    """Upcoming and active bookings (the viewer's or everyone's), at most 15 cards."""
    title = "Everyone's bookings" if everyone else "Your bookings"
    blocks: list[Block] = [header(title)]
    if not bookings:
        empty = (
            "Nobody has an upcoming or active booking."
            if everyone
            else "You have no upcoming or active bookings."
        )
        blocks.append(
            section(
                f"{empty} Book with `/gpubook` (a form) or `/gpubook book a100-1 20GB now for 2h task`."
            )
        )
        return blocks
    for b in bookings[:MAX_LIST_CARDS]:
        blocks.extend(booking_card(b, now=now, viewer_id=viewer_id, is_admin=is_admin))
    hidden = len(bookings) - MAX_LIST_CARDS
    if hidden > 0:
        where = "`/gpubook calendar <gpu>`" if everyone else "`/gpubook list all`"
        blocks.append(context(f"…and {hidden} more; see {where} for more."))
    return blocks


def notice(text: str, *, emoji: str = ":information_source:") -> list[Block]:
    """A one-line confirmation from trusted text (the caller escapes any user text in it)."""
    return [section(f"{emoji} {text}".strip())]


# --------------------------------------------------------------------------- refusals & slots


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
    label = f"Book {gpu} {format_window(start, end, tz, now)} {zone_label(tz, start)}"
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


def refusal(
    error: GpubookError, *, task: str | None, now: datetime, tz: tzinfo = UTC
) -> list[Block]:
    """The service's sentence, and for a capacity refusal one Book button per offered window."""
    blocks: list[Block] = [section(f":x: {error.render(SlackText(tz, now))}")]
    if isinstance(error, CapacityError):
        if error.suggestion is not None:
            blocks.append(_offer("Earliest on", error.suggestion, task, now, tz))
        if error.alternative is not None:
            blocks.append(_offer("Sooner on", error.alternative, task, now, tz))
    return blocks


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
        blocks.append(context(f"…and {len(fitting) - room} more GPUs with a later window."))
    never = [g.name for g, s in fw.per_gpu if s is None]
    if never and fw.best is not None:
        names = ", ".join(f"`{escape(n)}`" for n in never)
        blocks.append(context(clip(f"{nowhere.capitalize()} on {names}", MAX_SECTION_TEXT)))
    return blocks


# --------------------------------------------------------------------------- calendar


def peak_in(steps: Iterable[Step], start: datetime, end: datetime) -> int:
    """The most memory held at any instant of ``[start, end)`` according to ``steps``."""
    return max((s.used_mib for s in steps if s.start < end and s.end > start), default=0)


def _strip(cal: CalendarData, tz: tzinfo, week: bool) -> list[str]:
    """The held-memory strip: one line per hour of the day, or per day of the week (peaks)."""
    cap = cal.gpu.capacity_mib
    buckets: list[tuple[str, datetime, datetime]] = []
    if week:
        first = cal.start.astimezone(tz).date()
        for offset in range(7):
            day = first + timedelta(days=offset)
            day_start, day_end = day_bounds(day, tz)
            start, end = max(day_start, cal.start), min(day_end, cal.end)
            if start < end:
                buckets.append((f"{day:%a} {day.day:>2}", start, end))
    else:
        cursor = cal.start
        while cursor < cal.end:
            end = min(cursor + timedelta(hours=1), cal.end)
            buckets.append((f"{cursor.astimezone(tz):%H:%M}", cursor, end))
            cursor = end
    return [
        f"{label} {bar(peak, cap)} {usage(peak, cap)}"
        for label, start, end in buckets
        for peak in [peak_in(cal.steps, start, end)]
    ]


def calendar_value(gpu: str, day: date, week: bool) -> str:
    """The JSON a calendar button carries: which GPU, which (local) day, day or week view."""
    return json.dumps({"gpu": gpu, "day": day.isoformat(), "week": week})


def _calendar_nav(cal: CalendarData, tz: tzinfo, week: bool) -> ActionsBlock:
    day = cal.start.astimezone(tz).date()
    step = timedelta(days=7 if week else 1)
    unit = "week" if week else "day"
    name = cal.gpu.name
    return ActionsBlock(
        block_id=f"{ids.CALENDAR_NAV}:{name}:{day.isoformat()}",
        elements=[
            button(f"◀ Previous {unit}", CALENDAR_PREV, calendar_value(name, day - step, week)),
            button(f"Next {unit} ▶", CALENDAR_NEXT, calendar_value(name, day + step, week)),
            button(
                "Day view" if week else "Week view",
                CALENDAR_TOGGLE,
                calendar_value(name, day, not week),
            ),
        ],
    )


def booking_line(b: BookingInfo, now: datetime) -> str:
    """One booking on one line of a list: id, owner, memory, window, short task."""
    return (
        f"• *#{b.id}* <@{b.user_id}> · {format_size(b.memory_mib)} · "
        f"{slack_window(b.start, b.end, now=now)} · {short_task(b.task)}"
    )


def _calendar_line(b: BookingInfo, now: datetime) -> str:
    status = " _(cancelled)_" if b.status == BookingStatus.CANCELLED else ""
    return booking_line(b, now) + status


def calendar_message(
    cal: CalendarData, *, now: datetime, tz: tzinfo, week: bool = False
) -> list[Block]:
    """A GPU over a day (hour by hour) or a week (day by day): peak memory held, then the bookings.

    The strip is plain text in a code block, so it cannot use date tokens: its hours are in
    ``tz`` (the viewer's zone) and labelled so.
    """
    first = cal.start.astimezone(tz)
    when = (
        f"week of {first:%a} {first.day} {first:%b %Y}"
        if week
        else f"{first:%a} {first.day} {first:%b %Y}"
    )
    strip = "\n".join(_strip(cal, tz, week))
    unit = "day" if week else "hour"
    blocks: list[Block] = [
        header(f"{cal.gpu.name} — {when}"),
        context(
            f"Peak memory held per {unit} on `{escape(cal.gpu.name)}` "
            f"({format_size(cal.gpu.capacity_mib)}), times in {zone_label(tz, cal.start)}."
        ),
        section(f"```\n{clip(strip, MAX_SECTION_TEXT - 8)}\n```"),
    ]
    if cal.bookings:
        shown = [_calendar_line(b, now) for b in cal.bookings[:MAX_CALENDAR_BOOKINGS]]
        blocks.extend(pack_lines(shown, max_blocks=5))
        hidden = len(cal.bookings) - MAX_CALENDAR_BOOKINGS
        if hidden > 0:
            blocks.append(
                context(f"…and {hidden} more bookings in this {'week' if week else 'day'}.")
            )
    else:
        blocks.append(
            section(f"No bookings on `{escape(cal.gpu.name)}` in this {'week' if week else 'day'}.")
        )
    blocks.append(_calendar_nav(cal, tz, week))
    return blocks


# --------------------------------------------------------------------------- help & stats


_UNITS_HELP = (
    "*Sizes*: `20GB`, `20G`, `20480MiB`, `512MiB` or `50%` of the GPU. GB means 1024 MiB, as "
    "`nvidia-smi` reports cards.\n"
    "*Durations*: `90m`, `1h30m`, `2h`, `2d`.\n"
    "*Times* (in your own time zone): `now`, `14:00`, `2pm`, `tomorrow 9am`, `mon 10:00`, "
    "`2026-12-01 09:00`.\n"
    "Bookings may share a GPU as long as the memory held at every instant fits the card."
)


def help_message(examples: Iterable[tuple[str, str, str]], *, is_admin: bool) -> list[Block]:
    """Every command form with an example (``handlers.commands.registry.EXAMPLES``); admin forms
    only for admins."""
    user_lines, admin_lines = [], []
    for form, example, explanation in examples:
        # Forms hold `<gpu|any>`: escaped, or Slack would read them as links.
        line = f"`{escape(form)}` — {explanation}"
        if example != form:
            line += f"\n      e.g. `{escape(example)}`"
        (admin_lines if form.startswith("/gpubook admin") else user_lines).append(line)
    blocks: list[Block] = [header("gpubook: book shared GPUs by time and memory")]
    blocks.extend(pack_lines(user_lines, max_blocks=3))
    blocks.append(section(_UNITS_HELP))
    if is_admin and admin_lines:
        blocks.append(header("Admin"))
        blocks.extend(pack_lines(admin_lines, max_blocks=2))
    return blocks


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
        f"({percent(g.booked_mib_s, g.available_mib_s)}) · {g.bookings} bookings"
        for g in u.per_gpu
    ]
    user_lines = [
        f"<@{p.key}> {gb_hours(p.booked_mib_s)} GB·h · {p.bookings} bookings" for p in u.per_user
    ]
    t = u.total
    blocks: list[Block] = [
        header("Utilisation"),
        section(f"From {slack_window(u.start, u.end, now=now)}"),
        section(
            f"*Total*: {gb_hours(t.booked_mib_s)} / {gb_hours(t.available_mib_s or 0)} GB·h "
            f"({percent(t.booked_mib_s, t.available_mib_s)}) · {t.bookings} bookings"
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


# --------------------------------------------------------------------------- admin


def retired_message(gpu: str, ended: Sequence[BookingInfo], *, now: datetime) -> list[Block]:
    """A GPU retired, and the bookings that retiring it ended early or cancelled (owners are DMed)."""
    blocks = notice(
        f"Retired `{escape(gpu)}`; it takes no new bookings.", emoji=":white_check_mark:"
    )
    cancelled = [b for b in ended if b.status == BookingStatus.CANCELLED]
    stopped = [b for b in ended if b.status != BookingStatus.CANCELLED]
    room = (MAX_MESSAGE_BLOCKS - len(blocks)) // 2
    for title, group in (("Ended early", stopped), ("Cancelled", cancelled)):
        if group:
            lines = [f"*{title}* ({len(group)}):", *(booking_line(b, now) for b in group)]
            blocks.extend(pack_lines(lines, max_blocks=room))
    return blocks


def gpu_edited_message(gpu: GpuInfo) -> list[Block]:
    """A GPU as an admin's edit left it."""
    desc = f" — {escape(clip(gpu.description, 500))}" if gpu.description else ""
    return notice(
        f"Updated `{escape(gpu.name)}`: {format_size(gpu.capacity_mib)}{desc}",
        emoji=":white_check_mark:",
    )


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
