"""``gpubook``, the administrator's command line: a thin layer over the booking service.

It runs the same rules as Slack (every operation goes through :class:`BookingService`) and prints
the same sentences, so a refusal reads identically wherever it happens. The CLI acts as an admin
(user ``cli``) in the workspace ``GPUBOOK_TEAM`` unless ``--user`` says whom to act as. Exit codes
are in :mod:`bot.cli.registry`.

Every command that touches the database first migrates it (idempotent), so ``gpubook gpu add``
works on a fresh file. Adding a command: write a registrar that creates its parser with
:func:`bot.cli.registry.add_command` and a handler, and list the registrar in :data:`COMMANDS`.
This module is the only one that knows every command; the others know only the registry.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from sqlalchemy.exc import DBAPIError

from bot.cli.agent import add_agent_commands
from bot.cli.bookings import add_book, add_cancel, add_release
from bot.cli.chart import add_chart
from bot.cli.db import add_db_commands
from bot.cli.export import add_export
from bot.cli.gpus import add_gpu_commands
from bot.cli.groups import add_group_commands, add_limits
from bot.cli.links import add_link_commands
from bot.cli.registry import EXIT_REFUSED, EXIT_USAGE, Registrar, UsageError
from bot.cli.run import add_run
from bot.cli.stats import add_stats
from bot.cli.watches import add_notify_commands
from bot.cli.wording import TerminalText, terminal_text
from bot.console import add_console
from bot.core.clock import Clock, system_clock
from bot.core.errors import GpubookError
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from bot.core.wording import render
from bot.runtime.config import Settings
from bot.runtime.runner import add_serve
from storage.db import DatabaseUnusable

log = logging.getLogger(__name__)

#: Every top-level command, in the order ``--help`` lists them.
COMMANDS: tuple[Registrar, ...] = (
    add_db_commands,
    add_gpu_commands,
    add_group_commands,
    add_limits,
    add_book,
    add_cancel,
    add_release,
    add_notify_commands,
    add_export,
    add_stats,
    add_agent_commands,
    add_link_commands,
    add_run,
    add_chart,
    add_serve,
    add_console,
)
#: The reader of our output went away (``gpubook export | head``): the status a shell reports
#: for a program SIGPIPE ended, as every Unix tool in a pipeline does.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
#: Ctrl-C: the status a shell reports for a program SIGINT ended.
EXIT_INTERRUPTED = 128 + signal.SIGINT


def main(argv: list[str] | None = None, *, clock: Clock = system_clock) -> int:
    """Run one command; return its exit code (``--help`` and argparse errors included).

    No traceback reaches the operator: a refusal or a failure is one sentence on stderr, a
    closed pipe ends quietly, and anything unforeseen is the last resort's one line.
    """
    try:
        code = _run(argv, clock)
        sys.stdout.flush()  # inside the try: a reader gone is found here, not at exit
        return code
    except BrokenPipeError:
        _stop_writing_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:  # the machine's refusal (a port in use, a full disk): not a bug
        _complain(Code.SYSTEM_FAILURE, reason=str(exc))
        return EXIT_REFUSED
    except Exception as exc:  # the last resort, by design: one line, never a traceback
        log.debug("gpubook failed", exc_info=True)
        _complain(Code.UNEXPECTED_FAILURE, reason=f"{type(exc).__name__}: {exc}")
        return EXIT_REFUSED


def _run(argv: list[str] | None, clock: Clock) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        settings = Settings.from_env()
    except GpubookError as exc:
        print(f"gpubook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args, settings, clock)
    except UsageError as exc:
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GpubookError as exc:
        print(terminal_text(exc, now=clock()), file=sys.stderr)
        return EXIT_REFUSED
    except (DatabaseUnusable, DBAPIError) as exc:
        failure = (
            exc
            if isinstance(exc, DatabaseUnusable)
            else DatabaseUnusable(settings.database_url, exc)
        )
        _complain(Code.DATABASE_FAILED, url=Quote(failure.url), reason=failure.reason)
        return EXIT_REFUSED


def _complain(code: Code, **data: object) -> None:
    print(f"gpubook: {render(say(code, **data), TerminalText())}", file=sys.stderr)


def _stop_writing_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit finds no closed pipe
    (the advice of the ``signal`` module's documentation, "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture stdout)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpubook",
        description="Administer gpubook: GPUs, bookings and the database. "
        "Settings come from the environment (and .env); see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
