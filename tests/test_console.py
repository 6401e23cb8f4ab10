"""The console end to end in process: scripted lines through the REPL, the real Bolt app and
listeners, the Slack double, the scheduler — asserting on what the terminal shows."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.console.repl import LoopThread, Printer, Repl
from bot.console.session import Session
from bot.core.clock import FrozenClock
from bot.runtime.config import Settings
from handlers.command_parser import EXAMPLES
from tests.conftest import T0

#: Raise this from the script to press Ctrl-C at a prompt.
CTRL_C = KeyboardInterrupt


class Terminal:
    """Scripted keyboard and captured screen: every prompt is echoed with what was "typed"."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.printer = Printer(self.out)
        self.lines: list[str | type[BaseException]] = []

    def type(self, *lines: str | type[BaseException]) -> None:
        self.lines.extend(lines)

    def read(self, prompt: str) -> str:
        if not self.lines:
            self.out.write(prompt + "^D\n")
            raise EOFError
        line = self.lines.pop(0)
        if isinstance(line, type):
            self.out.write(prompt + "^C\n")
            raise line
        self.out.write(prompt + line + "\n")
        return line

    def screen(self) -> str:
        """What was shown since the last call."""
        text = self.out.getvalue()
        self.out.seek(0)
        self.out.truncate()
        return text


class Console:
    def __init__(self, session: Session, loop: LoopThread, term: Terminal) -> None:
        self.session, self.loop, self.term = session, loop, term
        self.repl = Repl(session, loop, term.printer, term.read)

    def run(self, *lines: str | type[BaseException]) -> str:
        """Type ``lines`` then Ctrl-D; return the screen. The REPL must exit with 0."""
        self.term.type(*lines)
        assert self.repl.run() == 0
        return self.term.screen()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def console_tz() -> str:
    """The console's zone (``--tz``); a test parametrizes it to run in another."""
    return "UTC"


@pytest.fixture
def console(tmp_path: Path, clock: FrozenClock, console_tz: str) -> Iterator[Console]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    term = Terminal()
    session = Session(
        settings,
        clock,
        user="alice",
        tz_name=console_tz,
        show=term.printer.show,
        sweep_seconds=3600,  # tests sweep explicitly, after moving the clock
    )
    with LoopThread() as loop:
        notes = loop.call(session.start(demo=True))
        assert notes == [
            "Added demo GPUs: rtx-0 (24GB), rtx-1 (24GB), a100-1 (80GB), a100-2 (80GB)."
        ]
        loop.call(session.sweep())  # the scheduler's first sweep has run: nothing pending
        term.screen()
        try:
            yield Console(session, loop, term)
        finally:
            loop.call(session.close())


def test_the_console_runs_where_serve_installs_into_many_workspaces(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
            "SLACK_CLIENT_ID": "1111.2222",
            "SLACK_CLIENT_SECRET": "client-secret",
        }
    )
    term = Terminal()
    session = Session(settings, clock, user="alice", tz_name="UTC", show=term.printer.show)
    with LoopThread() as loop:
        loop.call(session.start(demo=True))
        try:
            assert "rtx-0" in Console(session, loop, term).run("status")
        finally:
            loop.call(session.close())


def test_list_book_calendar_cancel(console: Console) -> None:
    screen = console.run("status")
    assert "rtx-0" in screen and "a100-2" in screen and "Free now: 24 GB" in screen
    assert "only you can see this" in screen

    screen = console.run("/gpubook book rtx-0 8GB 10:00 for 2h train resnet")
    assert "✅ Booked" in screen
    assert "#1 · `rtx-0` · 8 GB · 10:00 – 12:00 · ⏳ upcoming" in screen
    assert "train resnet — @alice" in screen
    assert "[1] Extend 1 h  [2] Cancel  [3] Edit" in screen

    screen = console.run("list")
    assert "Your bookings" in screen and "[4] Extend 1 h  [5] Cancel  [6] Edit" in screen

    screen = console.run("calendar rtx-0")
    assert "10:00 ▓▓▓▓▓▓▓░░░░░░░░░░░░░ 8/24 GB" in screen
    assert "12:00 ░░░░░░░░░░░░░░░░░░░░ 0/24 GB" in screen
    assert "• #1 @alice · 8 GB · 10:00 – 12:00 · train resnet" in screen

    screen = console.run("cancel 1")
    assert "✅ Cancelled" in screen and "🚫 cancelled" in screen


def test_a_long_list_pages_with_more(console: Console) -> None:
    """The 16th booking used to appear nowhere: `list` stopped at 15 and said "see list all"."""
    for n in range(16):
        console.run(f"book rtx-0 1GB tomorrow {6 + n // 2}:{n % 2 * 30:02d} for 30m job {n}")
    screen = console.run("list")
    assert "Bookings 1–15." in screen and "job 14" in screen and "job 15" not in screen
    more = re.search(r"\[(\d+)\] More", screen)
    assert more is not None
    screen = console.run(more.group(1))  # the next page replaces the first
    assert "Bookings 16–16." in screen and "job 15" in screen and "More" not in screen


def test_buttons_confirm_and_go_stale(console: Console) -> None:
    console.run("book rtx-0 8GB 10:00 for 2h first")  # buttons 1-3
    screen = console.run("2", "n")
    assert "Cancel this booking? Booking #1 on rtx-0 will be cancelled." in screen
    assert "Keep it: nothing was sent." in screen

    screen = console.run(":press 1")  # Extend 1 h: answered with a new card
    assert "Extended by 1h" in screen and "10:00 – 13:00" in screen

    screen = console.run("calendar rtx-0")  # buttons 7-9: previous day, next day, week
    assert "[7] ◀ Previous day  [8] Next day ▶  [9] Week view" in screen
    screen = console.run("8")  # navigation replaces the calendar message
    assert "#gpu-bookings · only you can see this · updated" in screen
    assert "rtx-0 — Tue 6 Jan 2026" in screen
    screen = console.run("9")
    assert "Button [9] is gone: its message has been updated" in screen

    screen = console.run("5", "y")  # the Cancel button of the extended card
    assert "✅ Cancelled" in screen and "🚫 cancelled" in screen
    assert "There is no button [99]." in console.run("99")


#: Enter at the booking form's queue box and repeat section: not flexible, does not repeat, no
#: days, no last day.
NO_REPEAT = ("", "", "", "")


def test_modal_filled_by_prompts_with_a_field_error(console: Console) -> None:
    screen = console.run(
        "/gpubook",
        "rtx-1",  # GPU select: the app updates the view, memory defaults to half of rtx-1
        "",  # memory: keep the default
        "tomorrow 9am",
        "30d",  # too long: the app answers with a field error on submit
        "form task",
        *NO_REPEAT,
        "3h",  # then only the duration is asked again
    )
    assert "┌ Book a GPU" in screen
    assert "4) rtx-0 · 24 GB · 24 GB free now" in screen
    assert "│ Memory (e.g. 20GB, 20480MiB or 50%) [12GB]: \n" in screen
    assert "│ Start (e.g. tomorrow 9am) [08:15]: tomorrow 9am" in screen
    assert "│ ⚠ Bookings last at most 7d; this one is 30d." in screen
    assert screen.count("│ Duration") == 2 and screen.count("│ Memory") == 1
    assert "#1 · `rtx-1` · 12 GB · Tue 6 Jan 09:00 – 12:00" in screen
    assert console.session.modal is None


def test_the_form_books_a_series_from_its_repeat_section(console: Console) -> None:
    screen = console.run(
        "/gpubook", "rtx-1", "", "tomorrow 9am", "2h", "sync", "", "3", "", "2026-01-09"
    )
    assert "│ Repeat until (included) (e.g. 2026-12-01): 2026-01-09" in screen
    assert (
        "✅ Booked 4 occurrences of series #1: weekdays 09:00 for 2h until Fri 9 Jan 2026" in screen
    )
    screen = console.run("list")
    assert "weekdays 09:00 for 2h" in screen and "4 left" in screen


def test_the_form_queues_a_flexible_booking_from_its_checkbox(console: Console) -> None:
    screen = console.run("/gpubook", "rtx-1", "", "tomorrow 9am", "2h", "queued", "1", "", "", "")
    assert "│   1) Flexible (move earlier when room frees)" in screen
    screen = console.run("list")
    assert "flexible" in screen and "queued" in screen


def test_values_given_to_book_survive_choosing_the_gpu(console: Console) -> None:
    """Enter on the pre-selected GPU, or another GPU, re-renders the form: what `book` said stays."""
    screen = console.run("book rtx-1 8GB tomorrow 9am for 3h", "", "", "", "", "kept", *NO_REPEAT)
    assert "│ Memory (e.g. 20GB, 20480MiB or 50%) [8GB]: \n" in screen
    assert "│ Start (e.g. tomorrow 9am) [Tue 6 Jan 09:00]: \n" in screen
    assert "│ Duration (e.g. 90m, 1h30m, 2d) [3h]: \n" in screen
    assert "#1 · `rtx-1` · 8 GB · Tue 6 Jan 09:00 – 12:00" in screen

    screen = console.run(
        "book rtx-1 8GB tomorrow 9am for 3h", "a100-1", "", "", "", "moved", *NO_REPEAT
    )
    assert "[8GB]" in screen and "[Tue 6 Jan 09:00]" in screen and "[3h]" in screen
    assert "#2 · `a100-1` · 8 GB · Tue 6 Jan 09:00 – 12:00" in screen


def test_memory_default_follows_the_gpu_and_the_task_stays(console: Console) -> None:
    screen = console.run(
        "book rtx-1 tomorrow 9am for 3h train", "a100-1", "", "", "", "", *NO_REPEAT
    )
    assert "│ No memory was given: set it below.\n" in screen
    assert "│ Memory (e.g. 20GB, 20480MiB or 50%) [40GB]: \n" in screen  # half of a100-1
    assert "[12GB]" not in screen
    assert "│ Task (What the GPU is for; shown to everyone.) [train]: \n" in screen
    assert "#1 · `a100-1` · 40 GB · Tue 6 Jan 09:00 – 12:00" in screen


def test_book_buttons_book_the_memory_asked_for(console: Console) -> None:
    """`free 24GB` offers rtx-0 first (button [1]); its form keeps 24GB through the GPU select."""
    screen = console.run("free 24GB for 2h")
    assert "[1] Book rtx-0 08:00–10:00 UTC" in screen
    screen = console.run("1", "", "", "", "", "from free", *NO_REPEAT)
    assert "│ Memory (e.g. 20GB, 20480MiB or 50%) [24GB]: \n" in screen
    assert "#1 · `rtx-0` · 24 GB · 08:00 – 10:00" in screen

    console.run(":as bob", "book rtx-1 4GB 10:00 for 2h small", ":as alice")
    screen = console.run("book rtx-1 24GB 10:00 for 2h big")  # refused, with offers
    assert "Not enough memory on `rtx-1`" in screen
    sooner = re.search(r"Sooner on `rtx-0`, 24 GB: .*\[(\d+)\] Book rtx-0 10:00–12:00", screen)
    assert sooner is not None
    screen = console.run(sooner.group(1))
    assert "✅ Booked" in screen and "`rtx-0` · 24 GB · 10:00 – 12:00" in screen


def test_an_incomplete_book_says_what_is_missing(console: Console) -> None:
    screen = console.run("book rtx 20 gb", CTRL_C)
    assert "│ `rtx` is not a GPU here: pick one below.\n" in screen
    assert "│ No start time was given: pick one below.\n" in screen
    assert "│ No duration was given: set it below.\n" in screen
    assert "│ No task was given: say below what the GPU is for.\n" in screen

    screen = console.run("book a100-1 10GB for 2h", CTRL_C)
    assert "│ No start time was given: pick one below.\n" in screen
    assert (
        "No task was given" in screen and "No duration" not in screen and "not a GPU" not in screen
    )


def test_ctrl_c_closes_a_modal_and_clears_a_line(console: Console) -> None:
    screen = console.run("/gpubook", CTRL_C, CTRL_C, "list")
    assert "Form closed; nothing was submitted." in screen
    assert console.session.modal is None
    assert "You have no upcoming or active bookings." in screen


def test_another_user_cannot_cancel_and_admin_can(console: Console) -> None:
    console.run("book rtx-0 8GB 10:00 for 2h alice's run")
    screen = console.run(":as bob", "cancel 1")
    assert "You are now @bob (UBOB)." in screen
    assert "gpubook (bob)> cancel 1" in screen
    assert "Booking #1 belongs to @alice" in screen

    screen = console.run(":admin", "cancel 1")
    assert "@bob is now a workspace admin." in screen and "gpubook (bob admin)>" in screen
    assert "✅ Cancelled" in screen


def test_scheduler_notifications_and_app_home(console: Console, clock: FrozenClock) -> None:
    console.run("book rtx-0 8GB 10:00 for 2h nightly")
    clock.set(T0 + timedelta(hours=2, minutes=1))
    console.loop.call(console.session.sweep())
    screen = console.term.screen()
    assert "── #gpu-bookings ──" in screen
    assert "▶️ 1 booking started on `rtx-0`" in screen

    clock.set(T0 + timedelta(hours=3, minutes=50))
    console.loop.call(console.session.sweep())
    screen = console.term.screen()
    assert "── DM from gpubook to you ──" in screen
    assert "#1 Your booking of 8 GB on `rtx-0` ends 12:00." in screen
    assert "[4] Extend 1 h  [5] Release now" in screen

    screen = console.run(":home")
    assert "┌ App Home" in screen and "My bookings" in screen
    assert "nightly" in screen and "[1] New booking" not in screen  # numbers run on


def test_lines_that_are_not_commands(console: Console) -> None:
    screen = console.run("", "/other thing", ":nonsense", ":help", "help")
    assert "Only /gpubook exists here" in screen
    assert "Unknown console command `:nonsense`" in screen
    assert ":as NAME" in screen  # the console's help
    assert "book" in screen.split(":as NAME")[1]  # then the bot's own help
    assert screen.rstrip().endswith("^D")


def test_quit_ends_the_loop(console: Console) -> None:
    console.term.type(":quit", "list")
    assert console.repl.run() == 0
    assert console.term.lines == ["list"]


def test_as_alone_says_what_it_needs(console: Console) -> None:
    screen = console.run(":as", ":press")
    assert "Say whom to act as: `:as NAME` (e.g. `:as bob`)." in screen
    assert "Say which button to press: `:press N`" in screen
    assert "Unknown console command" not in screen
    assert console.session.user_name == "alice"


def test_the_help_example_sets_the_channel_verbatim(console: Console) -> None:
    """Slack turns `#name` into `<#C…|name>` (should_escape); so does the console's Slack."""
    [example] = [e for form, e, _ in EXAMPLES if form.startswith("/gpubook admin channel")]
    console.run(":admin", "admin gpu add a100-3 80GB")
    screen = console.run(example)
    assert "`a100-3`'s notifications now go to #gpu-bookings." in screen
    screen = console.run("admin channel #gpu-bookings")
    assert "✅ Notifications now go to #gpu-bookings." in screen
    screen = console.run("admin channel <#CGPUBOOK|gpu-bookings>")  # as Slack sends it
    assert "✅ Notifications now go to #gpu-bookings." in screen


def test_a_new_channel_named_with_a_hash_gets_the_notifications(
    console: Console, clock: FrozenClock
) -> None:
    console.run(":admin", "admin channel #ml-team rtx-0")
    console.run("book rtx-0 8GB 10:00 for 2h train", "cancel #1")
    console.loop.call(console.session.sweep())
    screen = console.term.screen()
    assert "── #ml-team ──" in screen and "#gpu-bookings" not in screen
    assert console.session.workspace.channels["ml-team"] == "CMLTEAM"


@pytest.mark.parametrize("console_tz", ["Europe/Berlin"])
def test_times_are_said_to_be_in_the_consoles_zone_by_name(console: Console) -> None:
    assert "Times are shown in your time zone, Europe/Berlin." in console.run("status")
    assert "Times (read in your time zone, Europe/Berlin)" in console.run("help")
    assert "Times are shown in your time zone, Europe/Berlin." in console.run(":home")


def test_the_console_takes_its_zone_from_tz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tz.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # Ctrl-D at once
    assert main(["console", "--tz", "Mars/Base"]) == 2
    assert "argument --tz: unknown time zone 'Mars/Base'" in capsys.readouterr().err
    assert main(["console", "--as", "ada", "--tz", "Europe/Berlin"]) == 0
    assert "you are @ada, in Europe/Berlin;" in capsys.readouterr().out
