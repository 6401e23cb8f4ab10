"""`gpubook serve` as a real OS process: a replica the tests (and the soak bench) can SIGKILL.

The process gets its settings only from the environment given here (nothing inherited from the
caller's ``GPUBOOK_*``/``SLACK_*``/``DATABASE_URL``, and a working directory without a ``.env``),
listens on ``HOST``:``PORT`` and logs its JSON lines to a file, read back when it fails to start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
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
    workdir = Path(tempfile.mkdtemp(prefix="gpubook-serve-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env.update(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
            **settings,
            "HOST": host,
            "PORT": str(port),
            "PYTHONPATH": str(REPO),
        }
    )
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",  # `gpubook serve`
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    replica = Replica(proc, f"http://{host}:{port}", log)
    try:
        await replica.wait_healthy()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return replica
