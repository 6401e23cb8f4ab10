"""Helper programs the tests run as separate OS processes (``python -m tests.procs.NAME``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


#: How long a group of helper processes may take, start to finish.
GROUP_SECONDS = 300


async def run_together(module: str, argv_per_process: Sequence[Sequence[str]]) -> list[Any]:
    """Run ``python -m tests.procs.<module>`` once per argument list and release them together.

    Each process prints ``ready`` once set up, then waits for ``go`` on stdin, so their work
    truly overlaps; each prints one JSON document, returned in order.
    """
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"tests.procs.{module}",
            *argv,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for argv in argv_per_process
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line != b"ready\n":
            _, err = await proc.communicate()
            pytest.fail(f"{module} process did not start: {line!r} {err.decode()}")
    results = await asyncio.wait_for(
        asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), GROUP_SECONDS
    )
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    return [json.loads(out) for out, _ in results]
