"""Sentences as data: a code, its values, and one way to render them per surface.

gpubook speaks on three surfaces: Slack messages (mrkdwn, mentions, ``/gpubook`` hints), plain
text inside Slack (a modal's field errors) and a terminal (the CLI, logs). The domain must not
write any of those syntaxes, so a sentence leaves the domain as a :class:`Sentence` — a
:class:`~bot.core.phrases.Code` and typed values — and the edge renders it with a
:class:`Surface`. The words themselves live once, in :data:`bot.core.phrases.WORDING`.

Template markup (ours, not Slack's):

- ``{key}`` — the value ``key``, rendered by the surface according to its type
  (the marks of :mod:`bot.core.sentence`, a nested sentence, a list of any of these, a number, or text);
  the sizes of one sentence share one unit ("0 GB free" beside "24 GB", never "0 MiB");
- ``{count:booking}`` — the number ``count`` with its noun agreeing (``1 booking``, ``2 bookings``;
  ``{count:entry|entries}`` for an irregular plural);
- ``[[20GB]]`` — a literal sample of what to type (code in Slack, bare in plain text);
- ``[[/cancel {id}]]`` — a gpubook command to run; each surface names it its own way (the slash
  command in Slack, the ``gpubook`` command line in a terminal when it has that command).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.core.clock import system_clock
from bot.core.formats import SizeUnit, count_of, format_duration, format_size, size_unit
from bot.core.phrases import WORDING
from bot.core.sentence import Quote, Sentence, Size, Span, User, When, Window
from bot.core.timefmt import format_time, format_window, zone_label, zoned_window


class Surface:
    """Plain text in the reader's zone: the base every surface refines.

    ``command`` has no syntax of its own here: a plain reader (a log line) is told the words.
    """

    def __init__(self, tz: tzinfo = UTC, now: datetime | None = None) -> None:
        self.tz = tz
        self.now = now or system_clock()

    def text(self, text: str) -> str:
        return text

    def quote(self, text: str) -> str:
        return text

    def command(self, words: str) -> str:
        return f"'{words}'"

    def user(self, user_id: str) -> str:
        return f"@{user_id}"

    def when(self, at: datetime) -> str:
        return f"{format_time(at, self.tz, self.now)} {zone_label(self.tz, at)}"

    def window(self, start: datetime, end: datetime, *, zone: bool = True) -> str:
        if zone:
            return zoned_window(start, end, self.tz, self.now)
        return format_window(start, end, self.tz, self.now)


#: ``[[…]]`` ends at the last of a run of brackets, so a sample may hold ``[day|week]``.
_MARK = re.compile(r"\[\[(.+?)\]\](?!\])|\{(\w+)(?::([^{}|]+)(?:\|([^{}]+))?)?\}")


def render(sentences: Sentence | Iterable[Sentence], surface: Surface) -> str:
    """The sentences for ``surface``, joined by spaces."""
    if isinstance(sentences, Sentence):
        sentences = (sentences,)
    parts = []
    for sentence in sentences:
        template = WORDING[sentence.code]
        unit = size_unit(*(size.mib for size in _sizes(sentence.data.values())))
        parts.append(_fill(template, sentence.data, surface, unit))
    return " ".join(p for p in parts if p)


def _sizes(values: Iterable[Any]) -> Iterator[Size]:
    """The sizes one sentence shows (not those of sentences nested in it, which read alone)."""
    for value in values:
        if isinstance(value, Size):
            yield value
        elif isinstance(value, list | tuple):
            yield from _sizes(value)


def _fill(template: str, data: Mapping[str, Any], surface: Surface, unit: SizeUnit) -> str:
    out: list[str] = []
    pos = 0
    for match in _MARK.finditer(template):
        out.append(surface.text(template[pos : match.start()]))
        pos = match.end()
        literal, key, singular, plural = match.groups()
        if singular is not None:
            out.append(surface.text(count_of(data[key], singular, plural)))
        elif key is not None:
            out.append(_value(data[key], surface, unit))
        elif literal.startswith("/"):
            words = re.sub(r"\{(\w+)\}", lambda m: str(data[m.group(1)]), literal[1:])
            out.append(surface.command(words))
        else:
            out.append(surface.quote(literal))
    out.append(surface.text(template[pos:]))
    return "".join(out)


def _value(value: Any, surface: Surface, unit: SizeUnit) -> str:
    if isinstance(value, Sentence):
        return render(value, surface)
    if isinstance(value, Quote):
        return surface.quote(value.text)
    if isinstance(value, User):
        return surface.user(value.user_id)
    if isinstance(value, When):
        return surface.when(value.at)
    if isinstance(value, Window):
        return surface.window(value.start, value.end, zone=value.zone)
    if isinstance(value, Size):
        return format_size(value.mib, unit)
    if isinstance(value, Span):
        return format_duration(value.length) if value.length else "nothing"
    if isinstance(value, bool):
        raise TypeError("a sentence value must not be a bool")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v, surface, unit) for v in value)
    if value is None:
        return ""
    return surface.text(str(value))
