"""Block Kit as terminal text: what a Slack client would show, readable in a console.

Pure functions of the message (or view) dicts the bot sends, so they are tested on their own.
Buttons cannot be clicked in a terminal, so each one gets a number from the caller's
:data:`NumberButton` (numbers run across the whole session, so an old message's buttons stay
pressable) and is shown as ``[3] Cancel``.

mrkdwn is simplified the way a reader needs it: ``*bold*``/``_italic_``/``~strike~`` become ANSI
styles on a terminal (and lose their markers otherwise), ``<@U1>`` becomes ``@U1``, a
``<!date^…>`` token becomes the time in the console's zone (so the console shows what each Slack
reader would see, not the UTC fallback), entities are unescaped last (so a task typed as
``<!channel>`` stays text), and code is kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.core.timefmt import format_time, format_window

#: Given a button element and its block id, the number the reader types to press it.
NumberButton = Callable[[dict[str, Any], str], int]

DIVIDER = "─" * 48
INDENT = "  "

#: The emoji gpubook's messages use, as the character a terminal can show.
EMOJI = {
    "white_check_mark": "✅",
    "x": "❌",
    "information_source": "ℹ️",
    "hourglass_flowing_sand": "⏳",
    "white_circle": "⚪",
    "warning": "⚠️",
    "pencil2": "✏️",
    "no_entry_sign": "🚫",
    "no_entry": "⛔",
    "large_green_circle": "🟢",
    "eject": "⏏️",
    "checkered_flag": "🏁",
    "calendar": "📅",
    "arrow_forward": "▶️",
    "alarm_clock": "⏰",
    "bell": "🔔",
    "wastebasket": "🗑️",
    "eyes": "👀",
    "zzz": "💤",
    "mute": "🔇",
}

_CODE_BLOCK = re.compile(r"```(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_TOKEN = re.compile(r"<([^<>\n]+)>")
#: A window as ``handlers.blocks`` writes it: two date tokens joined by a dash.
_WINDOW = re.compile(r"<!date\^(\d+)\^[^<>|\n]*\|[^<>\n]*> – <!date\^(\d+)\^[^<>|\n]*\|[^<>\n]*>")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
# Slack's emphasis: markers hugging non-space text, not inside a word.
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")


@dataclass(frozen=True)
class Style:
    """ANSI styling when writing to a terminal; plain text otherwise (pipes, logs, tests)."""

    ansi: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.ansi and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def italic(self, text: str) -> str:
        return self._wrap("3", text)

    def strike(self, text: str) -> str:
        return self._wrap("9", text)

    def code(self, text: str) -> str:
        """Inline code: coloured on a terminal, between backticks otherwise (still readable)."""
        return self._wrap("36", text) if self.ansi else f"`{text}`"

    def danger(self, text: str) -> str:
        return self._wrap("31", text)

    def primary(self, text: str) -> str:
        return self._wrap("32", text)


PLAIN = Style(False)


@dataclass(frozen=True)
class Reader:
    """Whose eyes the text is for: their zone for date tokens, "now" for relative days, a style,
    and the names of user ids (``<@UALICE>`` reads ``@alice``)."""

    tz: tzinfo
    now: datetime
    style: Style = PLAIN
    names: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- mrkdwn


def unescape(text: str) -> str:
    """Slack's three entities, ``&amp;`` last so ``&amp;lt;`` reads as the text ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn(text: str, reader: Reader) -> str:
    """A mrkdwn string as terminal text (code blocks kept verbatim, indented)."""
    parts: list[str] = []
    last = 0
    for match in _CODE_BLOCK.finditer(text):
        parts.append(_inline(text[last : match.start()], reader))
        code = unescape(match.group(1).strip("\n"))
        parts.append("\n" + "\n".join(INDENT + line for line in code.split("\n")) + "\n")
        last = match.end()
    parts.append(_inline(text[last:], reader))
    return re.sub(r"\n{2,}", "\n", "".join(parts)).strip("\n")


def _inline(text: str, reader: Reader) -> str:
    """Text outside code blocks. Inline code is set aside first (and kept as is), so emphasis
    around it still pairs up: ``*`rtx-0`*`` is bold code."""
    codes: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        codes.append(reader.style.code(unescape(match.group(1))))
        return f"\x00{len(codes) - 1}\x00"

    text = _formatted(_INLINE_CODE.sub(set_aside, text), reader)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], text)


def _formatted(text: str, reader: Reader) -> str:
    style = reader.style
    text = _WINDOW.sub(lambda m: _window(int(m.group(1)), int(m.group(2)), reader), text)
    text = _TOKEN.sub(lambda m: _token(m.group(1), reader), text)
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    text = _STRIKE.sub(lambda m: style.strike(m.group(1)), text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return unescape(text)


def _token(inner: str, reader: Reader) -> str:
    """``<@U1>``, ``<#C1|name>``, ``<!date^…>``, ``<!here>``, ``<url|label>``."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or reader.names.get(target[1:], target[1:]))
    if target.startswith("#"):
        return "#" + (label or reader.names.get(target[1:], target[1:]))
    if target.startswith("!date^"):
        return slack_date_text(target, label, reader)
    if target.startswith("!"):
        return "@" + (label.lstrip("@") or target[1:].split("^")[0])
    return f"{label} ({target})" if label else target


def _window(start: int, end: int, reader: Reader) -> str:
    """A window read as one, in the reader's zone: both dates when it spans two, as the bot's
    plain text does (a lone token cannot know the other end's date)."""
    first, last = (datetime.fromtimestamp(t, UTC) for t in (start, end))
    return format_window(first, last, reader.tz, reader.now, dash=" – ")


def slack_date_text(target: str, fallback: str, reader: Reader) -> str:
    """A ``!date^UNIX^FORMAT`` token in the reader's zone; its fallback if it does not parse.

    Formats with only ``{time}`` show the time alone (as Slack does); any date placeholder
    shows the bot's usual "today: 14:00, another day: Tue 1 Dec 14:00" form.
    """
    pieces = target.split("^")
    try:
        moment = datetime.fromtimestamp(int(pieces[1]), UTC)
    except (IndexError, ValueError):
        return fallback
    fmt = pieces[2] if len(pieces) > 2 else ""
    if "{date" not in fmt:
        return f"{moment.astimezone(reader.tz):%H:%M}"
    return format_time(moment, reader.tz, reader.now)


def text_of(obj: dict[str, Any] | str | None, reader: Reader) -> str:
    """A text object (``plain_text`` or ``mrkdwn``) as terminal text."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj.get("text", ""), reader)
    # plain_text is shown literally, except that clients render :emoji: codes in it.
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), obj.get("text", ""))


# --------------------------------------------------------------------------- blocks


def button_label(element: dict[str, Any], number: int, reader: Reader) -> str:
    """``[3] Cancel``, red for danger and green for primary buttons on a terminal."""
    label = f"[{number}] {text_of(element.get('text'), reader)}"
    if element.get("style") == "danger":
        return reader.style.danger(label)
    if element.get("style") == "primary":
        return reader.style.primary(label)
    return label


def _element(element: dict[str, Any], block_id: str, reader: Reader, number: NumberButton) -> str:
    if element.get("type") == "button":
        return button_label(element, number(element, block_id), reader)
    if element.get("type") in ("mrkdwn", "plain_text"):
        return text_of(element, reader)
    if element.get("type") == "image":
        return f"[{element.get('alt_text', 'image')}]"
    return f"‹{element.get('type', '?')}›"


def block_lines(block: dict[str, Any], reader: Reader, number: NumberButton) -> list[str]:
    """One block as lines of text."""
    kind = block.get("type")
    block_id = block.get("block_id", "")
    if kind == "header":
        return [reader.style.bold(text_of(block.get("text"), reader))]
    if kind == "divider":
        return [reader.style.dim(DIVIDER)]
    if kind == "context":
        parts = [_element(e, block_id, reader, number) for e in block.get("elements", [])]
        return [reader.style.dim(line) for line in "  ".join(parts).split("\n")]
    if kind == "actions":
        return ["  ".join(_element(e, block_id, reader, number) for e in block.get("elements", []))]
    if kind == "section":
        return _section(block, reader, number)
    if kind == "input":
        label = text_of(block.get("label"), reader)
        return [f"{label}: {initial_text(block.get('element', {}), reader) or '—'}"]
    if kind == "image":
        return [f"[{block.get('alt_text', 'image')}]"]
    return [f"‹{kind} block›"]


def _section(block: dict[str, Any], reader: Reader, number: NumberButton) -> list[str]:
    lines = text_of(block.get("text"), reader).split("\n") if block.get("text") else []
    lines.extend(_fields([text_of(f, reader) for f in block.get("fields", [])]))
    accessory = block.get("accessory")
    if accessory is not None:
        shown = _element(accessory, block.get("block_id", ""), reader, number)
        if lines:
            lines[-1] = f"{lines[-1]}  {shown}"
        else:
            lines.append(shown)
    return lines


def _fields(fields: list[str]) -> list[str]:
    """Fields two per line, as Slack lays them out; a ``label\nvalue`` field reads ``label: value``."""
    cells = [": ".join(part for part in field.split("\n") if part) for field in fields]
    width = max((visible_len(cell) for cell in cells[::2]), default=0)
    rows = []
    for left, right in zip(cells[::2], [*cells[1::2], ""], strict=False):
        pad = " " * (width - visible_len(left))
        rows.append(f"{INDENT}{left}{pad}   {right}".rstrip() if right else INDENT + left)
    return rows


def visible_len(text: str) -> int:
    """Length as shown on a terminal: ANSI escapes take no room."""
    return len(_ANSI.sub("", text))


def render_blocks(
    blocks: Iterable[dict[str, Any]], reader: Reader, number: NumberButton
) -> list[str]:
    """Every block's lines, in order."""
    return [line for block in blocks for line in block_lines(block, reader, number)]


def render_message(
    label: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    reader: Reader,
    number: NumberButton,
) -> str:
    """A message under a dim label line (``── #gpu-bookings ──``); its text when it has no blocks."""
    body = render_blocks(blocks, reader, number) if blocks else mrkdwn(text, reader).split("\n")
    head = reader.style.dim(f"── {label} ──")
    return "\n".join([head, *(INDENT + line if line else line for line in body)])


def render_view(view: dict[str, Any], reader: Reader, number: NumberButton) -> str:
    """A modal or the App Home: its title (if any) over its blocks."""
    title = text_of(view.get("title"), reader) or "App Home"
    lines = render_blocks(view.get("blocks", []), reader, number)
    head = reader.style.bold(f"┌ {title}")
    return "\n".join([head, *("│ " + line for line in lines), "└"])


# --------------------------------------------------------------------------- inputs


def initial_text(element: dict[str, Any], reader: Reader) -> str | None:
    """What an input element shows before anyone types: its initial value, option or time."""
    kind = element.get("type")
    if kind == "static_select":
        option = element.get("initial_option")
        return text_of(option.get("text"), reader) if option else None
    if kind == "datetimepicker":
        seconds = element.get("initial_date_time")
        if seconds is None:
            return None
        return format_time(datetime.fromtimestamp(int(seconds), UTC), reader.tz, reader.now)
    return element.get("initial_value")


def options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    """A select's options, flattened out of option groups."""
    if "option_groups" in element:
        return [o for group in element["option_groups"] for o in group.get("options", [])]
    return list(element.get("options", []))
