"""The one wording table, rendered on every surface: complete, and free of Slack syntax where
Slack syntax cannot show (a terminal, a form's field errors)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.cli.wording import TerminalText
from bot.core.errors import InputError
from bot.core.phrases import WORDING, Code
from bot.core.sentence import Quote, Size, Span, User, When, Window, say
from bot.core.units import parse_size
from bot.core.wording import Surface, render
from handlers.wording import FormText, SlackText

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
SLACK_SYNTAX = ("`", "<@", "<!date", "/gpubook", "&lt;", "&amp;")
_FIELD = re.compile(r"\{(\w+)\}")
#: A count mark, ``{count:booking}``: the value is a number.
_COUNT = re.compile(r"\{(\w+):[^{}]+\}")


def sample(name: str) -> Any:
    """A value of the kind each placeholder name carries in the service."""
    kinds: dict[str, Any] = {
        "owner": User("UALICE"),
        "start": When(T0),
        "window": Window(T0, T0 + timedelta(hours=2)),
        "peak": Window(T0, T0 + timedelta(hours=1), zone=False),
        "known": say(Code.KNOWN_GPUS, names=[Quote("rtx-0"), Quote("a100")]),
        "names": [Quote("rtx-0")],
    }
    if name in kinds:
        return kinds[name]
    if name in ("held", "capacity", "asked", "free", "size"):
        return Size(8 * 1024)
    if name in ("limit", "length", "left", "horizon"):
        return Span(timedelta(hours=4))
    if name in ("id", "count", "max", "minute", "hour", "value", "length"):
        return 42
    return Quote("<a&b> *x*")


def filled(code: Code) -> list[Any]:
    data = {name: sample(name) for name in _FIELD.findall(WORDING[code])}
    data |= {name: 42 for name in _COUNT.findall(WORDING[code])}
    return [say(code, **data)]


def test_every_code_has_wording() -> None:
    assert set(WORDING) == set(Code)


@pytest.mark.parametrize("code", list(Code))
@pytest.mark.parametrize("surface", [FormText(UTC, T0), TerminalText(UTC, T0)], ids=["form", "cli"])
def test_plain_surfaces_show_no_slack_syntax(code: Code, surface: Surface) -> None:
    text = render(filled(code), surface)
    assert not [s for s in SLACK_SYNTAX if s in text], text
    assert "[[" not in text and "{" not in text


@pytest.mark.parametrize("code", list(Code))
def test_slack_rendering_escapes_what_users_typed(code: Code) -> None:
    text = render(filled(code), SlackText(UTC, T0))
    assert "<a&b>" not in text and "[[" not in text


def test_slack_names_commands_and_mentions_real_users_only() -> None:
    refusal = say(Code.NOT_OWNER, id=7, owner=User("U42"), verb="cancel")
    assert render(refusal, SlackText(UTC, T0)).endswith("see your own with `/gpubook list`.")
    assert "<@U42>" in render(refusal, SlackText(UTC, T0))
    by_cli = say(Code.NOT_OWNER, id=7, owner=User("cli"), verb="cancel")
    assert "<@" not in render(by_cli, SlackText(UTC, T0))


def test_the_terminal_names_its_own_commands() -> None:
    hint = say(Code.STARTED_RELEASE, id=14)
    assert "(gpubook release 14)" in render(hint, TerminalText(UTC, T0))
    retire = say(Code.GPU_STILL_BOOKED, gpu=Quote("rtx-0"), name="rtx-0", count=1)
    assert "(gpubook gpu retire rtx-0 --cancel-future)" in render(retire, TerminalText(UTC, T0))
    gpus = say(Code.NO_GPUS)
    assert "gpubook gpu add NAME SIZE" in render(gpus, TerminalText(UTC, T0))


def test_a_refusal_carries_its_code_values_and_field() -> None:
    with pytest.raises(InputError) as caught:
        parse_size("20XB")
    assert caught.value.code is Code.SIZE_UNKNOWN_UNIT
    assert caught.value.sentences[0].data == {"unit": Quote("xb")}
    assert caught.value.field == "memory"
    assert str(caught.value) == render(caught.value.sentences, Surface())


def test_the_sizes_of_one_sentence_share_one_unit() -> None:
    def full(asked: int) -> str:
        card = Size(24 * 1024)
        window = Window(T0, T0 + timedelta(hours=2))
        refusal = say(
            Code.NOT_ENOUGH,
            gpu=Quote("rtx-0"),
            window=window,
            held=card,
            capacity=card,
            peak=window,
            free=Size(0),
            asked=Size(asked),
        )
        return render(refusal, Surface(UTC, T0))

    assert "24 GB of 24 GB already held" in full(1024) and "0 GB free, 1 GB asked" in full(1024)
    # 1 MiB would read "0 GB": the whole sentence says MiB then, exactly.
    assert "24576 MiB of 24576 MiB already held" in full(1) and "0 MiB free, 1 MiB asked" in full(1)


@pytest.mark.parametrize(
    ("code", "data", "one", "many"),
    [
        (
            Code.GPU_STILL_BOOKED,
            {"gpu": Quote("rtx-0"), "name": "rtx-0"},
            "1 upcoming or active booking.",
            "2 upcoming or active bookings.",
        ),
        (
            Code.TEXT_TOO_LONG,
            {"what": "task", "limit": 200},
            "is 1 character long",
            "is 2 characters long",
        ),
        (
            Code.TIME_BAD_SIXTIETH,
            {"typed": Quote("9:61")},
            "has 1 minute or second;",
            "has 2 minutes or seconds;",
        ),
    ],
)
def test_every_count_agrees_with_its_noun(
    code: Code, data: dict[str, Any], one: str, many: str
) -> None:
    """Each count in the wording table is a ``{n:noun}`` mark: "1 booking", never "1 booking(s)"."""
    key = _COUNT.findall(WORDING[code])[0]
    assert one in render(say(code, **data, **{key: 1}), Surface(UTC, T0))
    assert many in render(say(code, **data, **{key: 2}), Surface(UTC, T0))


def test_no_noun_in_the_wording_table_hedges_its_number() -> None:
    """ "booking(s)" is what a count without a count mark reads like."""
    hedged = [code for code, words in WORDING.items() if re.search(r"(?<!http)\(s\)", words)]
    assert hedged == []
