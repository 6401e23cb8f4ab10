"""The real ``gpubook console`` typed into through a pseudo-terminal, as a person would use it:
readline prompts, ANSI output, Ctrl-D — and, slow, the README's first command in a fresh clone.

Expect-style: every step waits for the output it needs (with a timeout), never a fixed sleep.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPUBOOK = Path(sys.executable).parent / "gpubook"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
PROMPT = "gpubook (tester)> "
CTRL_D = b"\x04"


class Pty:
    """A child process on a pseudo-terminal, with expect-style reads of its screen."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.seen = ""  # everything shown so far, ANSI codes removed
        self._pos = 0  # where the next expect starts looking

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def line(self, text: str) -> None:
        self.send(text.encode() + b"\r")

    def expect(self, pattern: str, timeout: float = 60) -> str:
        """Wait until ``pattern`` (a regex) shows after the last match; return what came since."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.seen, self._pos)
            if match:
                shown, self._pos = self.seen[self._pos : match.end()], match.end()
                return shown
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {pattern!r} within {timeout}s; screen:\n{self.seen}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.seen += ANSI.sub("", chunk.decode(errors="replace"))
        return bool(chunk)

    def wait(self, timeout: float = 60) -> int:
        while self._read(0.1):  # drain, so the child never blocks on a full terminal
            pass
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


def console_env(home: Path) -> dict[str, str]:
    """A clean environment: no DATABASE_URL (the default file in the working directory), a
    home of its own (for the history file), a known zone and a terminal that takes colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GPUBOOK_"))}
    env.update(HOME=str(home), TZ="Europe/Berlin", TERM="xterm", LC_ALL="C.UTF-8")
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    return tmp_path


@pytest.fixture
def spawn() -> Iterator:
    children: list[Pty] = []

    def start(argv: list[str], cwd: Path, env: dict[str, str]) -> Pty:
        child = Pty(argv, cwd, env)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def try_everything(term: Pty, startup: float = 60, prompt: str = PROMPT) -> int:
    """The acceptance session: list the demo GPUs, book, see the calendar, cancel, Ctrl-D.
    Returns the id of the booking made and cancelled.

    The demo's simulated agent runs meanwhile, so its DMs (with buttons of their own) may show up
    between any two prompts: ids and button numbers are read, not assumed."""
    term.expect(r"Added demo GPUs: rtx-0 \(24GB\)", timeout=startup)
    term.expect(r"A simulated agent on demo-host reports every 5 s")
    term.expect("you are @tester, in Europe/Berlin")
    term.expect(re.escape(prompt))
    term.line("status")
    shown = term.expect(re.escape(prompt))
    for gpu in ("rtx-0", "rtx-1", "a100-1", "a100-2"):
        assert gpu in shown
    term.line("book rtx-0 8GB tomorrow 9am for 2h pty test")
    shown = term.expect(re.escape(prompt))
    booked = re.search(r"#(\d+) · rtx-0 · 8 GB", shown)
    assert "✅ Booked" in shown and booked is not None and "09:00 – 11:00" in shown
    assert re.search(r"\[\d+\] Extend 1 h  \[\d+\] Cancel  \[\d+\] Edit", shown)
    term.line("calendar rtx-0 tomorrow")
    shown = term.expect(re.escape(prompt))
    assert "09:00 ▓▓▓▓▓▓▓░░░░░░░░░░░░░ 8/24 GB" in shown, "hours in the local zone (TZ)"
    term.line(f"/gpubook cancel {booked[1]}")
    shown = term.expect(re.escape(prompt))
    assert "✅ Cancelled" in shown and "🚫 cancelled" in shown
    term.send(CTRL_D)
    return int(booked[1])


def test_console_in_a_terminal(workdir: Path, spawn) -> None:
    env = console_env(workdir / "home")
    argv = [str(GPUBOOK), "console", "--demo", "--as", "tester"]
    term = spawn(argv, workdir / "work", env)
    booking = try_everything(term)
    assert term.wait() == 0
    assert (workdir / "work" / "gpubook.db").is_file(), "the default database is in the cwd"
    history = (workdir / "home" / ".gpubook_history").read_text()
    assert "book rtx-0 8GB tomorrow 9am for 2h pty test" in history

    # A second session: same database (no demo GPUs added again), history recalled with ↑.
    term = spawn(argv, workdir / "work", env)
    term.expect(re.escape(PROMPT))
    assert "Added demo GPUs" not in term.seen
    term.send(b"\x1b[A\r")  # up arrow: the last line typed, `/gpubook cancel N`
    shown = term.expect(re.escape(PROMPT))
    assert f"/gpubook cancel {booking}\n" in shown
    assert (
        f"❌ Booking #{booking} has already been cancelled, so there is nothing left to cancel."
        in shown
    )
    term.send(CTRL_D)
    assert term.wait() == 0


@pytest.mark.slow
def test_readme_first_command_in_a_fresh_clone(workdir: Path, spawn) -> None:
    """Clone the repository at HEAD, run `./dev console` (which creates .venv and installs the
    project with pip as the README says) and try everything through the terminal."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    readme = (clone / "README.md").read_text()
    assert "`./dev console`" in readme
    term = spawn(["./dev", "console", "--as", "tester"], clone, console_env(workdir / "home"))
    try_everything(term, startup=300)  # a fresh .venv is created and installed first
    assert term.wait() == 0
    assert (clone / ".venv" / "bin" / "gpubook").is_file()
    assert (clone / "gpubook.db").is_file()
