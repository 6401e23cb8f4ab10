"""Word readers several subcommands share: sizes, durations, and user text as it was typed."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.units import MAX_MIB, parse_duration, parse_size

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


def size_words(words: list[str]) -> tuple[str, int]:
    """The size text at the front and how many words it spans (`20 GB` is two words)."""
    if len(words) > 1 and words[1].lower() in _SIZE_UNIT_WORDS:
        return words[0] + words[1], 2
    return words[0], 1


def validate_size(text: str) -> None:
    """Check a size's syntax before the GPU (and so the meaning of `50%`) is known."""
    parse_size(text, capacity_mib=MAX_MIB)


def split_duration(words: list[str], usage: Code = Code.DURATION_MISSING) -> tuple[timedelta, int]:
    """The longest duration at the front (`3 hours fine-tune` → 3h, 2 words).

    No words at all (`notify 20GB for`) is refused with `usage`, the caller's own usage sentence,
    so the person sees how to write the command rather than a generic apology.
    """
    if not words:
        raise InputError(usage, field="duration")
    errors: list[InputError] = []
    for count in range(min(3, len(words)), 0, -1):
        try:
            return parse_duration(" ".join(words[:count])), count
        except InputError as err:
            errors.append(err)
    raise errors[-1]
