"""Block Kit → terminal text: mrkdwn, tokens, blocks, numbered buttons, inputs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.console.render import (
    DIVIDER,
    Reader,
    Style,
    block_lines,
    initial_text,
    mrkdwn,
    options_of,
    render_blocks,
    render_message,
    render_view,
    text_of,
    visible_len,
)
from handlers.blocks.common import escape, slack_date, slack_window

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
PLAIN = Reader(UTC, NOW)
ANSI = Reader(UTC, NOW, Style(ansi=True))


def counter() -> Any:
    """A NumberButton numbering from 1 and remembering what it numbered."""
    numbers = itertools.count(1)
    seen: list[tuple[str, str]] = []

    def number(element: dict[str, Any], block_id: str) -> int:
        seen.append((element["action_id"], block_id))
        return next(numbers)

    number.seen = seen  # type: ignore[attr-defined]
    return number


def button(text: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id}


# --------------------------------------------------------------------------- mrkdwn


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("*Booked* #1", "Booked #1"),
        ("_cancelled_ now", "cancelled now"),
        ("~old~ new", "old new"),
        ("a * b * c", "a * b * c"),  # markers hugging spaces are not emphasis
        ("snake_case_name", "snake_case_name"),  # nor underscores inside a word
        ("<@UALICE> booked", "@UALICE booked"),
        ("<@UALICE|alice>", "@alice"),
        ("<#C1|gpu-bookings>", "#gpu-bookings"),
        ("<!here> look", "@here look"),
        ("see <https://x.test|docs>", "see docs (https://x.test)"),
        ("<https://x.test>", "https://x.test"),
        ("a &lt;b&gt; &amp;c", "a <b> &c"),
        (":white_check_mark: done :unknown_thing:", "✅ done :unknown_thing:"),
        ("`rtx-0` and *`a100`*", "`rtx-0` and `a100`"),
    ],
)
def test_mrkdwn_plain(text: str, shown: str) -> None:
    assert mrkdwn(text, PLAIN) == shown


def test_escaped_user_text_stays_text() -> None:
    # A task typed as "<!channel> *x*" must read back as typed, never become a mention.
    assert mrkdwn(escape("<!channel> & <@U1>"), PLAIN) == "<!channel> & <@U1>"


def test_names_replace_user_ids() -> None:
    reader = Reader(UTC, NOW, names={"UALICE": "alice"})
    assert mrkdwn("— <@UALICE>, <@UBOB>", reader) == "— @alice, @UBOB"


def test_ansi_styles_bold_italic_and_code() -> None:
    assert mrkdwn("*b* _i_ `c`", ANSI) == "\x1b[1mb\x1b[0m \x1b[3mi\x1b[0m \x1b[36mc\x1b[0m"
    assert mrkdwn("*`rtx-0`*", ANSI) == "\x1b[1m\x1b[36mrtx-0\x1b[0m\x1b[0m"


def test_code_block_kept_verbatim_and_indented() -> None:
    text = "before\n```10:00 ▓▓░ *8*/24 &lt;x&gt;\n11:00 ░░░```\nafter"
    assert mrkdwn(text, PLAIN).split("\n") == [
        "before",
        "  10:00 ▓▓░ *8*/24 <x>",
        "  11:00 ░░░",
        "after",
    ]


def test_date_tokens_show_the_readers_zone() -> None:
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    token = slack_date(start, now=NOW)
    assert mrkdwn(token, PLAIN) == "10:00"
    assert mrkdwn(token, Reader(BERLIN, NOW)) == "11:00"
    tomorrow = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert (
        mrkdwn(slack_window(start, tomorrow, now=NOW), PLAIN) == "Mon 5 Jan 10:00 – Tue 6 Jan 09:00"
    )


def test_time_only_date_token_and_bad_token_fallback() -> None:
    assert mrkdwn("<!date^1767607200^{time}|fallback>", Reader(BERLIN, NOW)) == "11:00"
    assert mrkdwn("<!date^soon^{time}|the fallback>", PLAIN) == "the fallback"


def test_text_objects() -> None:
    assert text_of({"type": "plain_text", "text": "*not bold* :x:"}, ANSI) == "*not bold* ❌"
    assert text_of({"type": "mrkdwn", "text": "*bold*"}, PLAIN) == "bold"
    assert text_of(None, PLAIN) == ""
    assert text_of("as is", PLAIN) == "as is"


# --------------------------------------------------------------------------- blocks


def test_every_block_kind() -> None:
    number = counter()
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your bookings"}},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "*ctx* one"}]},
        {
            "type": "actions",
            "block_id": "b1",
            "elements": [button("Extend 1 h", "extend"), button("Cancel", "cancel")],
        },
        {"type": "image", "alt_text": "a chart"},
        {"type": "rich_text"},
    ]
    assert render_blocks(blocks, PLAIN, number) == [
        "Your bookings",
        DIVIDER,
        "ctx one",
        "[1] Extend 1 h  [2] Cancel",
        "[a chart]",
        "‹rich_text block›",
    ]
    assert number.seen == [("extend", "b1"), ("cancel", "b1")]


def test_section_fields_two_per_line_and_accessory() -> None:
    block = {
        "type": "section",
        "block_id": "s1",
        "text": {"type": "mrkdwn", "text": "*rtx-0*"},
        "fields": [
            {"type": "mrkdwn", "text": "*Held now*\n8 GB"},
            {"type": "mrkdwn", "text": "*Free now*\n16 GB"},
            {"type": "mrkdwn", "text": "*Next change*\n—"},
        ],
        "accessory": button("Book", "book_slot"),
    }
    number = counter()
    assert block_lines(block, PLAIN, number) == [
        "rtx-0",
        "  Held now: 8 GB   Free now: 16 GB",
        "  Next change: —  [1] Book",
    ]
    assert number.seen == [("book_slot", "s1")]


def test_button_styles_on_a_terminal() -> None:
    danger = {**button("Cancel", "c"), "style": "danger"}
    primary = {**button("Book", "b"), "style": "primary"}
    line = block_lines({"type": "actions", "elements": [danger, primary]}, ANSI, counter())[0]
    assert line == "\x1b[31m[1] Cancel\x1b[0m  \x1b[32m[2] Book\x1b[0m"
    assert visible_len(line) == len("[1] Cancel  [2] Book")


def test_message_under_its_label_and_text_without_blocks() -> None:
    shown = render_message("#gpu-bookings", "", [{"type": "divider"}], PLAIN, counter())
    assert shown.split("\n") == ["── #gpu-bookings ──", "  " + DIVIDER]
    fallback = render_message("DM", "*hi* <@U1>", None, PLAIN, counter())
    assert fallback.split("\n") == ["── DM ──", "  hi @U1"]


def test_view_with_title_and_input_summary() -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Book a GPU"},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Task"},
                "element": {"type": "plain_text_input", "initial_value": "train"},
            },
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Memory"},
                "element": {"type": "plain_text_input"},
            },
        ],
    }
    assert render_view(view, PLAIN, counter()).split("\n") == [
        "┌ Book a GPU",
        "│ Task: train",
        "│ Memory: —",
        "└",
    ]
    assert render_view({"type": "home", "blocks": []}, PLAIN, counter()) == "┌ App Home\n└"


# --------------------------------------------------------------------------- inputs


def test_initial_text_of_each_input() -> None:
    option = {"text": {"type": "plain_text", "text": "rtx-0 · 24 GB"}, "value": "rtx-0"}
    assert initial_text({"type": "static_select", "initial_option": option}, PLAIN) == (
        "rtx-0 · 24 GB"
    )
    assert initial_text({"type": "static_select"}, PLAIN) is None
    ten = int(datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp())
    picker = {"type": "datetimepicker", "initial_date_time": ten}
    assert initial_text(picker, Reader(BERLIN, NOW)) == "11:00"
    assert initial_text({"type": "datetimepicker"}, PLAIN) is None
    assert initial_text({"type": "plain_text_input", "initial_value": "2h"}, PLAIN) == "2h"


def test_options_flatten_groups() -> None:
    a, b = {"value": "a"}, {"value": "b"}
    assert options_of({"options": [a, b]}) == [a, b]
    assert options_of({"option_groups": [{"options": [a]}, {"options": [b]}]}) == [a, b]
