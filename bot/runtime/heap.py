"""Handing the heap's free pages back to the OS every few seconds, so a long serve stays small.

The soak (``bench/soak.py``, issue 12) showed `gpubook serve`'s resident size rising 1–2 MiB a
minute for as long as requests came, while the memory actually in use stayed flat (glibc's
``mallinfo2`` in-use bytes, pymalloc's allocated blocks, Python's objects). What grew was glibc's
main heap: chunks freed after each request that malloc keeps for later, holding on to their pages;
it only returns memory at the heap's top on its own. ``malloc_trim(0)`` gives back every whole free
page inside those chunks (``madvise``), the rest of the heap untouched; a page used again later
just faults in afresh. Called every ten seconds (each call gave back 150–450 KiB at 10 requests/s)
it kept RSS flat after warm-up where it had grown ~1 MiB a minute (``bench/README.md``, soak); a
call costs well under a millisecond of CPU.

The serve process runs a single thread (asyncio, no executor in use), so glibc's per-thread arenas
and ``MALLOC_ARENA_MAX`` change nothing here. Off glibc (musl, macOS) there is no ``malloc_trim``
and this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Seconds between trims: what the heap holds on to meanwhile is at most this long's freed pages.
TRIM_SECONDS = 10.0


def heap_trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` as a function (1 if it released memory), or None where the C
    library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return functools.partial(trim, 0)


async def trim_heap_every(
    seconds: float,
    trim: Callable[[], int],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Trim the heap every ``seconds`` until cancelled (at shutdown)."""
    while True:
        await sleep(seconds)
        trim()


def start_heap_trimming(seconds: float = TRIM_SECONDS) -> asyncio.Task[None] | None:
    """The task trimming the heap every ``seconds`` (None without ``malloc_trim``)."""
    trim = heap_trimmer()
    if trim is None:
        log.info("no malloc_trim in this C library: freed heap pages stay with the process")
        return None
    return asyncio.create_task(trim_heap_every(seconds, trim), name="heap-trim")
