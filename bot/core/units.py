"""Memory sizes and durations as people type them, turned into exact numbers.

Memory is booked in whole MiB so that the capacity rule ("the sum of bookings never exceeds the
card") is integer arithmetic: floats would let `8.1GB + 7.9GB + 8.0GB` miss `24GB` by a rounding
error and refuse (or allow) a booking that should have been the other way. Sizes are therefore read
with :class:`decimal.Decimal` and rounded once, half-even, to the nearest MiB. GB means 1024 MiB
because that is how ``nvidia-smi`` reports cards, and it is what users read off their screens.

Every refusal is an :class:`~bot.core.errors.InputError` whose sentence says what to type instead.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote

MAX_MIB = 16 * 1024 * 1024
"""16 TB: far above any card, low enough to catch a typo like `20000GB`."""

MAX_DURATION = timedelta(days=366)
"""A year (leap-proof): anything longer is a typo, not a booking."""

_MIB_PER_UNIT: dict[str, int] = {
    "m": 1,
    "mb": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "t": 1024 * 1024,
    "tb": 1024 * 1024,
    "tib": 1024 * 1024,
}

_SIZE = re.compile(r"(?P<sign>-?)(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[a-z%]*)")
_EXPONENT = re.compile(r"-?[0-9.]+e[+-]?[0-9]+\s*[a-z%]*")

_SECONDS_PER_UNIT: dict[str, int] = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

_DURATION_UNITS: dict[str, str] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "w"),
}

_DURATION_PART = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[a-z]*)(?P<gap>\s*)")


def _size_error(code: Code, **data: object) -> InputError:
    return InputError(code, field="memory", **data)


def _duration_error(code: Code, **data: object) -> InputError:
    return InputError(code, field="duration", **data)


def _round_to_int(value: Decimal) -> int:
    """Round once, half-even, so repeated conversions never drift in one direction."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def parse_size(text: str, capacity_mib: int | None = None) -> int:
    """Read a memory size typed by a user and return whole MiB.

    ``capacity_mib`` is the chosen GPU's memory; it is needed only for percentages (`50%`), which
    is why callers that do not know the GPU yet keep the size as text.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        raise _size_error(Code.SIZE_MISSING)
    if _EXPONENT.fullmatch(cleaned):
        raise _size_error(Code.SIZE_EXPONENT, typed=Quote(text.strip()))
    match = _SIZE.fullmatch(cleaned)
    if match is None:
        raise _size_error(Code.SIZE_UNREADABLE, typed=Quote(text.strip()))
    if match["sign"]:
        raise _size_error(Code.SIZE_NEGATIVE)
    mib = _to_mib(Decimal(match["number"]), match["unit"], text.strip(), capacity_mib)
    if mib < 1:
        raise _size_error(Code.SIZE_TOO_SMALL)
    return mib


def _to_mib(number: Decimal, unit: str, typed: str, capacity_mib: int | None) -> int:
    """Convert a validated number and unit to MiB, refusing sizes no GPU could have."""
    if unit == "%":
        exact = _percent_of(number, typed, capacity_mib)
    elif unit in _MIB_PER_UNIT:
        exact = number * _MIB_PER_UNIT[unit]
    elif not unit:
        raise _size_error(Code.SIZE_NO_UNIT)
    else:
        raise _size_error(Code.SIZE_UNKNOWN_UNIT, unit=Quote(unit))
    if exact > MAX_MIB:
        raise _size_error(Code.SIZE_TOO_BIG, typed=Quote(typed))
    return _round_to_int(exact)


def _percent_of(number: Decimal, typed: str, capacity_mib: int | None) -> Decimal:
    if capacity_mib is None:
        raise _size_error(Code.PERCENT_NEEDS_GPU)
    if number > 100:
        raise _size_error(Code.PERCENT_TOO_BIG, typed=Quote(typed))
    return Decimal(capacity_mib) * number / 100


def parse_duration(text: str) -> timedelta:
    """Read a duration such as `90m`, `1h30m`, `1h 30m`, `2h30`, `1.5h`, `3 hours` or `2d`.

    Units must appear once each, largest first, so a slip like `1h 1h` is refused rather than
    silently summed. A bare number right after hours (`2h30`) means minutes, as people write it.
    The result is whole seconds.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        raise _duration_error(Code.DURATION_MISSING)
    if cleaned.startswith("-"):
        raise _duration_error(Code.DURATION_NEGATIVE)
    seconds = sum(
        (number * _SECONDS_PER_UNIT[unit] for number, unit in _duration_parts(cleaned, text)),
        start=Decimal(0),
    )
    if seconds > MAX_DURATION // timedelta(seconds=1):
        raise _duration_error(Code.DURATION_TOO_LONG)
    whole_seconds = _round_to_int(seconds)
    if whole_seconds < 1:
        raise _duration_error(Code.DURATION_ZERO)
    return timedelta(seconds=whole_seconds)


def _duration_parts(cleaned: str, typed: str) -> list[tuple[Decimal, str]]:
    """Split `1h 30m` into [(1, "h"), (30, "m")], checking units and their order."""
    unreadable = _duration_error(Code.DURATION_UNREADABLE, typed=Quote(typed.strip()))
    parts: list[tuple[Decimal, str]] = []
    position = 0
    previous_gap = " "
    while position < len(cleaned):
        match = _DURATION_PART.match(cleaned, position)
        if match is None:
            raise unreadable
        unit = _duration_unit(match["unit"], parts, previous_gap, unreadable)
        parts.append((Decimal(match["number"]), unit))
        position, previous_gap = match.end(), match["gap"]
    units = [unit for _, unit in parts]
    order = list(_SECONDS_PER_UNIT)
    if units != sorted(set(units), key=order.index):
        raise _duration_error(Code.DURATION_UNIT_ORDER)
    return parts


def _duration_unit(
    typed_unit: str, parts: list[tuple[Decimal, str]], previous_gap: str, unreadable: InputError
) -> str:
    """Resolve a unit word; a bare number glued to hours (`2h30`) counts as minutes."""
    if typed_unit:
        if typed_unit not in _DURATION_UNITS:
            raise _duration_error(Code.DURATION_UNKNOWN_UNIT, unit=Quote(typed_unit))
        return _DURATION_UNITS[typed_unit]
    if not parts:
        raise _duration_error(Code.DURATION_NO_UNIT)
    if parts[-1][1] == "h" and not previous_gap:
        return "m"
    raise unreadable
