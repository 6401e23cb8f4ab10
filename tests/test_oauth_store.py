"""The installation store of many-workspace mode on gpubook's own database (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from slack_sdk.oauth.installation_store import Installation

from bot.runtime.oauth import InstallationStore
from storage import sqlite_driver
from storage.db import Database


def installation(team_id: str, token: str) -> Installation:
    return Installation(
        app_id="A1", team_id=team_id, bot_token=token, bot_id="B1", user_id="UINSTALLER"
    )


async def test_installs_are_found_per_workspace_and_removed_with_it(db: Database) -> None:
    store = InstallationStore("1111.2222", db)
    await store.async_save(installation("T1", "xoxb-1"))
    await store.async_save(installation("T2", "xoxb-2"))
    found = await store.async_find_bot(enterprise_id=None, team_id="T2")
    assert found is not None and found.bot_token == "xoxb-2"

    await store.async_delete_all(enterprise_id=None, team_id="T2")
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T2") is None
    kept = await store.async_find_installation(enterprise_id=None, team_id="T1")
    assert kept is not None and kept.bot_token == "xoxb-1"


@contextmanager
def sqlite_begins(db: Database) -> Iterator[list[str]]:
    """The ``BEGIN`` statements sent while inside (each with its transaction's first statement)."""
    seen: list[str] = []
    take = sqlite_driver._OneHopConnection.take_begin

    def record(connection: Any) -> str | None:
        begin = take(connection)
        if begin is not None:
            seen.append(begin)
        return begin

    sqlite_driver._OneHopConnection.take_begin = record  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        sqlite_driver._OneHopConnection.take_begin = take  # type: ignore[method-assign]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_lookups_on_every_request_never_take_sqlites_write_lock(db: Database) -> None:
    store = InstallationStore("1111.2222", db)
    with sqlite_begins(db) as begins:
        await store.async_save(installation("T1", "xoxb-1"))
    assert begins and set(begins) == {"BEGIN IMMEDIATE"}  # writes do queue for the lock
    with sqlite_begins(db) as begins:
        assert await store.async_find_bot(enterprise_id=None, team_id="T1") is not None
    assert begins == ["BEGIN"]
