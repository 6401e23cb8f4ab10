"""What may name a GPU: one rule, used by every interface that adds or renames one."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.timeparse import parse_day, parse_when
from bot.core.units import parse_size

_GPU_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
#: Words the command grammar gives a meaning of its own.
RESERVED_GPU_NAMES = frozenset(
    {
        "any",
        "all",
        "week",
        "day",
        "for",
        "until",
        "by",
        "at",
        "in",
        "now",
        "today",
        "tomorrow",
        "next",
        "override",
    }
    | {"link", "revoke"}  # `calendar link [revoke]`
)


def validate_gpu_name(name: str) -> str:
    """A new GPU's name, normalised: short, plain, and never a word the commands read as
    something else (``any``, a size, a day or a time), or `book` and `calendar` would misread it."""
    name = name.strip().lower()
    if not _GPU_NAME.match(name) or _reads_as_other_word(name):
        raise InputError(Code.GPU_NAME_INVALID, field="gpu", name=Quote(name))
    return name


def _reads_as_other_word(name: str) -> bool:
    """Whether ``name`` would be read as a size, a day or a time where a GPU name may stand."""
    if name in RESERVED_GPU_NAMES:
        return True
    now = datetime(2026, 1, 1, tzinfo=UTC)  # any date: only whether the word parses matters
    readers = (
        lambda: parse_size(name, capacity_mib=1024),
        lambda: parse_day(name, now=now, tz=UTC),
        lambda: parse_when(name, now=now, tz=UTC),
    )
    for read in readers:
        try:
            read()
        except (InputError, ValueError):
            continue
        return True
    return False
