"""`notify`: `notify <size> for <duration> [on <pattern>] [before <time>] [task…]`, `notify list`
and `notify cancel <id>`.

After the length, in any order: `on a100-*` (the GPUs it may use; `any` or nothing: every one)
and `before <time>` (the window must end by then); whatever follows is the task the booking gets
when the DM's Book button is clicked (none: `watch #<id>`).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.timeparse import split_when
from handlers.commands.queue_grammar import gpu_pattern
from handlers.commands.syntax import Notify, NotifyCancel, NotifyList
from handlers.commands.words import plain_text, size_words, split_duration, validate_size

_WATCH_ID = re.compile(r"#?([0-9]{1,18})")


def parse_notify(args: list[str], now: datetime, tz: ZoneInfo) -> Notify:
    words = [w.lower() for w in args]
    if not args:
        raise InputError(Code.WATCH_USAGE, field="memory")
    size_text, at = size_words(args)
    if words[at : at + 1] != ["for"]:
        raise InputError(Code.WATCH_USAGE, field="duration")
    validate_size(size_text)
    duration, length = split_duration(args[at + 1 :], Code.WATCH_USAGE)
    rest = args[at + 1 + length :]
    pattern = deadline = None
    while rest:
        word = rest[0].lower()
        if word == "on" and len(rest) > 1:
            pattern, rest = gpu_pattern(rest[1].lower(), Code.WATCH_USAGE), rest[2:]
        elif word == "before" and len(rest) > 1:
            reading, used = split_when(rest[1:], now=now, tz=tz, field="end")
            deadline, rest = reading.at, rest[1 + used :]
        else:
            break
    task = plain_text(" ".join(rest)) or None
    return Notify(size_text, duration, pattern, deadline, task)


def parse_notify_list(args: list[str], now: datetime, tz: ZoneInfo) -> NotifyList:
    if args:
        raise InputError(Code.WATCH_USAGE)
    return NotifyList()


def parse_notify_cancel(args: list[str], now: datetime, tz: ZoneInfo) -> NotifyCancel:
    match = _WATCH_ID.fullmatch(args[0]) if len(args) == 1 else None
    if match is None or int(match[1]) == 0:
        raise InputError(Code.WATCH_USAGE, field="watch")
    return NotifyCancel(int(match[1]))
