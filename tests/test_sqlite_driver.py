"""The SQLite driver: one hand-off to aiosqlite's thread per statement, with the adapter's results."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import insert, select, text, update

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
    assert hand_offs == {"_run_statement": 4, "commit": 1}  # BEGIN IMMEDIATE, 2 inserts, update
    hand_offs.clear()
    async with sqlite_db.read() as session:
        assert list(await session.scalars(select(Gpu.name).order_by(Gpu.name))) == [
            "rtx-0",
            "rtx-1",
        ]
    assert hand_offs == {"_run_statement": 2, "commit": 1}  # BEGIN, the select


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
