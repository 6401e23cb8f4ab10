"""Near misses: the word a person most likely meant when what they typed is not a word we know.

One rule for every "did you mean …?" (verbs, time words, days), so they all forgive the same
typos: :func:`difflib.get_close_matches` with one cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

#: How alike a typo and a known word must be (difflib's ratio): `bok`/`book` is 0.86,
#: `stauts`/`status` and `cancle`/`cancel` 0.83, while `soon`/`noon` (0.75), `xyz` or a GPU
#: name match nothing.
CUTOFF = 0.8


def nearest(typed: str, known: Iterable[str]) -> str | None:
    """The known word closest to ``typed`` (itself when it is known), or ``None``."""
    matches = get_close_matches(typed.lower(), list(known), n=1, cutoff=CUTOFF)
    return matches[0] if matches else None
