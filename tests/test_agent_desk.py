"""`gpubook run` against the agent's socket: a real Unix socket served in-process, the caller known
by the kernel's peer credentials (this test process's uid, mapped to a login here), and the
command run by a real `gpubook run` process. Time is injected; nothing needs a GPU."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.agent.desk import Desk, login_of
from bot.agent.sender import Booked
from bot.cli.run import ask_agent
from bot.core.clock import FrozenClock
from bot.core.host_bookings import HostBooking, HostBookings, HostCard
from tests.conftest import T0

RTX0 = HostCard("GPU-aaaa-0000", "rtx-0", 24564, 24 * 1024)
RTX1 = HostCard("GPU-bbbb-1111", "rtx-1", 24564, 24 * 1024)
HOUR = timedelta(hours=1)
STALE = timedelta(seconds=45)
#: Prints what `gpubook run` set, as the command it runs sees it.
SHOW_ENV = (
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith(('CUDA_', 'XLA_', 'GPUBOOK_'))}))"
)


def booking(id: int, card: HostCard, login: str, *, gb: int = 8, end=T0 + HOUR) -> HostBooking:
    return HostBooking(id, card.uuid, (login,), gb * 1024, T0 - HOUR, end)


class FakeBot:
    """Answers `--book` as the bot would: records who was booked for, returns the bookings."""

    def __init__(self, answer: Booked) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, int, str | None]] = []

    async def __call__(self, login: str, memory: str, seconds: int, gpu: str | None) -> Booked:
        self.asked.append((login, memory, seconds, gpu))
        return self.answer


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # short: a Unix socket path is limited to ~108 bytes, and pytest's tmp_path can be longer
    folder = Path(tempfile.mkdtemp(prefix="gpb-"))
    yield folder / "run" / "agent.sock"
    shutil.rmtree(folder)


def as_alice(uid: int) -> str:
    """This test process (and its children) are ``alice``; nobody else has a login."""
    if uid == os.getuid():
        return "alice"
    raise KeyError(uid)


@pytest.fixture
async def desk(socket_path: Path, clock: FrozenClock) -> AsyncIterator[Desk]:
    booked = HostBookings((RTX0, RTX1), (booking(9, RTX1, "alice", gb=6),))
    desk = Desk(FakeBot(Booked(True, "booked", 9, booked)), stale_after=STALE, clock=clock)
    desk.user_of = as_alice
    server = await desk.serve(socket_path)
    yield desk
    server.close()
    await server.wait_closed()


async def ask(path: Path, **request: object) -> dict:
    return await asyncio.to_thread(ask_agent, path, dict(request))


async def gpubook_run(path: Path, *args: str) -> tuple[int, str, str]:
    gpubook = Path(sys.executable).with_name("gpubook")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBOOK_", "CUDA_", "XLA_"))}
    process = await asyncio.create_subprocess_exec(
        str(gpubook),
        "run",
        *args,
        env={**env, "GPUBOOK_AGENT_SOCKET": str(path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_login_comes_from_the_password_database() -> None:
    assert login_of(0) == "root"
    with pytest.raises(KeyError):
        login_of(2**31 - 2)


async def test_before_the_bot_answered_and_when_it_stopped_nothing_is_given(
    desk: Desk, socket_path: Path, clock: FrozenClock
) -> None:
    answer = await ask(socket_path, ask="run")
    assert answer["ok"] is False and "has not heard from the bot yet" in answer["reason"]
    desk.learn(HostBookings((RTX0,), (booking(1, RTX0, "alice"),)))
    assert (await ask(socket_path, ask="run"))["ok"] is True
    clock.advance(STALE + timedelta(seconds=1))
    answer = await ask(socket_path, ask="run")
    assert answer["ok"] is False
    assert "has not heard from the bot since" in answer["reason"]


async def test_the_caller_is_who_the_socket_says_not_who_the_request_claims(
    desk: Desk, socket_path: Path
) -> None:
    desk.learn(HostBookings((RTX0,), (booking(1, RTX0, "bob"),)))
    answer = await ask(socket_path, ask="run", login="bob", user="bob")
    assert answer["ok"] is False and "(login alice)" in answer["reason"]
    desk.user_of = lambda uid: (_ for _ in ()).throw(KeyError(uid))
    answer = await ask(socket_path, ask="run")
    assert answer == {"ok": False, "reason": f"uid {os.getuid()} has no login on this host"}
    # That refusal comes before the request is read: a request larger than the socket's buffer
    # meets a closed connection while it is sent, and the answer is still read.
    answer = await ask(socket_path, ask="run", padding="x" * 4_000_000)
    assert answer == {"ok": False, "reason": f"uid {os.getuid()} has no login on this host"}


async def test_an_ended_booking_is_refused_by_the_agents_own_clock(
    desk: Desk, socket_path: Path, clock: FrozenClock
) -> None:
    desk.learn(HostBookings((RTX0,), (booking(1, RTX0, "alice", end=T0 + timedelta(seconds=10)),)))
    assert (await ask(socket_path, ask="run"))["ok"] is True
    clock.advance(timedelta(seconds=10))  # the bot has not said anything new: the booking ended
    answer = await ask(socket_path, ask="run")
    assert answer["ok"] is False and "No booking of yours" in answer["reason"]


async def test_two_bookings_need_gpu_which_chooses(desk: Desk, socket_path: Path) -> None:
    desk.learn(HostBookings((RTX0, RTX1), (booking(1, RTX0, "alice"), booking(2, RTX1, "alice"))))
    answer = await ask(socket_path, ask="run")
    assert answer["ok"] is False and "choose one with" in answer["reason"]
    answer = await ask(socket_path, ask="run", gpu="rtx-1")
    assert answer["ok"] is True and answer["env"]["CUDA_VISIBLE_DEVICES"] == RTX1.uuid
    assert answer["gpu"] == "rtx-1" and answer["memory_mib"] == 8192


@pytest.mark.parametrize("line", [b"not json", b"[" * 50_000], ids=["garbage", "deeply nested"])
async def test_a_malformed_request_is_answered_not_dropped(
    desk: Desk, socket_path: Path, line: bytes
) -> None:
    assert (await ask(socket_path, ask="format-disk"))["reason"] == "ask for run or book"
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(line + b"\n")
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    assert answer["ok"] is False and answer["reason"].startswith("the request is not JSON")


@pytest.mark.slow
async def test_gpubook_run_sets_the_card_and_caps_and_passes_the_exit_code_through(
    desk: Desk, socket_path: Path
) -> None:
    desk.learn(HostBookings((RTX0,), (booking(1, RTX0, "alice", gb=12), booking(2, RTX0, "bob"))))
    code, out, err = await gpubook_run(socket_path, "--", sys.executable, "-c", SHOW_ENV)
    assert code == 0, err
    env = json.loads(out)
    assert env == {
        "CUDA_VISIBLE_DEVICES": RTX0.uuid,
        "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.500",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=12288M",
        "GPUBOOK_AGENT_SOCKET": str(socket_path),
        "GPUBOOK_GPU": "rtx-0",
        "GPUBOOK_BOOKING": "1",
        "GPUBOOK_MEMORY_MIB": "12288",
        "GPUBOOK_MEMORY_FRACTION": "0.5002",
        "GPUBOOK_UNTIL": (T0 + HOUR).isoformat(),
    }
    assert err.startswith("gpubook run: on rtx-0 with 12 GB, until ")
    code, _, _ = await gpubook_run(socket_path, "--", sys.executable, "-c", "raise SystemExit(7)")
    assert code == 7
    code, _, err = await gpubook_run(socket_path, "--", "no-such-command-here")
    assert code == 127 and "no-such-command-here: No such file or directory" in err


@pytest.mark.slow
async def test_gpubook_run_refuses_with_the_reason_and_runs_nothing(
    desk: Desk, socket_path: Path
) -> None:
    desk.learn(HostBookings((RTX0,), (booking(2, RTX0, "bob", gb=20),)))
    code, out, err = await gpubook_run(socket_path, "--", "touch", "/nonexistent/ran")
    assert (code, out) == (1, "")
    assert err.startswith("gpubook run: No booking of yours (login alice) is under way")
    assert "4 GB is free on rtx-0 now" in err
    assert "'gpubook run --gpu rtx-0 --book 4GB --for 2h -- touch /nonexistent/ran'" in err
    missing = socket_path.with_name("other.sock")
    code, _, err = await gpubook_run(missing, "--", "true")
    assert code == 1 and f"No gpubook agent answers at {missing}" in err
    code, _, err = await gpubook_run(socket_path, "--book", "8GB", "--", "true")
    assert code == 2 and "--book and --for go together" in err


@pytest.mark.slow
async def test_gpubook_run_book_books_for_the_caller_then_runs(
    desk: Desk, socket_path: Path
) -> None:
    desk.learn(HostBookings((RTX0, RTX1), ()))
    code, out, err = await gpubook_run(
        socket_path, "--book", "6GB", "--for", "2h", "--", sys.executable, "-c", SHOW_ENV
    )
    assert code == 0, err
    assert json.loads(out)["CUDA_VISIBLE_DEVICES"] == RTX1.uuid
    assert desk.book.asked == [("alice", "6144MiB", 7200, None)]  # type: ignore[union-attr]


async def test_a_refused_booking_says_the_bots_reason(desk: Desk, socket_path: Path) -> None:
    desk.learn(HostBookings((RTX0,), ()))
    desk.book = FakeBot(Booked(False, "No GPU has 90 GB: the largest is rtx-0 with 24 GB."))
    answer = await ask(socket_path, ask="book", memory="90GB", seconds=3600, gpu=None)
    assert answer == {"ok": False, "reason": "No GPU has 90 GB: the largest is rtx-0 with 24 GB."}
    answer = await ask(socket_path, ask="book", memory="8GB")
    assert answer == {"ok": False, "reason": "a booking needs memory and seconds"}


async def test_after_booking_it_runs_on_the_new_bookings_card(
    desk: Desk, socket_path: Path
) -> None:
    desk.learn(HostBookings((RTX0, RTX1), (booking(1, RTX0, "alice"),)))
    both = HostBookings((RTX0, RTX1), (booking(1, RTX0, "alice"), booking(9, RTX1, "alice")))
    desk.book = FakeBot(Booked(True, "booked", 9, both))
    answer = await ask(socket_path, ask="book", memory="8GB", seconds=3600, gpu=None)
    assert answer["ok"] is True and answer["env"]["CUDA_VISIBLE_DEVICES"] == RTX1.uuid
    assert answer["env"]["GPUBOOK_BOOKING"] == "9"
