"""The SQLite driver: one hand-off to aiosqlite's thread per statement, with the adapter's results."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import bindparam, insert, select, text, update

from storage.db import Database
from storage.migrate import upgrade
from storage.models import Gpu
from tests.conftest import T0


@pytest.fixture
async def sqlite_db(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'gpubook.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """What is run on aiosqlite's thread, by name, from now on."""
    seen: Counter[str] = Counter()
    queue = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        seen[getattr(fn, "__name__", repr(fn))] += 1
        return await queue(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


def _gpu(name: str) -> dict:
    return {"team_id": "T", "name": name, "capacity_mib": 1024, "created_at": T0, "updated_at": T0}


async def test_each_statement_is_one_hand_off_with_its_rows_ids_and_counts(
    sqlite_db: Database, hand_offs: Counter[str]
) -> None:
    async with sqlite_db.write() as session:
        added = await session.execute(insert(Gpu).values(**_gpu("rtx-0")))
        assert added.inserted_primary_key[0] >= 1  # lastrowid came back
        await session.execute(insert(Gpu).values(**_gpu("rtx-1")))
        changed = await session.execute(update(Gpu).values(description="x"))
        assert changed.rowcount == 2
    # BEGIN IMMEDIATE goes with the first insert: 2 inserts, the update, the commit.
    assert hand_offs == {"_run_statement": 3, "commit": 1}
    hand_offs.clear()
    async with sqlite_db.read() as session:
        assert list(await session.scalars(select(Gpu.name).order_by(Gpu.name))) == [
            "rtx-0",
            "rtx-1",
        ]
    assert hand_offs == {"_run_statement": 1, "commit": 1}  # BEGIN with the select


async def test_a_failing_statement_raises_the_drivers_error_and_rolls_back(
    sqlite_db: Database, hand_offs: Counter[str]
) -> None:
    with pytest.raises(Exception, match="no such table"):
        async with sqlite_db.write() as session:
            await session.execute(insert(Gpu).values(**_gpu("rtx-0")))
            await session.execute(text("SELECT * FROM nowhere"))
    assert hand_offs["rollback"] == 1  # the transaction was open, so it was rolled back
    async with sqlite_db.read() as session:
        assert list(await session.scalars(select(Gpu))) == []


async def test_a_transaction_that_runs_nothing_costs_no_hand_off(
    sqlite_db: Database, hand_offs: Counter[str]
) -> None:
    async with sqlite_db.write():
        pass
    async with sqlite_db.read():
        pass
    assert not hand_offs


async def test_the_write_lock_is_taken_with_the_first_statement(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """BEGIN IMMEDIATE rides with the first statement, even a read: from then on another
    process cannot write, exactly as when it was a statement of its own."""
    other = sqlite3.connect(tmp_path / "gpubook.db", timeout=0, isolation_level=None)
    try:
        async with sqlite_db.write() as session:
            await session.execute(select(Gpu.id))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released by the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_many_rows_in_one_statement_are_one_hand_off_inside_the_transaction(
    sqlite_db: Database, hand_offs: Counter[str], tmp_path: Path
) -> None:
    """executemany carries the BEGIN too, takes the write lock with it, and rolls back with the
    rest of its transaction."""
    other = sqlite3.connect(tmp_path / "gpubook.db", timeout=0, isolation_level=None)
    try:
        with pytest.raises(RuntimeError):
            async with sqlite_db.write() as session:
                await session.execute(insert(Gpu), [_gpu("rtx-0"), _gpu("rtx-1")])
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                raise RuntimeError("changed my mind")
    finally:
        other.close()
    assert hand_offs == {"_run_many": 1, "rollback": 1}
    async with sqlite_db.read() as session:
        assert list(await session.scalars(select(Gpu))) == []  # rolled back with the rest
    hand_offs.clear()
    async with sqlite_db.write() as session:
        gpus = Gpu.__table__
        changed = await (await session.connection()).execute(
            update(gpus).where(gpus.c.name == bindparam("old")).values(description="x"),
            [{"old": "rtx-0"}, {"old": "nowhere"}],
        )
        assert changed.rowcount == 0  # none yet
        await session.execute(insert(Gpu), [_gpu("rtx-0"), _gpu("rtx-1")])
    assert hand_offs == {"_run_many": 2, "commit": 1}
    async with sqlite_db.read() as session:
        assert len(list(await session.scalars(select(Gpu)))) == 2


async def test_an_on_loop_transaction_hands_off_its_first_statement_and_its_commit_only(
    sqlite_db: Database, hand_offs: Counter[str], tmp_path: Path
) -> None:
    """After the BEGIN IMMEDIATE (and the first statement with it, on aiosqlite's thread, where
    it may wait for another process), the statements run on the loop's thread — every one a
    transaction of that process still, the write lock held until the commit."""
    other = sqlite3.connect(tmp_path / "gpubook.db", timeout=0, isolation_level=None)
    gpus = Gpu.__table__
    try:
        async with sqlite_db.write(on_loop=True) as session:
            conn = await session.connection()
            await conn.execute(insert(gpus).values(**_gpu("rtx-0")))
            await conn.execute(insert(gpus), [_gpu("rtx-1"), _gpu("rtx-2")])
            changed = await conn.execute(update(gpus).values(description="x"))
            assert changed.rowcount == 3
            assert len((await conn.execute(select(gpus.c.id))).all()) == 3
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        assert hand_offs == {"_run_statement": 1, "commit": 1}
        hand_offs.clear()
        async with sqlite_db.write() as session:  # the next transaction hands off as before
            await session.execute(update(Gpu).values(description="y"))
            await session.execute(update(Gpu).values(description="z"))
        assert hand_offs == {"_run_statement": 2, "commit": 1}
    finally:
        other.close()


async def test_a_failing_statement_on_the_loop_rolls_its_transaction_back(
    sqlite_db: Database, hand_offs: Counter[str]
) -> None:
    with pytest.raises(Exception, match="UNIQUE"):
        async with sqlite_db.write(on_loop=True) as session:
            await session.execute(insert(Gpu).values(**_gpu("rtx-0")))
            await session.execute(insert(Gpu).values(**_gpu("rtx-1")))
            await session.execute(insert(Gpu).values(**_gpu("rtx-0")))  # the same name
    assert hand_offs == {"_run_statement": 1, "rollback": 1}
    async with sqlite_db.read() as session:
        assert list(await session.scalars(select(Gpu))) == []
