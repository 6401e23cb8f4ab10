"""What a sentence is made of: a code and typed values (the marks a surface renders).

Kept apart from :mod:`bot.core.wording` (which renders) so that the modules that raise refusals —
units, times — can build sentences without importing what formats them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.phrases import Code


@dataclass(frozen=True)
class Quote:
    """A name or a word the user typed, set apart from the sentence (a GPU name, `20GB`)."""

    text: str


@dataclass(frozen=True)
class User:
    """A Slack user: a mention in Slack, ``@U123`` elsewhere."""

    user_id: str


@dataclass(frozen=True)
class When:
    """An instant, shown in the reader's zone."""

    at: datetime


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)``, shown in the reader's zone (named unless ``zone`` is
    false: a second window in one sentence is read in the zone the first one named)."""

    start: datetime
    end: datetime
    zone: bool = True


@dataclass(frozen=True)
class Size:
    """Memory in MiB, shown in the unit people think in (``24 GB``)."""

    mib: int


@dataclass(frozen=True)
class Span:
    """A length of time (``2h 30m``); an empty span reads as "nothing"."""

    length: timedelta


@dataclass(frozen=True)
class Sentence:
    """One sentence: which one (``code``) and the values its template names."""

    code: Code
    data: Mapping[str, Any] = field(default_factory=dict)


def say(code: Code, **data: Any) -> Sentence:
    return Sentence(code, data)
