"""The one request pipeline, seen from Slack: what every listener kind shares."""

from __future__ import annotations

import pytest

from handlers import ids
from handlers.context import APOLOGY
from tests.e2e.conftest import Bot, dump


async def _broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("bug")


async def test_a_crash_in_a_command_becomes_the_apology(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.add_gpu()
    monkeypatch.setattr(bot.service, "status", _broken)
    reply = await bot.command("status")
    assert reply.params["text"] == APOLOGY and "bug" not in dump(reply)
    assert "listener failed" in caplog.text


async def test_a_crash_in_a_button_becomes_the_apology(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.add_gpu()
    await bot.open_home()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    await bot.fake.wait_for("views.publish", count=2)  # opened, then rebuilt after the booking
    [booking] = await bot.bookings()
    monkeypatch.setattr(bot.service, "extend", _broken)
    reply = await bot.click(ids.EXTEND, str(booking.id))
    assert reply.params["text"] == APOLOGY
    # Nothing changed, so no App Home is published again.
    await bot.deps.homes.drain()
    assert len(bot.fake.calls_to("views.publish")) == 2
