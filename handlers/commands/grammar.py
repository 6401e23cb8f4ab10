"""The grammar of the subcommands other than `book` and `admin`: bookings by id, and views."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.timeparse import NEXT, parse_day
from bot.core.units import parse_duration
from handlers.commands.syntax import (
    SERIES_WORD,
    Calendar,
    Cancel,
    Edit,
    Extend,
    Free,
    Help,
    ListBookings,
    Release,
    ShowLimits,
    Status,
)
from handlers.commands.words import size_words, validate_size

_BOOKING_ID = re.compile(r"#?([0-9]{1,18})")


def _booking_id(args: list[str], verb: str) -> int:
    match = _BOOKING_ID.fullmatch(args[0]) if len(args) == 1 else None
    if match is None or int(match[1]) == 0:
        raise InputError(Code.BOOKING_NUMBER, field="booking", verb=verb)
    return int(match[1])


def _id_and_series(args: list[str], verb: str) -> tuple[int, bool]:
    """`42` or `42 series` (the rest of its series from it on)."""
    series = len(args) == 2 and args[1].lower() == SERIES_WORD
    return _booking_id(args[:1] if series else args, verb), series


def parse_cancel(args: list[str], now: datetime, tz: ZoneInfo) -> Cancel:
    return Cancel(*_id_and_series(args, "cancel"))


def parse_release(args: list[str], now: datetime, tz: ZoneInfo) -> Release:
    return Release(_booking_id(args, "release"))


def parse_edit(args: list[str], now: datetime, tz: ZoneInfo) -> Edit:
    return Edit(*_id_and_series(args, "edit"))


def parse_extend(args: list[str], now: datetime, tz: ZoneInfo) -> Extend:
    """`extend 42 2h` (or `extend 42 by 2h`)."""
    booking_id = _booking_id(args[:1], "extend")
    rest = args[1:]
    if rest and rest[0].lower() == "by":
        rest = rest[1:]
    if not rest:
        raise InputError(Code.EXTEND_HOW_MUCH, field="duration")
    return Extend(booking_id, parse_duration(" ".join(rest)))


def parse_list(args: list[str], now: datetime, tz: ZoneInfo) -> ListBookings:
    words = [word.lower() for word in args]
    if words not in ([], ["all"]):
        raise InputError(Code.LIST_USAGE, field="command")
    return ListBookings(everyone=bool(words))


def parse_calendar(args: list[str], now: datetime, tz: ZoneInfo) -> Calendar:
    """`calendar [gpu] [day|week]`: a word is a day if it reads as one, else the GPU.

    `next fri` is a day and `next week` the week from next Monday. A second GPU word that is
    nearly a day (`calendar a100-1 tomorow`) is refused with the day it most likely meant.
    """
    parts: dict[str, str] = {}
    for phrase in _calendar_phrases(args):
        found = _calendar_part(phrase, now, tz)
        if parts.keys() & found.keys():
            for word in (parts.get("gpu"), found.get("gpu")):
                _refuse_a_near_day(word, now, tz)
            raise InputError(Code.CALENDAR_USAGE, field="command")
        parts.update(found)
    day = parse_day(parts["day"], now=now, tz=tz) if "day" in parts else None
    return Calendar(parts.get("gpu"), day, "week" in parts)


def _calendar_phrases(args: list[str]) -> list[str]:
    """The words, lower-cased, with `next` joined to the word after it (`next fri`)."""
    phrases: list[str] = []
    for word in (arg.lower() for arg in args):
        if phrases and phrases[-1] == NEXT:
            phrases[-1] = f"{NEXT} {word}"
        else:
            phrases.append(word)
    return phrases


def _calendar_part(phrase: str, now: datetime, tz: ZoneInfo) -> dict[str, str]:
    """What one phrase gives the calendar: a day, a week (`next week`: both), or the GPU."""
    if phrase == "week":
        return {"week": phrase}
    if phrase == f"{NEXT} week":
        return {"day": f"{NEXT} mon", "week": phrase}
    if phrase.partition(" ")[0] == NEXT or is_day(phrase, now, tz):
        parse_day(phrase, now=now, tz=tz)  # `next` must name a weekday: its refusal says so
        return {"day": phrase}
    return {"gpu": phrase}


def is_day(word: str, now: datetime, tz: ZoneInfo) -> bool:
    """Whether ``word`` reads as a day (`friday`, `2026-12-01`), where it may also be a GPU."""
    try:
        parse_day(word, now=now, tz=tz)
    except InputError:
        return False
    return True


def _refuse_a_near_day(word: str | None, now: datetime, tz: ZoneInfo) -> None:
    """Refuse a word taken for a GPU that is nearly a day, with the day it meant."""
    try:
        if word is not None:
            parse_day(word, now=now, tz=tz)
    except InputError as err:
        if err.code is Code.DAY_UNREADABLE_NEAR:
            raise


#: What a status filter may hold: a GPU name's characters and shell wildcards.
_STATUS_PATTERN = re.compile(r"[a-z0-9._\-*?\[\]]{1,64}")


def parse_status(args: list[str], now: datetime, tz: ZoneInfo) -> Status:
    if len(args) > 1 or (args and not _STATUS_PATTERN.fullmatch(args[0].lower())):
        raise InputError(Code.STATUS_USAGE, field="command")
    return Status(args[0].lower() if args else None)


def parse_limits(args: list[str], now: datetime, tz: ZoneInfo) -> ShowLimits:
    if args:
        raise InputError(Code.LIMITS_USAGE, field="command")
    return ShowLimits()


def parse_help(args: list[str], now: datetime, tz: ZoneInfo) -> Help:
    """Anyone typing `help <anything>` wants the help, so extra words are ignored."""
    return Help()


def parse_free(args: list[str], now: datetime, tz: ZoneInfo) -> Free:
    """`free 40GB` or `free 40GB for 4h`."""
    if not args:
        raise InputError(Code.FREE_USAGE, field="memory")
    size_text, used = size_words(args)
    validate_size(size_text)
    rest = args[used:]
    if not rest:
        return Free(size_text)
    if rest[0].lower() != "for" or len(rest) == 1:
        raise InputError(Code.FREE_USAGE, field="duration")
    return Free(size_text, parse_duration(" ".join(rest[1:])))
