"""Every `/gpubook` subcommand through the real HTTP endpoint, answered through response_url."""

from __future__ import annotations

from tests.e2e.conftest import Bot, dump


async def test_status_lists_every_gpu(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    reply = await bot.command("status")
    assert reply.params["response_type"] == "ephemeral"
    assert "rtx-0" in dump(reply) and "a100-1" in dump(reply)


async def test_book_complete_confirms_with_buttons(bot: Bot) -> None:
    await bot.add_gpu()
    reply = await bot.command("book rtx-0 10GB 10:00 for 2h fine-tune")
    assert "Booked #1" in reply.params["text"], dump(reply)
    assert "booking_extend" in dump(reply) and "fine-tune" in dump(reply)
    [booking] = await bot.bookings()
    assert (booking.user_id, booking.memory_mib, booking.gpu_name) == ("UA", 10240, "rtx-0")
    await bot.fake.wait_for("views.publish", predicate=lambda c: c.params["user_id"] == "UA")
