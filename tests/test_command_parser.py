"""The `/gpubook` grammar: every form, the forgiving `book`, and the refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.limits import LimitName
from handlers.blocks.common import escape
from handlers.command_parser import EXAMPLES, parse_command
from handlers.commands.syntax import (
    AdminAudit,
    AdminChannel,
    AdminGpuAdd,
    AdminGpuEdit,
    AdminGpuRetire,
    AdminGroup,
    AdminLimits,
    AdminStats,
    Book,
    BookFlexible,
    Calendar,
    Cancel,
    Edit,
    Extend,
    Free,
    Help,
    ListBookings,
    Notify,
    NotifyCancel,
    NotifyList,
    OpenModal,
    Release,
    Status,
)
from handlers.commands.words import plain_text
from tests.conftest import said

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)  # Friday 14:00 in Berlin
TOMORROW_9 = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # Saturday 09:00 Berlin


def parse(text: str):
    return parse_command(text, now=NOW, tz=BERLIN)


def refusal(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("text", ["", "   "])
def test_bare_command_opens_the_modal(text: str) -> None:
    assert parse(text) == OpenModal()


class TestBook:
    def test_full_form_with_for(self) -> None:
        assert parse("book a100-1 20GB tomorrow 9:00 for 3h fine-tune") == Book(
            gpu="a100-1",
            size_text="20GB",
            start=TOMORROW_9,
            end=None,
            duration=timedelta(hours=3),
            task="fine-tune",
            missing=(),
        )

    def test_full_form_with_until(self) -> None:
        result = parse("book a100-1 20GB now until 17:00 eval run")
        assert (result.start, result.end, result.duration) == (
            NOW,
            datetime(2026, 3, 27, 16, 0, tzinfo=UTC),
            None,
        )
        assert result.task == "eval run"

    def test_until_a_bare_time_means_after_the_start(self) -> None:
        """`tomorrow 9am until 17:00` ends tomorrow, not today at 17:00 (before the start)."""
        result = parse("book a100-1 20GB tomorrow 9am until 17:00 x")
        assert result.end == datetime(2026, 3, 28, 16, 0, tzinfo=UTC)
        overnight = parse("book a100-1 20GB tomorrow 22:00 until 6am x")
        assert overnight.end == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)  # Sunday, summer time

    def test_until_with_explicit_day(self) -> None:
        result = parse("book a100-1 20GB tomorrow 9am until tomorrow 17:00 x")
        assert result.end == datetime(2026, 3, 28, 16, 0, tzinfo=UTC)

    def test_any_gpu_and_percentage(self) -> None:
        result = parse("book ANY 50% now for 1h x")
        assert (result.gpu, result.size_text, result.missing) == (None, "50%", ())

    def test_gpu_name_is_lower_cased_and_task_kept_verbatim(self) -> None:
        result = parse("BOOK A100-1 20gb NOW FOR 1H Fine-Tune  LLaMA  &lt;&amp;&gt; `x`")
        assert result.gpu == "a100-1"
        assert result.size_text == "20gb"
        assert result.task == "Fine-Tune LLaMA <&> `x`"

    def test_task_may_contain_grammar_words(self) -> None:
        result = parse("book a100-1 20GB now for 3 hours train for paper until done")
        assert result.duration == timedelta(hours=3)
        assert result.task == "train for paper until done"

    def test_task_starting_with_a_number_is_not_eaten_by_the_duration(self) -> None:
        result = parse("book a100-1 20GB now for 2h 3 models")
        assert (result.duration, result.task) == (timedelta(hours=2), "3 models")

    @pytest.mark.parametrize(
        ("text", "size_text"),
        [("book a100-1 20 GB now for 1h x", "20GB"), ("book a100-1 50 % now for 1h x", "50%")],
    )
    def test_size_may_have_a_space_before_the_unit(self, text: str, size_text: str) -> None:
        assert parse(text).size_text == size_text

    @pytest.mark.parametrize(
        ("text", "start", "duration"),
        [
            ("book a1 1GB in 2h for 1h 30m x", datetime(2026, 3, 27, 15, 0, tzinfo=UTC), 90),
            ("book a1 1GB 2026-12-01 09:00 for 90m x", datetime(2026, 12, 1, 8, 0, tzinfo=UTC), 90),
            ("book a1 1GB tomorrow at 9am for 2h30 x", TOMORROW_9, 150),
            ("book a1 1GB mon 10:00 for 45m x", datetime(2026, 3, 30, 8, 0, tzinfo=UTC), 45),
        ],
    )
    def test_start_and_duration_forms(self, text: str, start: datetime, duration: int) -> None:
        result = parse(text)
        assert (result.start, result.duration) == (start, timedelta(minutes=duration))

    @pytest.mark.parametrize(
        ("text", "missing"),
        [
            ("book", ("gpu", "size", "start", "duration", "task")),
            ("book a100-1", ("size", "start", "duration", "task")),
            ("book a100-1 20GB", ("start", "duration", "task")),
            ("book a100-1 20GB now", ("duration", "task")),
            ("book a100-1 20GB now for", ("duration", "task")),
            ("book a100-1 20GB now for 1h", ("task",)),
            ("book a100-1 20GB for 3h train", ("start",)),
            ("book a100-1 tomorrow 9am for 2h train", ("size",)),
            ("book 20GB now for 1h train", ("gpu",)),
            ("book tomorrow 9am for 1h train", ("gpu", "size")),
            ("book for 1h train", ("gpu", "size", "start")),
        ],
    )
    def test_missing_parts_are_named_not_refused(self, text: str, missing: tuple[str]) -> None:
        assert parse(text).missing == missing

    def test_partial_book_keeps_what_was_given(self) -> None:
        result = parse("book a100-1 tomorrow 9am for 2h train")
        assert (result.gpu, result.size_text, result.start) == ("a100-1", None, TOMORROW_9)
        assert (result.duration, result.task) == (timedelta(hours=2), "train")

    @pytest.mark.parametrize(
        ("text", "field", "phrase"),
        [
            ("book a100 abc now for 1h x", "memory", "can't read `abc`"),
            ("book a100 20 now for 1h x", "memory", "with a unit"),
            ("book a100 -5GB now for 1h x", "memory", "positive"),
            ("book a100 1e9GB now for 1h x", "memory", "exponent"),
            ("book a100 150% now for 1h x", "memory", "100%"),
            ("book a100 20GB xyz for 1h x", "start", "can't read `xyz`"),
            ("book a100 20GB tomorrow 25:00 for 1h x", "start", "no hour 25"),
            ("book a100 20GB now 1h x", "duration", "`for 3h` or `until 17:00`"),
            ("book a100 20GB now for abc x", "duration", "can't read `abc`"),
            ("book a100 20GB now for 0m x", "duration", "longer than zero"),
            ("book a100 20GB now for 400d x", "duration", "366d"),
            ("book a100 20GB now until xyz", "end", "can't read `xyz`"),
            ("book a100 20GB tomorrow 9am until today 8am x", "end", "not after the start"),
        ],
    )
    def test_malformed_present_parts_are_refused(self, text: str, field: str, phrase: str) -> None:
        error = refusal(text)
        assert error.field == field
        assert phrase in said(error)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("list", ListBookings(everyone=False)),
        ("LIST", ListBookings(everyone=False)),
        ("list all", ListBookings(everyone=True)),
        ("list ALL", ListBookings(everyone=True)),
        ("cancel 42", Cancel(42)),
        ("cancel #42", Cancel(42)),
        ("release 7", Release(7)),
        ("Release #7", Release(7)),
        ("edit 3", Edit(3)),
        ("extend 42 2h", Extend(42, timedelta(hours=2))),
        ("extend #42 1h 30m", Extend(42, timedelta(minutes=90))),
        ("extend 42 by 30m", Extend(42, timedelta(minutes=30))),
        ("status", Status()),
        ("status A100-*", Status("a100-*")),
        ("status rtx", Status("rtx")),
        ("help", Help()),
        ("help book", Help()),
        ("free 40GB", Free("40GB", None)),
        ("free 40 GB for 4h", Free("40GB", timedelta(hours=4))),
        ("free 50% for 2 hours", Free("50%", timedelta(hours=2))),
    ],
)
def test_simple_commands(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("calendar", Calendar(None, None, False)),
        ("calendar a100-1 friday", Calendar("a100-1", date(2026, 3, 27), False)),
        ("calendar friday", Calendar(None, date(2026, 3, 27), False)),
        ("calendar mon", Calendar(None, date(2026, 3, 30), False)),
        ("calendar A100-1", Calendar("a100-1", None, False)),
        ("calendar week", Calendar(None, None, True)),
        ("calendar a100-1 week", Calendar("a100-1", None, True)),
        ("calendar tomorrow a100-1", Calendar("a100-1", date(2026, 3, 28), False)),
        ("calendar a100-1 2026-12-01", Calendar("a100-1", date(2026, 12, 1), False)),
        ("calendar week 2026-12-01", Calendar(None, date(2026, 12, 1), True)),
    ],
)
def test_calendar(text: str, command: Calendar) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    "text",
    ["calendar a100-1 a100-2", "calendar friday monday", "calendar week week", "calendar a b c"],
)
def test_calendar_refuses_extra_words(text: str) -> None:
    assert "calendar [gpu] [day|week]" in said(refusal(text))


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("admin gpu add A100-3 80GB", AdminGpuAdd("a100-3", "80GB", None)),
        (
            "admin gpu add a100-3 80 GB A100 in rack 2",
            AdminGpuAdd("a100-3", "80GB", "A100 in rack 2"),
        ),
        ("ADMIN GPU ADD rtx4090 24GiB", AdminGpuAdd("rtx4090", "24GiB", None)),
        ("admin gpu retire A100-3", AdminGpuRetire("a100-3")),
        ("admin gpu retire a100-3 Cancel-Future", AdminGpuRetire("a100-3", cancel_future=True)),
        ("admin gpu edit A100-3 size 40GB", AdminGpuEdit("a100-3", size_text="40GB")),
        ("admin gpu edit a100-3 size 40 GiB", AdminGpuEdit("a100-3", size_text="40GiB")),
        ("admin gpu edit a100-3 rename A100-4", AdminGpuEdit("a100-3", new_name="a100-4")),
        (
            "admin gpu edit a100-3 description &lt;rack&gt; 2 <@U1|bob>",
            AdminGpuEdit("a100-3", description="<rack> 2 @bob"),
        ),
        ("admin channel <#C123ABC|general>", AdminChannel("C123ABC")),
        ("admin channel <#C123ABC|general> A100-1", AdminChannel("C123ABC", "a100-1")),
        ("admin channel <#C123ABC>", AdminChannel("C123ABC")),
        ("admin channel <#G0ABCDEF|private>", AdminChannel("G0ABCDEF")),
        ("admin channel C0123ABCD", AdminChannel("C0123ABCD")),
        ("admin stats", AdminStats(7)),
        ("admin stats 30", AdminStats(30)),
        ("admin audit", AdminAudit(20)),
        ("admin audit 200", AdminAudit(200)),
        ("admin AUDIT 1", AdminAudit(1)),
    ],
)
def test_admin_commands(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("admin gpu add", "name", "name and memory"),
        ("admin gpu add a100-3", "name", "name and memory"),
        ("admin gpu add any 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add friday 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add week 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add next 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add 20GB 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add 14:00 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add gpu/1 80GB", "gpu", "can't be a GPU name"),
        ("admin gpu add a100-3 50%", "memory", "as a size"),
        ("admin gpu add a100-3 lots", "memory", "can't read `lots`"),
        ("admin gpu retire", "name", "GPU to retire"),
        ("admin gpu retire a100-3 now", "name", "cancel-future"),
        ("admin gpu retire a100-3 cancel-future x", "name", "cancel-future"),
        ("admin gpu edit a100-3", "gpu", "Say what to change"),
        ("admin gpu edit a100-3 size", "gpu", "Say what to change"),
        ("admin gpu edit a100-3 size 50%", "memory", "as a size"),
        ("admin gpu edit a100-3 size 40GB 2", "memory", "as a size"),
        ("admin gpu edit a100-3 size lots", "memory", "can't read `lots`"),
        ("admin gpu edit a100-3 rename any", "gpu", "can't be a GPU name"),
        ("admin gpu edit a100-3 rename a b", "gpu", "Say what to change"),
        ("admin gpu edit a100-3 colour red", "gpu", "Say what to change"),
        ("admin channel <#C1ABC> a b", "channel", "Mention the channel"),
        ("admin audit 0", "limit", "from 1 to 200"),
        ("admin audit 201", "limit", "from 1 to 200"),
        ("admin audit all", "limit", "from 1 to 200"),
        ("admin channel general", "channel", "Mention the channel"),
        ("admin channel", "channel", "Mention the channel"),
        ("admin stats 0", "days", "from 1 to"),
        ("admin stats 99999", "days", "from 1 to"),
        ("admin stats week", "days", "from 1 to"),
        ("admin", "command", "`/gpubook admin`"),
        ("admin reboot now", "command", "`/gpubook admin reboot now`"),
    ],
)
def test_admin_refusals(text: str, field: str, phrase: str) -> None:
    error = refusal(text)
    assert (error.field, phrase in said(error)) == (field, True)


@pytest.mark.parametrize("verb", ["cancel", "release", "edit"])
@pytest.mark.parametrize("args", ["", "x", "0", "#", "42 43", "-1", "4.2", "1234567890123456789"])
def test_bad_booking_ids_are_refused(verb: str, args: str) -> None:
    error = refusal(f"{verb} {args}")
    assert said(error) == (
        f"Give the booking number, like `/gpubook {verb} 42` (see `/gpubook list`)."
    )
    assert error.field == "booking"


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("extend", "booking", "booking number"),
        ("extend 42", "duration", "how much longer"),
        ("extend 42 by", "duration", "how much longer"),
        ("extend 42 soon", "duration", "can't read `soon`"),
        ("list mine", "command", "`/gpubook list all`"),
        ("status a100 h100", "command", "at most one GPU name or pattern"),
        ("status a100/3", "command", "at most one GPU name or pattern"),
        ("free", "memory", "/gpubook free &lt;size&gt;"),
        ("free lots", "memory", "can't read `lots`"),
        ("free 40GB 4h", "duration", "/gpubook free &lt;size&gt;"),
        ("free 40GB for", "duration", "/gpubook free &lt;size&gt;"),
        ("free 40GB for ages", "duration", "can't read `ages`"),
    ],
)
def test_other_refusals(text: str, field: str, phrase: str) -> None:
    error = refusal(text)
    assert error.field == field
    assert phrase in said(error)


@pytest.mark.parametrize("word", ["xyz", "Frobnicate", "<script>"])
def test_unknown_subcommand(word: str) -> None:
    error = refusal(f"{word} a b")
    assert said(error) == f"I don't know `/gpubook {escape(word)}`. Try `/gpubook help`."


def test_every_example_parses() -> None:
    """The help message must never advertise a command the parser refuses."""
    for _form, example, explanation in EXAMPLES:
        text = example.removeprefix("/gpubook").strip()
        # Slack rewrites a typed `#channel` into a mention when the command escapes channels.
        text = text.replace("#gpu-bookings", "<#C0GPUBOOK|gpu-bookings>")
        text = text.replace("@alice", "<@UALICE|alice>")  # and a typed `@alice` into a mention
        # … and a typed `@ana` into a user mention.
        text = text.replace("@ana", "<@U0ANA0000|ana>").replace("@ben", "<@U0BEN0000|ben>")
        command = parse(text)
        assert explanation
        if isinstance(command, Book):
            assert command.missing == ()


def test_examples_cover_every_command_word() -> None:
    words = {form.split()[1] for form, _, _ in EXAMPLES if len(form.split()) > 1}
    assert words == {
        "book",
        "list",
        "cancel",
        "release",
        "edit",
        "extend",
        "calendar",
        "chart",
        "status",
        "free",
        "help",
        "limits",
        "admin",
        "link",
        "unlink",
        "notify",
    }


def test_notify_reads_size_length_gpus_deadline_and_task() -> None:
    assert parse("notify 20GB for 2h") == Notify("20GB", timedelta(hours=2))
    assert parse("notify 20 GB for 90m on a100-* before tomorrow 9:00 fine tune") == Notify(
        "20GB", timedelta(minutes=90), "a100-*", TOMORROW_9, "fine tune"
    )
    assert parse("notify 8GB for 1h before tomorrow 9:00 on rtx-0") == Notify(
        "8GB", timedelta(hours=1), "rtx-0", TOMORROW_9
    )
    assert parse("notify list") == NotifyList()
    assert parse("notify cancel #3") == NotifyCancel(3)
    for wrong in ("notify", "notify 20GB", "notify 20GB 2h", "notify cancel x", "notify list 3"):
        with pytest.raises(InputError):
            parse(wrong)
    assert "`/gpubook notify 20GB for 2h`" in said(refusal("notify 20GB 2h"))
    for bare in ("notify 20GB for", "notify 20 GB for"):
        error = refusal(bare)
        assert error.field == "duration"
        assert "`/gpubook notify 20GB for 2h`" in said(error)


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_politely(text: str) -> None:
    """Whatever a user types, the answer is a command or an InputError, never a crash."""
    try:
        parse(text)
    except InputError as error:
        assert said(error)


words = st.sampled_from(
    ["book", "a100-1", "any", "20GB", "50%", "now", "tomorrow", "9am", "for", "until", "2h", "x"]
)


@given(st.lists(words, max_size=8))
def test_book_like_word_salads_never_crash(tokens: list[str]) -> None:
    try:
        parse("book " + " ".join(tokens))
    except InputError as error:
        assert error.field is not None


@pytest.mark.parametrize(
    ("sent", "typed"),
    [
        ("&lt;!channel&gt; &amp; more", "<!channel> & more"),
        ("ask <@U123|bob> in <#C42|ml-team>", "ask @bob in #ml-team"),
        ("ping <!here> and <!subteam^S1|@gpu-users>", "ping @here and @gpu-users"),
        ("see <https://x.example/a|the doc>", "see the doc"),
        ("plain *bold* text", "plain *bold* text"),
    ],
)
def test_plain_text_reads_slack_escaped_text_as_typed(sent: str, typed: str) -> None:
    assert plain_text(sent) == typed


def test_book_task_is_stored_as_typed_not_as_slack_escaped_it() -> None:
    cmd = parse("book rtx-0 8GB now for 1h &lt;!channel&gt; &amp; <@U1|bob>")
    assert cmd.task == "<!channel> & @bob"


def test_admin_group_and_limits_read_mentions_ids_and_values() -> None:
    added = parse("admin group add Premium <@U0ANA0000|ana> U0BEN0000")
    assert added == AdminGroup("add", "premium", ("U0ANA0000", "U0BEN0000"))
    assert parse("admin group remove premium") == AdminGroup("remove", "premium", ())
    assert parse("admin group list") == AdminGroup("list")
    assert parse("admin limits premium max-held 96 GB") == AdminLimits(
        "premium", LimitName.MAX_HELD, 96 * 1024
    )
    assert parse("admin limits everyone max-gbh 300").value == 300 * 1024 * 3600
    assert parse("admin limits everyone max-open none").value is None
    assert parse("admin limits everyone max-duration 2d").value == 2 * 86400
    for text, saying in (
        ("admin group add premium", "admin group add premium @ana"),
        ("admin group add premium ana", "admin group add premium @ana"),
        ("admin limits premium", "like `/gpubook admin limits premium max-held 96GB`"),
        ("admin limits premium max-foo 3", "I don't know the limit `max-foo`"),
        ("admin limits premium max-open lots", "`lots` is not a value for max-open"),
        ("admin limits Pre$mium max-open 3", "can't be a group name"),
    ):
        with pytest.raises(InputError) as error:
            parse(text)
        assert saying in said(error.value), said(error.value)


def test_book_override_is_a_word_after_book() -> None:
    command = parse("book override any 40GB now for 4h train-x")
    assert isinstance(command, Book) and command.override_limits and command.task == "train-x"
    assert not parse("book any 40GB now for 4h override").override_limits


def test_book_asap_after_the_length_is_a_flexible_booking() -> None:
    command = parse("book any 40GB for 4h asap on a100-* not before 14:00 by fri 18:00 train x")
    assert isinstance(command, BookFlexible)
    assert (command.size_text, command.duration, command.pattern) == (
        "40GB",
        timedelta(hours=4),
        "a100-*",
    )
    assert (
        command.task == "train x"
        and command.not_before is not None
        and command.deadline is not None
    )
    assert parse("book a100-* 40GB for 4h asap go").pattern == "a100-*"
    # "asap" in a fixed booking's task stays the task's.
    fixed = parse("book any 40GB now for 4h asap please")
    assert isinstance(fixed, Book) and fixed.task == "asap please"
    with pytest.raises(InputError) as error:
        parse("book any 40GB for 4h asap")
    assert "then the task" in said(error.value)
