"""`gpubook serve` as a real OS process: a replica the tests (and the soak bench) can SIGKILL;
and `gpubook agent` beside it, reporting stand-in cards to it.

Each process gets its settings only from the environment given here (nothing inherited from the
caller's ``GPUBOOK_*``/``SLACK_*``/``DATABASE_URL``, and a working directory without a ``.env``)
and logs to a file, read back when it fails. A replica listens on ``HOST``:``PORT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.procs import REPO
from tests.slackfake.requests import DEFAULT_SIGNING_SECRET

#: How long a replica may take to migrate and answer /healthz.
START_SECONDS = 60.0
_OWN = ("GPUBOOK_", "SLACK_", "DATABASE_URL", "HOST", "PORT")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Replica:
    """One running `gpubook serve`; ``url`` is its base (``http://HOST:PORT``)."""

    proc: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def healthy(self) -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{self.url}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def wait_healthy(self, within: float = START_SECONDS) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await self.healthy():
            if self.proc.returncode is not None or loop.time() > deadline:
                raise RuntimeError(
                    f"gpubook serve did not come up:\n{self.log.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no drain, whatever was in flight is cut."""
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM and wait: the clean shutdown of a rolling deploy."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()


async def start_replica(
    settings: Mapping[str, str], *, host: str = "127.0.0.1", port: int | None = None
) -> Replica:
    """Start `gpubook serve` over HTTP with ``settings`` (DATABASE_URL, SLACK_API_URL, …) and
    wait until it is healthy; the signing secret and bot token default to the tests' own."""
    port = port or free_port(host)
    own = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
        **settings,
        "HOST": host,
        "PORT": str(port),
    }
    proc, log = await _spawn("serve", ["-m", "bot"], own)  # `python -m bot` is `gpubook serve`
    replica = Replica(proc, f"http://{host}:{port}", log)
    try:
        await replica.wait_healthy()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return replica


async def _spawn(
    name: str, argv: Sequence[str], settings: Mapping[str, str]
) -> tuple[asyncio.subprocess.Process, Path]:
    """``python ARGV`` in a fresh directory with only ``settings`` of gpubook's own variables;
    its stdout and stderr go to ``NAME.log`` there."""
    workdir = Path(tempfile.mkdtemp(prefix=f"gpubook-{name}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env.update({**settings, "PYTHONPATH": str(REPO)})
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    return proc, log


@dataclass
class Agent:
    """One running `gpubook agent --probe standin`: it re-reads ``standin`` before each report."""

    proc: asyncio.subprocess.Process
    standin: Path
    log: Path

    def cards(self, devices: Sequence[Mapping[str, object]]) -> None:
        """What the next reports say: the contract's ``devices`` list."""
        _write_cards(self.standin, devices)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()


async def start_agent(
    url: str,
    token: str,
    host: str,
    devices: Sequence[Mapping[str, object]],
    *,
    interval: str = "1s",
) -> Agent:
    """Start `gpubook agent` reporting ``devices`` (change them with :meth:`Agent.cards`) as
    ``host`` to the bot at ``url`` every ``interval``."""
    standin = Path(tempfile.mkdtemp(prefix="gpubook-standin-")) / "cards.json"
    _write_cards(standin, devices)
    settings = {
        "GPUBOOK_AGENT_URL": url,
        "GPUBOOK_AGENT_TOKEN": token,
        "GPUBOOK_AGENT_INTERVAL": interval,
    }
    argv = ["-m", "bot.cli.main", "agent", "--probe", "standin", "--standin", str(standin)]
    proc, log = await _spawn("agent", [*argv, "--host", host], settings)
    return Agent(proc, standin, log)


def _write_cards(path: Path, devices: Sequence[Mapping[str, object]]) -> None:
    """Written whole, then renamed over the old file, so the agent never reads half of it."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(list(devices)), encoding="utf-8")
    partial.replace(path)
