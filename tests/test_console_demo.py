"""`gpubook console --demo`: the simulated agent makes over-use, unbooked use and an idle
booking happen, and the console shows the DMs (time injected; the agent reports when told)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from bot.console.demo import DEMO_IDLE_AFTER
from bot.console.repl import LoopThread, Printer
from bot.console.session import Session
from bot.core.actor import Actor
from bot.core.clock import FrozenClock
from bot.runtime.config import Settings
from tests.conftest import T0
from tests.test_console import Console, Terminal


def test_the_demo_shows_over_use_unbooked_use_and_an_idle_booking(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    term = Terminal()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    session = Session(
        settings,
        clock,
        user="alice",
        tz_name="UTC",
        show=term.printer.show,
        sweep_seconds=3600,  # swept below, after moving the clock
        demo_report_seconds=None,  # the agent reports when the test says
    )
    with LoopThread() as loop:
        notes = loop.call(session.start(demo=True, simulate=True))
        try:
            assert notes[0].startswith("Added demo GPUs: rtx-0 (24GB)")
            assert "Unix login `alice`" in notes[1] and "rtx-0 but use 10 GB" in notes[1]
            agent = session.demo_agent
            assert agent is not None
            loop.call(session.sweep())  # the bookings start
            term.screen()
            loop.call(agent.report_once())
            clock.advance(timedelta(seconds=5))
            loop.call(agent.report_once())  # two reports in a row: over-use, unbooked use
            loop.call(session.sweep())
            screen = term.screen()
            assert "DM from gpubook to you" in screen
            assert (
                "Your processes on `rtx-0` use 10 GB, but your bookings there hold 4 GB" in screen
            )
            assert "Your processes on `rtx-1` use 6 GB, and you have no booking there" in screen
            assert "Raise #1 to 10 GB" in screen and "Book 6 GB until" in screen
            assert "no process of yours" not in screen
            clock.advance(DEMO_IDLE_AFTER)
            loop.call(agent.report_once())
            loop.call(session.sweep())
            screen = term.screen()
            assert "Your booking #2 of 20 GB on `a100-1` has had no process of yours" in screen
            assert "Release" in screen and "Keep" in screen
            status = Console(session, loop, term).run("status")
            assert "in use 10 GB ⚠" in status or "in use 10 GB :warning:" in status
            assert "mallory" in status
        finally:
            loop.call(session.close())


def admin(settings: Settings) -> Actor:
    return Actor("console", settings.team, is_workspace_admin=True)


def test_a_second_demo_on_the_same_database_adds_nothing_and_its_agent_reports_again(
    tmp_path: Path,
) -> None:
    """The demo's idle time is short: without its agent, a second run would find every booking
    idle once the first run's reports went silent."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    for run in range(2):
        session = Session(
            settings,
            FrozenClock(T0 + timedelta(minutes=run)),
            user="alice",
            tz_name="UTC",
            show=Printer(io.StringIO()).show,
            demo_report_seconds=None,
        )
        with LoopThread() as loop:
            try:
                notes = loop.call(session.start(demo=True, simulate=True))
                assert session.demo_agent is not None
                if run:
                    assert notes == ["The simulated agent on demo-host reports again."]
                    loop.call(session.demo_agent.report_once())  # its new token is good
                    assert len(loop.call(session.bot.service.list_gpus(admin(settings)))) == 4
                else:
                    assert len(notes) == 2
            finally:
                loop.call(session.close())


def test_a_demo_on_a_database_of_real_gpus_adds_nothing(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    session = Session(
        settings, FrozenClock(T0), user="alice", tz_name="UTC", show=Printer(io.StringIO()).show
    )
    with LoopThread() as loop:
        try:
            loop.call(session.start())
            loop.call(session.bot.service.add_gpu(admin(settings), "rtx-0", "24GB"))
        finally:
            loop.call(session.close())
    session = Session(
        settings, FrozenClock(T0), user="alice", tz_name="UTC", show=Printer(io.StringIO()).show
    )
    with LoopThread() as loop:
        try:
            assert loop.call(session.start(demo=True, simulate=True)) == []
            assert session.demo_agent is None
        finally:
            loop.call(session.close())
