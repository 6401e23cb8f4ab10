"""The console end to end in process: scripted lines through the REPL, the real Bolt app and
listeners, the Slack double, the scheduler — asserting on what the terminal shows."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.console.repl import LoopThread, Printer, Repl
from bot.console.session import Session
from bot.core.clock import FrozenClock
from bot.runtime.config import Settings
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
def console(tmp_path: Path, clock: FrozenClock) -> Iterator[Console]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    term = Terminal()
    session = Session(
        settings,
        clock,
        user="alice",
        tz_name="UTC",
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


def test_modal_filled_by_prompts_with_a_field_error(console: Console) -> None:
    screen = console.run(
        "/gpubook",
        "rtx-1",  # GPU select: the app updates the view, memory defaults to half of rtx-1
        "",  # memory: keep the default
        "tomorrow 9am",
        "30d",  # too long: the app answers with a field error on submit
        "form task",
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
