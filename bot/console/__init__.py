"""``gpubook console``: try every feature of the Slack bot in a terminal, no workspace needed.

In the spirit of Errbot's text backend and Hubot's shell: each typed line goes through the same
Bolt app and listeners as in Slack, against an in-process Slack (:mod:`bot.console.double`);
replies, App Home and scheduler notifications are rendered as text (:mod:`bot.console.render`),
buttons are numbered to be pressed (:mod:`bot.console.repl`) and modals are filled in by prompts
(:mod:`bot.console.forms`).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from bot.cli.registry import Subparsers, add_command, zone
from bot.console.render import Style
from bot.console.repl import LoopThread, Printer, Repl, readline
from bot.console.session import Session
from bot.core.clock import Clock
from bot.runtime.config import Settings

HISTORY_NAME = ".gpubook_history"
HISTORY_LENGTH = 1000


def add_console(commands: Subparsers) -> None:
    """Register ``gpubook console`` (see ``bot.cli.main.COMMANDS``)."""
    parser = add_command(
        commands,
        "console",
        "Try gpubook in the terminal: the Slack bot's commands, buttons and forms, no Slack needed.",
        run,
    )
    parser.add_argument(
        "--as",
        dest="user",
        default=_login_name(),
        metavar="USER",
        help="whom to act as (default: your login name); `:as USER` switches later",
    )
    parser.add_argument(
        "--admin", action="store_true", help="start as a workspace admin (`:admin` toggles)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="on a database without GPUs, add demo GPUs and a simulated host agent that shows "
        "over-use, unbooked use and an idle booking within a minute",
    )
    parser.add_argument(
        "--tz",
        type=zone,
        metavar="ZONE",
        help="everyone's Slack time zone, like Europe/Berlin: times are read and shown in it "
        "(default: $TZ, else this machine's zone)",
    )


def run(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    """Start the bot in a background loop, read lines until Ctrl-D, shut everything down."""
    logging.basicConfig(level=logging.WARNING, format="gpubook: %(levelname)s %(message)s")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    printer = Printer(sys.stdout, redraw=interactive)
    style = Style(ansi=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    session = Session(
        settings,
        clock,
        user=args.user,
        admin=args.admin,
        tz_name=args.tz.key if args.tz else None,
        style=style,
        show=printer.show,
    )
    with LoopThread() as loop:
        try:
            notes = loop.call(session.start(demo=args.demo, simulate=args.demo))
            for note in [*notes, *banner(session)]:
                printer.show(note)
            with _history(interactive):
                return Repl(session, loop, printer, input).run()
        finally:
            loop.call(session.close())


def banner(session: Session) -> list[str]:
    admin = ", a workspace admin" if session.is_admin else ""
    return [
        f"gpubook console: you are @{session.user_name}{admin}, in {session.workspace.tz_name}; "
        "type `help` for gpubook's commands, `:help` for the console's, Ctrl-D to leave."
    ]


class _history:
    """Load readline history on entry and save it on exit (only for an interactive terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and readline is not None
        self.path = Path.home() / HISTORY_NAME

    def __enter__(self) -> None:
        if self.enabled:
            readline.set_history_length(HISTORY_LENGTH)
            if self.path.is_file():
                readline.read_history_file(self.path)

    def __exit__(self, *_: object) -> None:
        if self.enabled:
            try:
                readline.write_history_file(self.path)
            except OSError:
                logging.getLogger(__name__).warning("could not save history to %s", self.path)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user database entry (some containers)
        return "you"
