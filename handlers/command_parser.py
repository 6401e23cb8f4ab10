"""The `/gpubook` text grammar: words typed by a user → one typed command object.

Kept pure (no Slack, no database) so the console, the CLI and Slack read commands identically and
so the whole grammar is testable with a fixed clock. Subcommand words and units are
case-insensitive, GPU names are lower-cased, task text is kept as typed.

`book` is forgiving on purpose: when parts are missing it returns a :class:`Book` naming them in
``missing`` so the caller can open a pre-filled modal instead of refusing. Parts that are present
but malformed are refused with an :class:`~bot.core.errors.InputError` saying what to type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.gpu_names import validate_gpu_name
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.timeparse import parse_day, split_when
from bot.core.units import MAX_MIB, parse_duration, parse_size


@dataclass(frozen=True)
class OpenModal:
    """Bare `/gpubook`: open the booking modal."""


@dataclass(frozen=True)
class Book:
    """`book <gpu|any> <size> <start> for <duration>|until <end> [task…]`.

    ``gpu`` is ``None`` for `any` (auto-placement) or when missing. ``size_text`` stays text because
    `50%` only means something once the GPU is chosen. Exactly one of ``end``/``duration`` is set
    when the request is complete; ``missing`` names absent parts, in grammar order, from
    ``("gpu", "size", "start", "duration", "task")``.
    """

    gpu: str | None
    size_text: str | None
    start: datetime | None
    end: datetime | None
    duration: timedelta | None
    task: str | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListBookings:
    """`list` (mine) or `list all` (everyone's)."""

    everyone: bool = False


@dataclass(frozen=True)
class Cancel:
    booking_id: int


@dataclass(frozen=True)
class Release:
    booking_id: int


@dataclass(frozen=True)
class Edit:
    booking_id: int


@dataclass(frozen=True)
class Extend:
    booking_id: int
    by: timedelta


@dataclass(frozen=True)
class Calendar:
    """`calendar [gpu] [day|week]`; ``week`` with a ``day`` means the week starting that day."""

    gpu: str | None = None
    day: date | None = None
    week: bool = False


@dataclass(frozen=True)
class Status:
    """`status`: every GPU's use right now."""


@dataclass(frozen=True)
class Free:
    """`free <size> [for <duration>]`; ``duration`` ``None`` lets the caller use its default."""

    size_text: str
    duration: timedelta | None = None


@dataclass(frozen=True)
class Help:
    """`help`."""


@dataclass(frozen=True)
class AdminGpuAdd:
    name: str
    size_text: str
    description: str | None = None


@dataclass(frozen=True)
class AdminGpuRetire:
    """`admin gpu retire <name> [cancel-future]`: with the option, its bookings end or are cancelled."""

    name: str
    cancel_future: bool = False


@dataclass(frozen=True)
class AdminGpuEdit:
    """`admin gpu edit <name> size <SIZE> | rename <NEW> | description <TEXT…>`: one change each."""

    name: str
    size_text: str | None = None
    new_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class AdminChannel:
    """`admin channel #channel [gpu]`: the workspace's notification channel, or one GPU's."""

    channel_id: str
    gpu: str | None = None


@dataclass(frozen=True)
class AdminAudit:
    """`admin audit [n]`: the latest ``limit`` audit entries."""

    limit: int = 20


@dataclass(frozen=True)
class AdminStats:
    days: int = 7


Command = (
    OpenModal
    | Book
    | ListBookings
    | Cancel
    | Release
    | Edit
    | Extend
    | Calendar
    | Status
    | Free
    | Help
    | AdminGpuAdd
    | AdminGpuRetire
    | AdminGpuEdit
    | AdminChannel
    | AdminStats
    | AdminAudit
)

MAX_STATS_DAYS = 3650
DEFAULT_AUDIT_ENTRIES = 20
MAX_AUDIT_ENTRIES = 200
CANCEL_FUTURE = "cancel-future"

EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("/gpubook", "/gpubook", "Open the booking form."),
    (
        "/gpubook book <gpu|any> <size> <start> for <duration> <task>",
        "/gpubook book a100-1 20GB tomorrow 9:00 for 3h fine-tune",
        "Book memory on a GPU (`any` picks one for you).",
    ),
    (
        "/gpubook book <gpu|any> <size> <start> until <end> <task>",
        "/gpubook book any 20GB now until 17:00 eval run",
        "Book until a given time instead of for a duration.",
    ),
    ("/gpubook list", "/gpubook list", "Your upcoming and active bookings."),
    ("/gpubook list all", "/gpubook list all", "Everyone's upcoming and active bookings."),
    ("/gpubook cancel <id>", "/gpubook cancel 42", "Cancel a booking that has not started."),
    ("/gpubook release <id>", "/gpubook release 42", "End an active booking early."),
    ("/gpubook edit <id>", "/gpubook edit 42", "Change a booking in a form."),
    ("/gpubook extend <id> <duration>", "/gpubook extend 42 2h", "Make a booking longer."),
    (
        "/gpubook calendar [gpu] [day|week]",
        "/gpubook calendar a100-1 friday",
        "Bookings and memory held over a day or a week.",
    ),
    ("/gpubook status", "/gpubook status", "Every GPU's use right now."),
    (
        "/gpubook free <size> [for <duration>]",
        "/gpubook free 40GB for 4h",
        "When and where that much memory is free soonest.",
    ),
    ("/gpubook help", "/gpubook help", "This help."),
    (
        "/gpubook admin gpu add <name> <size> [description]",
        "/gpubook admin gpu add a100-3 80GB A100 in rack 2",
        "Admin: add a GPU.",
    ),
    (
        "/gpubook admin gpu retire <name> [cancel-future]",
        "/gpubook admin gpu retire a100-3 cancel-future",
        "Admin: retire a GPU; `cancel-future` ends or cancels its bookings (owners are told).",
    ),
    (
        "/gpubook admin gpu edit <name> size <size> | rename <new> | description <text>",
        "/gpubook admin gpu edit a100-3 size 40GB",
        "Admin: resize, rename or describe a GPU.",
    ),
    (
        "/gpubook admin channel <#channel> [gpu]",
        "/gpubook admin channel #gpu-bookings a100-3",
        "Admin: post notifications in this channel (for one GPU, when named).",
    ),
    ("/gpubook admin stats [days]", "/gpubook admin stats 30", "Admin: utilisation per GPU, user."),
    (
        f"/gpubook admin audit [n ≤ {MAX_AUDIT_ENTRIES}]",
        "/gpubook admin audit 50",
        "Admin: the latest changes, who made them and what they were.",
    ),
)

_PERIOD_WORDS = ("for", "until")
_BOOKING_ID = re.compile(r"#?([0-9]{1,18})")
_CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")
_SIZE_UNIT_WORDS = frozenset({"m", "mb", "mib", "g", "gb", "gib", "t", "tb", "tib", "%"})


_SLACK_LINK = re.compile(r"<([@#!])?([^<>|]*)(?:\|([^<>]*))?>")


def plain_text(text: str) -> str:
    """What the user typed, from the escaped form Slack sends in slash-command text.

    Slack sends ``&``, ``<`` and ``>`` as entities and (with ``should_escape``) mentions as
    ``<@U123|bob>``, ``<#C123|general>``, ``<!here>``. gpubook stores the readable form and
    escapes it again on the way out, so a task never pings anyone and reads as it was typed.
    """

    def readable(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "@":
            return "@" + (label or target)
        if sigil == "#":
            return "#" + (label or target)
        if sigil == "!":
            return label or "@" + target.split("^")[0]
        return label or target

    text = _SLACK_LINK.sub(readable, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str, *, now: datetime, tz: ZoneInfo) -> Command:
    """Read the text after `/gpubook`; ``now`` and ``tz`` resolve the times in it."""
    words = text.split()
    if not words:
        return OpenModal()
    verb, args = words[0].lower(), words[1:]
    handler = _HANDLERS.get(verb)
    if handler is None:
        raise _unknown(words[0])
    return handler(args, now, tz)


def _unknown(typed: str) -> InputError:
    return InputError(Code.UNKNOWN_COMMAND, field="command", typed=typed)


# --- book -------------------------------------------------------------------------------------


@dataclass
class _Cursor:
    """The words not read yet, so each part of `book` can take what it needs from the front."""

    words: list[str]

    def peek(self) -> str | None:
        return self.words[0].lower() if self.words else None

    def take(self, count: int) -> list[str]:
        taken, self.words = self.words[:count], self.words[count:]
        return taken


def _parse_book(args: list[str], now: datetime, tz: ZoneInfo) -> Book:
    cursor = _Cursor(list(args))
    missing: list[str] = []
    gpu = _book_gpu(cursor, missing, now, tz)
    size_text = _book_size(cursor, missing, now, tz)
    start = _book_start(cursor, missing, now, tz)
    end, duration = _book_period(cursor, missing, start, now, tz)
    task = plain_text(" ".join(cursor.words)) or None
    if task is None:
        missing.append("task")
    return Book(gpu, size_text, start, end, duration, task, tuple(missing))


def _book_gpu(cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo) -> str | None:
    """The first word names the GPU unless it is already the size, the start or `for`/`until`."""
    first = cursor.peek()
    if (
        first is None
        or first in _PERIOD_WORDS
        or _size_at(cursor.words)
        or _starts_with_time(cursor.words, now, tz)
    ):
        missing.append("gpu")
        return None
    cursor.take(1)
    return None if first == "any" else first


def _book_size(cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo) -> str | None:
    """Take the size; when the words are a start time instead, the size is just missing."""
    first = cursor.peek()
    if first is None or first in _PERIOD_WORDS:
        missing.append("size")
        return None
    text, used = _size_words(cursor.words)
    try:
        _validate_size(text)
    except InputError:
        if not _starts_with_time(cursor.words, now, tz):
            raise
        missing.append("size")
        return None
    cursor.take(used)
    return text


def _book_start(
    cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo
) -> datetime | None:
    first = cursor.peek()
    if first is None or first in _PERIOD_WORDS:
        missing.append("start")
        return None
    start, used = split_when(cursor.words, now=now, tz=tz)
    cursor.take(used)
    return start


def _book_period(
    cursor: _Cursor, missing: list[str], start: datetime | None, now: datetime, tz: ZoneInfo
) -> tuple[datetime | None, timedelta | None]:
    """`for <duration>` or `until <end>` → (end, duration); nothing there → missing duration."""
    keyword = cursor.peek()
    if keyword in _PERIOD_WORDS and len(cursor.words) == 1:
        cursor.take(1)
    if not cursor.words:
        missing.append("duration")
        return None, None
    if keyword not in _PERIOD_WORDS:
        raise InputError(Code.BOOK_PERIOD_EXPECTED, field="duration")
    cursor.take(1)
    if keyword == "for":
        duration, used = _split_duration(cursor.words)
        cursor.take(used)
        return None, duration
    end, used = _split_end(cursor.words, start, now, tz)
    cursor.take(used)
    return end, None


def _split_duration(words: list[str]) -> tuple[timedelta, int]:
    """The longest duration at the front (`3 hours fine-tune` → 3h, 2 words)."""
    errors: list[InputError] = []
    for count in range(min(3, len(words)), 0, -1):
        try:
            return parse_duration(" ".join(words[:count])), count
        except InputError as err:
            errors.append(err)
    raise errors[-1]


def _split_end(
    words: list[str], start: datetime | None, now: datetime, tz: ZoneInfo
) -> tuple[datetime, int]:
    """Read `until <end>`; a bare clock time means its next occurrence after the start.

    `tomorrow 9am until 17:00` must end tomorrow at 17:00, not today, so when the end read against
    ``now`` is not after the start it is read again against the start.
    """
    end, used = split_when(words, now=now, tz=tz, field="end")
    if start is None or end > start:
        return end, used
    end, used = split_when(words, now=start, tz=tz, field="end")
    if end <= start:
        raise InputError(Code.END_NOT_AFTER_START, field="end", typed=Quote(" ".join(words[:used])))
    return end, used


def _size_words(words: list[str]) -> tuple[str, int]:
    """The size text at the front and how many words it spans (`20 GB` is two words)."""
    if len(words) > 1 and words[1].lower() in _SIZE_UNIT_WORDS:
        return words[0] + words[1], 2
    return words[0], 1


def _size_at(words: list[str]) -> tuple[str, int] | None:
    """A syntactically valid size at the front, or ``None``."""
    if not words:
        return None
    text, used = _size_words(words)
    try:
        _validate_size(text)
    except InputError:
        return None
    return text, used


def _validate_size(text: str) -> None:
    """Check a size's syntax before the GPU (and so the meaning of `50%`) is known."""
    parse_size(text, capacity_mib=MAX_MIB)


def _starts_with_time(words: list[str], now: datetime, tz: ZoneInfo) -> bool:
    try:
        split_when(words, now=now, tz=tz)
    except InputError:
        return False
    return True


# --- bookings by id ----------------------------------------------------------------------------


def _booking_id(args: list[str], verb: str) -> int:
    match = _BOOKING_ID.fullmatch(args[0]) if len(args) == 1 else None
    if match is None or int(match[1]) == 0:
        raise InputError(Code.BOOKING_NUMBER, field="booking", verb=verb)
    return int(match[1])


def _parse_cancel(args: list[str], now: datetime, tz: ZoneInfo) -> Cancel:
    return Cancel(_booking_id(args, "cancel"))


def _parse_release(args: list[str], now: datetime, tz: ZoneInfo) -> Release:
    return Release(_booking_id(args, "release"))


def _parse_edit(args: list[str], now: datetime, tz: ZoneInfo) -> Edit:
    return Edit(_booking_id(args, "edit"))


def _parse_extend(args: list[str], now: datetime, tz: ZoneInfo) -> Extend:
    """`extend 42 2h` (or `extend 42 by 2h`)."""
    booking_id = _booking_id(args[:1], "extend")
    rest = args[1:]
    if rest and rest[0].lower() == "by":
        rest = rest[1:]
    if not rest:
        raise InputError(Code.EXTEND_HOW_MUCH, field="duration")
    return Extend(booking_id, parse_duration(" ".join(rest)))


# --- views -------------------------------------------------------------------------------------


def _parse_list(args: list[str], now: datetime, tz: ZoneInfo) -> ListBookings:
    words = [word.lower() for word in args]
    if words not in ([], ["all"]):
        raise InputError(Code.LIST_USAGE, field="command")
    return ListBookings(everyone=bool(words))


def _parse_calendar(args: list[str], now: datetime, tz: ZoneInfo) -> Calendar:
    """`calendar [gpu] [day|week]`: a word is a day if it reads as one, else the GPU."""
    parts: dict[str, str] = {}
    for word in (arg.lower() for arg in args):
        kind = "week" if word == "week" else "day" if _is_day(word, now, tz) else "gpu"
        if kind in parts:
            raise InputError(Code.CALENDAR_USAGE, field="command")
        parts[kind] = word
    day = parse_day(parts["day"], now=now, tz=tz) if "day" in parts else None
    return Calendar(parts.get("gpu"), day, "week" in parts)


def _is_day(word: str, now: datetime, tz: ZoneInfo) -> bool:
    try:
        parse_day(word, now=now, tz=tz)
    except InputError:
        return False
    return True


def _parse_status(args: list[str], now: datetime, tz: ZoneInfo) -> Status:
    if args:
        raise InputError(Code.STATUS_USAGE, field="command")
    return Status()


def _parse_help(args: list[str], now: datetime, tz: ZoneInfo) -> Help:
    """Anyone typing `help <anything>` wants the help, so extra words are ignored."""
    return Help()


def _parse_free(args: list[str], now: datetime, tz: ZoneInfo) -> Free:
    """`free 40GB` or `free 40GB for 4h`."""
    if not args:
        raise InputError(Code.FREE_USAGE, field="memory")
    size_text, used = _size_words(args)
    _validate_size(size_text)
    rest = args[used:]
    if not rest:
        return Free(size_text)
    if rest[0].lower() != "for" or len(rest) == 1:
        raise InputError(Code.FREE_USAGE, field="duration")
    return Free(size_text, parse_duration(" ".join(rest[1:])))


# --- admin -------------------------------------------------------------------------------------


def _parse_admin(args: list[str], now: datetime, tz: ZoneInfo) -> Command:
    words = [word.lower() for word in args[:2]]
    if words[:2] == ["gpu", "add"]:
        return _parse_gpu_add(args[2:], now, tz)
    if words[:2] == ["gpu", "retire"]:
        return _parse_gpu_retire(args[2:])
    if words[:2] == ["gpu", "edit"]:
        return _parse_gpu_edit(args[2:])
    if words[:1] == ["channel"]:
        return _parse_channel(args[1:])
    if words[:1] == ["stats"]:
        return _parse_stats(args[1:])
    if words[:1] == ["audit"]:
        return _parse_audit(args[1:])
    raise _unknown(" ".join(["admin", *args[:2]]))


def _parse_gpu_add(args: list[str], now: datetime, tz: ZoneInfo) -> AdminGpuAdd:
    if len(args) < 2:
        raise InputError(Code.GPU_ADD_USAGE, field="name")
    name = validate_gpu_name(args[0])
    size_text, used = _size_words(args[1:])
    if size_text.endswith("%"):
        raise InputError(Code.GPU_SIZE_FORM, field="memory")
    parse_size(size_text)
    return AdminGpuAdd(name, size_text, plain_text(" ".join(args[1 + used :])) or None)


def _parse_gpu_retire(args: list[str]) -> AdminGpuRetire:
    options = [word.lower() for word in args[1:]]
    if len(args) not in (1, 2) or options not in ([], [CANCEL_FUTURE]):
        raise InputError(Code.GPU_RETIRE_USAGE, field="name")
    return AdminGpuRetire(args[0].lower(), cancel_future=bool(options))


def _parse_gpu_edit(args: list[str]) -> AdminGpuEdit:
    """One change per command, so the reply (and the audit entry) says exactly what changed."""
    if len(args) < 3:
        raise InputError(Code.GPU_EDIT_USAGE, field="gpu")
    name, what, rest = args[0].lower(), args[1].lower(), args[2:]
    if what == "size":
        size_text, used = _size_words(rest)
        if used != len(rest) or size_text.endswith("%"):
            raise InputError(Code.GPU_SIZE_FORM, field="memory")
        parse_size(size_text)
        return AdminGpuEdit(name, size_text=size_text)
    if what == "rename" and len(rest) == 1:
        return AdminGpuEdit(name, new_name=validate_gpu_name(rest[0]))
    if what == "description":
        return AdminGpuEdit(name, description=plain_text(" ".join(rest)))
    raise InputError(Code.GPU_EDIT_USAGE, field="gpu")


def _parse_channel(args: list[str]) -> AdminChannel:
    """Slack sends a channel mention as `<#C123ABC|general>` (or `<#C123ABC>`); keep the id.

    A GPU named after the channel routes only that GPU's notifications there.
    """
    typed = args[0] if len(args) in (1, 2) else ""
    gpu = args[1].lower() if len(args) == 2 else None
    mention = _CHANNEL_MENTION.fullmatch(typed)
    if mention is not None:
        return AdminChannel(mention[1], gpu)
    if _CHANNEL_ID.fullmatch(typed):
        return AdminChannel(typed, gpu)
    raise InputError(Code.CHANNEL_USAGE, field="channel")


def _parse_stats(args: list[str]) -> AdminStats:
    if not args:
        return AdminStats()
    if len(args) == 1 and re.fullmatch(r"[0-9]{1,4}", args[0]):
        days = int(args[0])
        if 1 <= days <= MAX_STATS_DAYS:
            return AdminStats(days)
    raise InputError(Code.STATS_USAGE, field="days", max=MAX_STATS_DAYS)


def _parse_audit(args: list[str]) -> AdminAudit:
    if not args:
        return AdminAudit(DEFAULT_AUDIT_ENTRIES)
    if len(args) == 1 and re.fullmatch(r"[0-9]{1,3}", args[0]):
        limit = int(args[0])
        if 1 <= limit <= MAX_AUDIT_ENTRIES:
            return AdminAudit(limit)
    raise InputError(Code.AUDIT_USAGE, field="limit", max=MAX_AUDIT_ENTRIES)


_HANDLERS: dict[str, Callable[[list[str], datetime, ZoneInfo], Command]] = {
    "book": _parse_book,
    "list": _parse_list,
    "cancel": _parse_cancel,
    "release": _parse_release,
    "edit": _parse_edit,
    "extend": _parse_extend,
    "calendar": _parse_calendar,
    "status": _parse_status,
    "free": _parse_free,
    "help": _parse_help,
    "admin": _parse_admin,
}

#: The subcommand words `/gpubook` understands (for bounded metric labels, help, completion).
VERBS = frozenset(_HANDLERS)
