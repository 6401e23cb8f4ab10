"""The flexible `book`: `book <any|pattern> <size> for <duration> asap [options…] <task>`.

`asap` right after the length, where a fixed booking has no start, is what makes a booking
flexible (a task that merely contains "asap" stays a task). After it, in any order: `on a100-*`
(the GPUs it may use), `not before <time>` and `by <time>` (the deadline it must end by); then
the task. Anything else is read by the fixed grammar (:mod:`handlers.commands.book_grammar`).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.timeparse import split_when
from handlers.commands.book_grammar import parse_book
from handlers.commands.syntax import ASAP, Book, BookFlexible, BookSeries
from handlers.commands.words import plain_text, size_words, split_duration, validate_size

_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-*?[]!")


def parse_any_book(
    args: list[str], now: datetime, tz: ZoneInfo
) -> Book | BookSeries | BookFlexible:
    """A flexible booking when the words say `… for <duration> asap`, else a fixed one."""
    flexible = _flexible(args, now, tz)
    return flexible if flexible is not None else parse_book(args, now, tz)


def _flexible(args: list[str], now: datetime, tz: ZoneInfo) -> BookFlexible | None:
    words = [w.lower() for w in args]
    if len(words) < 5:
        return None
    size_text, used = size_words(args[1:])
    at = 1 + used
    if words[at : at + 1] != ["for"]:
        return None
    try:
        duration, length = split_duration(args[at + 1 :])
    except InputError:
        return None
    at += 1 + length
    if words[at : at + 1] != [ASAP]:
        return None
    validate_size(size_text)
    pattern = gpu_pattern(words[0])
    not_before = deadline = None
    rest = args[at + 1 :]
    while rest:
        word = rest[0].lower()
        if word == "on" and len(rest) > 1:
            pattern, rest = gpu_pattern(rest[1].lower()), rest[2:]
        elif word == "not" and len(rest) > 2 and rest[1].lower() == "before":
            reading, used = split_when(rest[2:], now=now, tz=tz)
            not_before, rest = reading.at, rest[2 + used :]
        elif word == "by" and len(rest) > 1:
            reading, used = split_when(rest[1:], now=now, tz=tz, field="end")
            deadline, rest = reading.at, rest[1 + used :]
        else:
            break
    task = plain_text(" ".join(rest))
    if not task:
        raise InputError(Code.QUEUE_USAGE, field="task")
    return BookFlexible(size_text, duration, task, pattern, not_before, deadline)


def gpu_pattern(word: str, usage: Code = Code.QUEUE_USAGE) -> str | None:
    """`any` is every GPU; otherwise a GPU name or a pattern of them (`a100-*`); anything else
    is refused with ``usage``."""
    if word == "any":
        return None
    if not word or not set(word) <= _PATTERN_CHARS:
        raise InputError(usage, field="gpu")
    return word
