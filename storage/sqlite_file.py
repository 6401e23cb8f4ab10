"""A SQLite database's file, outside any engine: its online backup, and whether its write lock can
be taken (the health check's question: a file still answers reads while another process holds
its write lock). Blocking calls, which :class:`storage.db.Database` runs on a thread."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def sqlite_backup(source: Path, target: Path) -> None:
    """Copy the database ``source`` to ``target`` with SQLite's online backup API.

    ``target`` is created first, exclusively: it is never overwritten (not even by a race), and a
    missing folder or a permission fails with the ``OSError`` that names the file, where
    SQLite would only say "unable to open database file". A failed copy leaves no file."""
    with open(target, "xb"):
        pass
    try:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def sqlite_write_probe(path: Path, timeout: float) -> None:
    """Take and release the write lock of an existing SQLite file (never creating one)."""
    uri = f"{path.resolve().as_uri()}?mode=rw"
    with closing(sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
