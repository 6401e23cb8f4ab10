"""``gpubook agent``: run the agent on a GPU host, or check what it reads (``--once --print``).

Settings: ``GPUBOOK_AGENT_URL`` (the bot), ``GPUBOOK_AGENT_TOKEN`` (this host's token, from
``gpubook agent token create HOST``) and ``GPUBOOK_AGENT_INTERVAL``. While it runs, it answers
``gpubook run`` on ``GPUBOOK_AGENT_SOCKET`` (:mod:`bot.agent.desk`). Without NVML (no driver) it
exits with one sentence, unless told to use the stand-in probe (``--probe standin``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.agent.desk import Desk, make_room
from bot.agent.nvml import NvmlMissing, NvmlProbe
from bot.agent.sender import AgentLoop, Probe, Sender, reading
from bot.agent.standin import StandinProbe
from bot.cli.registry import EXIT_OK, EXIT_REFUSED, UsageError
from bot.core.clock import Clock

if TYPE_CHECKING:
    from bot.runtime.config import Settings

NVML, STANDIN = "nvml", "standin"
log = logging.getLogger("gpubook.agent")


def add_agent_options(agent: argparse.ArgumentParser) -> None:
    """``gpubook agent``'s own options (its token and devices actions are added beside them)."""
    agent.set_defaults(handler=run_agent, command_parser=agent)
    agent.add_argument("--once", action="store_true", help="take one reading and exit")
    agent.add_argument(
        "--print",
        action="store_true",
        help="print the report as JSON (with --once and no GPUBOOK_AGENT_URL, nothing is sent)",
    )
    agent.add_argument(
        "--probe",
        choices=(NVML, STANDIN),
        default=NVML,
        help="read the cards through NVML (default) or report stand-in cards (no GPU needed)",
    )
    agent.add_argument(
        "--standin",
        type=Path,
        metavar="FILE",
        help="with --probe standin: report the devices this JSON file lists (re-read each time)",
    )
    agent.add_argument(
        "--host", help="the host name to report as (default: this machine's; must match the token)"
    )


def run_agent(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
    host = args.host or socket.gethostname().split(".")[0]
    send = not (args.once and args.print and settings.agent_url is None)
    if send and (settings.agent_url is None or settings.agent_token is None):
        raise UsageError(
            "set GPUBOOK_AGENT_URL (the bot's URL) and GPUBOOK_AGENT_TOKEN (this host's token, "
            "from `gpubook agent token create HOST`); or check the reading with --once --print"
        )
    probe: Probe = StandinProbe(host, args.standin) if args.probe == STANDIN else _nvml()
    try:
        probe.open()
    except (NvmlMissing, OSError) as error:
        print(f"gpubook agent: {error}.", file=sys.stderr)
        return EXIT_REFUSED
    try:
        if args.once:
            return asyncio.run(_once(probe, host, settings, clock, send=send, show=args.print))
        from bot.runtime.logs import configure

        configure(settings.log_level)
        assert settings.agent_url is not None and settings.agent_token is not None
        sender = Sender(settings.agent_url, settings.agent_token)
        desk = Desk(sender.book, stale_after=settings.usage.silent_after, clock=clock)
        loop = AgentLoop(
            probe, sender, host, settings.usage.agent_interval, clock=clock, learn=desk.learn
        )
        asyncio.run(_forever(loop, sender, desk, settings.agent_socket))
        return EXIT_OK
    finally:
        probe.close()


def _nvml() -> Probe:
    try:
        return NvmlProbe()
    except NvmlMissing as error:
        print(f"gpubook agent: {error}.", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED) from None


async def _once(
    probe: Probe, host: str, settings: Settings, clock: Clock, *, send: bool, show: bool
) -> int:
    try:
        report = reading(probe, host, clock)
    except Exception as error:  # an NVML failure is a sentence, never a traceback
        print(f"gpubook agent: cannot read the cards ({error}).", file=sys.stderr)
        return EXIT_REFUSED
    if show:
        print(json.dumps(report.to_json(), indent=2))
    if not send:
        return EXIT_OK
    assert settings.agent_url is not None and settings.agent_token is not None
    sender = Sender(settings.agent_url, settings.agent_token)
    try:
        delivery = await sender.send(report)
    finally:
        await sender.close()
    print(f"gpubook agent: {delivery.detail}.", file=sys.stdout if delivery.ok else sys.stderr)
    return EXIT_OK if delivery.ok else EXIT_REFUSED


async def _forever(loop: AgentLoop, sender: Sender, desk: Desk, socket_path: Path) -> None:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            running.add_signal_handler(sig, stop.set)
    server = await _listen(desk, socket_path)
    try:
        await loop.run(stop)
    finally:
        if server is not None:
            server.close()
            make_room(socket_path)
        await sender.close()


async def _listen(desk: Desk, path: Path) -> asyncio.Server | None:
    """The socket for ``gpubook run``; without it (no right to create it) the agent still
    reports, and says once why ``gpubook run`` cannot ask it."""
    try:
        server = await desk.serve(path)
    except OSError as error:
        log.warning("gpubook run cannot ask this agent: cannot listen on %s (%s)", path, error)
        return None
    log.info("answering gpubook run on %s", path)
    return server
