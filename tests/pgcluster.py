"""A private PostgreSQL cluster that a test may stop and start: the database "going away".

The shared server on 5432 serves every other test (and other checkouts), so it is never
restarted. Instead this starts a throwaway cluster with the installed server binaries
(``initdb``/``pg_ctl`` on ``PATH`` or under ``/usr/lib/postgresql/*/bin``) on a free port, in a
temporary directory, with fsync off. Without the binaries the tests that need it skip with the
reason, except under ``CI=true``, which fails them like an unreachable shared server does.

``initdb`` refuses to run as root: as root, the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest

#: Where distributions put the server binaries (newest version first once sorted).
BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin")
SERVER_USER = "postgres"
_databases = itertools.count(1)


def server_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when none is installed."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    for pattern in BIN_GLOBS:
        candidates += sorted(map(Path, glob.glob(pattern)), key=_version, reverse=True)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _version(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", str(path))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateCluster:
    """A PostgreSQL server of the test's own on 127.0.0.1:``port``."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="gpubook-pg-"))
        self.data = self.root / "data"
        self.running = False
        self.user = SERVER_USER if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} {args[:1]} failed: {result.stderr}\n{tail}")

    def init(self) -> None:
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--no-sync", "--no-instructions"),
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c unix_socket_directories={self.root}"
        )
        self._run(
            "pg_ctl",
            *("-D", str(self.data), "-o", options, "-l", str(self.root / "server.log")),
            *("-w", "start"),
        )
        self.running = True

    def stop(self) -> None:
        """Stop at once, as an operator's restart does: sessions are cut, in-flight work aborts."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """A fresh, empty database in this cluster; returns its URL."""
        name = f"gpubook_{next(_databases)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        return self.url(name)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    def remove(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def require_server_binaries() -> Path:
    """The server binaries, or skip (locally) / fail (CI) when none are installed."""
    binaries = server_binaries()
    problem = None
    if binaries is None:
        problem = "no PostgreSQL server binaries (initdb, pg_ctl) are installed"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            problem = f"initdb cannot run as root and there is no {SERVER_USER!r} user"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem + "; CI must run the database-outage tests", pytrace=False)
        pytest.skip(problem)
    assert binaries is not None
    return binaries
