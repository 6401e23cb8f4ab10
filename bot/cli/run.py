"""``gpubook run [--gpu NAME] [--book SIZE --for DURATION] -- CMD…``: run on your booked card.

On a GPU host, it asks the local ``gpubook agent`` (over ``GPUBOOK_AGENT_SOCKET``) which card the
caller's booking under way is on — the agent knows the caller from the socket, not from anything
this program says — then replaces itself with ``CMD`` (``os.execvpe``), so signals, the exit code
and the terminal are the command's own. ``CMD`` sees only that card (``CUDA_VISIBLE_DEVICES`` is
its UUID) and the memory caps the stacks that have one honour (:meth:`Grant.environment
<bot.core.host_bookings.Grant.environment>`). With ``--book 8GB --for 2h`` it books first, for
the Slack user linked to the caller's login. A refusal is one sentence on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.registry import (
    EXIT_REFUSED,
    Subparsers,
    UsageError,
    add_command,
    argument_type,
    booking_size,
)
from bot.cli.wording import TerminalText
from bot.core.clock import Clock
from bot.core.formats import format_size
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from bot.core.units import parse_duration
from bot.core.wording import render

if TYPE_CHECKING:
    from bot.runtime.config import Settings

#: The agent may forward ``--book`` to the bot, which answers within its own request timeout.
ASK_TIMEOUT = 30.0
#: The status a shell gives a command it cannot find.
EXIT_NOT_FOUND = 127


def add_run(commands: Subparsers) -> None:
    run = add_command(
        commands,
        "run",
        "On a GPU host: run a command on the card of your booking under way.",
        run_command,
        description="Run CMD with CUDA_VISIBLE_DEVICES set to the card of your booking under way "
        "on this host (and JAX's and MPS's memory caps set to its memory). Asks the host's "
        "gpubook agent, which knows you by your Unix login.",
    )
    run.add_argument("--gpu", metavar="NAME", help="the GPU to run on, when you have several")
    run.add_argument(
        "--book",
        metavar="SIZE",
        type=argument_type(booking_size),
        help="book SIZE now first (with --for), for the Slack user linked to your login",
    )
    run.add_argument(
        "--for",
        dest="length",
        metavar="DURATION",
        type=argument_type(parse_duration),
        help="how long the booking --book makes lasts, like 2h",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command")


def run_command(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("give the command to run after --, like: gpubook run -- python train.py")
    if (args.book is None) != (args.length is None):
        raise UsageError("--book and --for go together, like --book 8GB --for 2h")
    request: dict[str, Any] = {"ask": "run", "gpu": args.gpu, "command": shlex.join(command)}
    if args.book is not None:
        memory = args.book if isinstance(args.book, str) else f"{args.book}MiB"
        seconds = int(args.length.total_seconds())
        request.update(ask="book", memory=memory, seconds=seconds)
    try:
        answer = ask_agent(settings.agent_socket, request)
    except (OSError, ValueError) as error:
        reason = str(error) or type(error).__name__
        sentence = say(Code.RUN_NO_AGENT, path=Quote(str(settings.agent_socket)), reason=reason)
        print(f"gpubook run: {render(sentence, TerminalText())}", file=sys.stderr)
        return EXIT_REFUSED
    if not answer.get("ok"):
        print(f"gpubook run: {answer.get('reason', 'refused')}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        f"gpubook run: on {answer['gpu']} with {format_size(int(answer['memory_mib']))}, "
        f"until {datetime.fromisoformat(answer['until']).astimezone():%Y-%m-%d %H:%M %Z}",
        file=sys.stderr,
    )
    sys.stderr.flush()
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, {**os.environ, **answer["env"]})
    except OSError as error:  # not found, not executable: as a shell says it
        print(f"gpubook run: {command[0]}: {error.strerror}", file=sys.stderr)
    return EXIT_NOT_FOUND


def ask_agent(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One request to the agent's socket and its one-line JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(ASK_TIMEOUT)
        connection.connect(str(path))
        # The agent may answer before it reads the request (it refuses a caller it cannot name
        # at once) and close: the answer is what counts, so a closed write side is no failure.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(json.dumps(request).encode() + b"\n")
            connection.shutdown(socket.SHUT_WR)
        with connection.makefile("rb") as answer:
            line = answer.readline()
    if not line:
        raise ValueError("the agent closed the connection without an answer")
    found = json.loads(line)
    if not isinstance(found, dict):
        raise ValueError("the agent's answer is not a JSON object")
    return found
