"""Every `/gpubook` subcommand through the real HTTP endpoint, answered through response_url."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.clock import FrozenClock
from bot.core.errors import CapacityError, GpubookError
from bot.core.vocabulary import BookingStatus
from handlers import ids
from handlers.command_parser import EXAMPLES
from handlers.context import UTC_NOTE
from tests.conftest import ADMIN, at
from tests.e2e.conftest import Bot, dump


async def test_status_lists_every_gpu(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    reply = await bot.command("status")
    assert reply.params["response_type"] == "ephemeral"
    assert "rtx-0" in dump(reply) and "a100-1" in dump(reply)


async def test_book_complete_confirms_with_buttons(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.open_home("UA")
    reply = await bot.command("book rtx-0 10GB 10:00 for 2h fine-tune")
    assert reply.params["text"].startswith("Booked #1: 10 GB on rtx-0, 10:00–12:00 UTC")
    assert "booking_extend" in dump(reply) and "fine-tune" in dump(reply)
    [booking] = await bot.bookings()
    assert (booking.user_id, booking.memory_mib, booking.gpu_name) == ("UA", 10240, "rtx-0")
    assert (booking.start, booking.end) == (at(10), at(12))
    # The open Home is rebuilt after the booking.
    [*_, home] = await bot.fake.wait_for(
        "views.publish", count=2, predicate=lambda c: c.params["user_id"] == "UA"
    )
    assert "fine-tune" in dump(home)


async def test_book_reads_times_in_the_users_zone(bot: Bot) -> None:
    await bot.add_gpu()
    bot.fake.set_user("UA", tz="Europe/Berlin")
    reply = await bot.command("book rtx-0 50% 10:00 until 11:30 eval")
    assert "CET" in reply.params["text"] and UTC_NOTE not in dump(reply)
    [booking] = await bot.bookings()
    assert (booking.start, booking.end, booking.memory_mib) == (at(9), at(10, 30), 12 * 1024)


async def test_times_read_in_utc_say_so_when_slack_gives_no_zone(bot: Bot) -> None:
    await bot.add_gpu()
    bot.fake.set_user("UA", tz="Europe/Berlin")
    bot.fake.fail_next("users.info", status=500, times=5)
    booked = await bot.command("book rtx-0 4GB 10:00 for 1h job")
    assert booked.params["blocks"][-1]["elements"][0]["text"] == UTC_NOTE
    [booking] = await bot.bookings()
    assert booking.start == at(10)  # 10:00 UTC, not 10:00 in Berlin
    assert UTC_NOTE in dump(await bot.command("calendar rtx-0"))
    refused = await bot.command("book rtx-0 4GB 07:00 for 1h job")
    assert "Times read in UTC" in dump(refused)
    # Answers that show no times in the user's zone need no such line.
    assert UTC_NOTE not in dump(await bot.command("status"))


async def test_a_start_in_the_dst_gap_is_said_in_the_confirmation(
    bot: Bot, clock: FrozenClock
) -> None:
    await bot.add_gpu()
    bot.fake.set_user("UA", tz="Europe/Berlin")
    clock.set(datetime(2026, 3, 27, 12, 0, tzinfo=UTC))  # Friday; Berlin skips 02:00 on Sunday
    reply = await bot.command("book rtx-0 4GB sun 2:30 for 1h job")
    assert reply.params["text"].startswith("Booked #1")
    assert reply.params["blocks"][-1]["elements"][0]["text"] == (
        "`02:30` does not exist on Sun 29 Mar 2026 in Europe/Berlin (the clocks go forward), "
        "so it was read as 03:30 CEST."
    )
    [booking] = await bot.bookings()
    assert booking.start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("deps_options", [{"lookup_timeout": 0}])
async def test_only_forms_cut_the_wait_for_the_users_zone(bot: Bot) -> None:
    """A form must open before its trigger_id expires, so it does not wait for users.info; a
    reply through the response_url does, and reads the times in the user's zone."""
    await bot.add_gpu()
    bot.fake.set_user("UA", tz="Europe/Berlin")
    bot.fake.set_user("UB", tz="Europe/Berlin")
    reply = await bot.command("book rtx-0 4GB 10:00 for 1h job", user="UA")
    assert "CET" in reply.params["text"] and UTC_NOTE not in dump(reply)
    [booking] = await bot.bookings()
    assert booking.start == at(9)
    opened = await bot.command_opening("book rtx-0 4GB", user="UB")
    shown = json.dumps(opened.params["view"])
    assert "your time zone (UTC)" in shown and "CET" not in shown


async def test_times_are_said_to_be_in_the_readers_zone_by_name(bot: Bot) -> None:
    """Status, help and the audit log show times (or read them) in the reader's Slack zone,
    which users.info gave: they name it rather than saying "your own time zone"."""
    await bot.add_gpu()
    bot.fake.set_user(ADMIN, tz="Europe/Berlin")
    for command in ("status", "help", "admin audit"):
        shown = dump(await bot.command(command, user=ADMIN))
        assert "your time zone, Europe/Berlin" in shown, command
        assert "own time zone" not in shown


async def test_book_any_places_on_a_gpu(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    reply = await bot.command("book any 20GB now for 1h train")
    assert "Booked" in reply.params["text"]
    [booking] = await bot.bookings()
    assert booking.status == BookingStatus.ACTIVE and booking.gpu_name in ("rtx-0", "a100-1")


async def test_bare_command_opens_the_booking_form(bot: Bot) -> None:
    await bot.add_gpu()
    opened = await bot.command_opening("")
    view = opened.params["view"]
    assert view["callback_id"] == "book_modal"
    # The one GPU is selected, so the memory shown is its default (see handlers/booking_form.py).
    assert json.loads(view["private_metadata"]) == {"channel": "C1", "default": "12GB"}


async def test_incomplete_book_opens_the_form_prefilled(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    opened = await bot.command_opening("book rtx-0 10GB tomorrow 9:00")
    blocks = {b.get("block_id"): b for b in opened.params["view"]["blocks"]}
    assert blocks["gpu"]["element"]["initial_option"]["value"] == "rtx-0"
    assert blocks["memory"]["element"]["initial_value"] == "10GB"
    assert blocks["start"]["element"]["initial_date_time"] == int(at(9, day=6).timestamp())
    assert await bot.bookings() == []


async def test_list_and_list_all(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h mine", user="UA")
    await bot.command("book rtx-0 4GB 10:00 for 1h theirs", user="UB")
    mine = await bot.command("list", user="UA")
    assert "mine" in dump(mine) and "theirs" not in dump(mine)
    everyone = await bot.command("list all", user="UA")
    assert "mine" in dump(everyone) and "theirs" in dump(everyone)


async def test_cancel_release_and_extend_by_id(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h later")
    await bot.command("book rtx-0 4GB now for 1h running")
    await bot.command("book rtx-0 4GB 12:00 for 1h longer")

    assert "Cancelled #1" in (await bot.command("cancel 1")).params["text"]
    assert "Released #2" in (await bot.command("release 2")).params["text"]
    assert "Extended by 2h #3" in (await bot.command("extend 3 2h")).params["text"]
    first, second, third = sorted(await bot.bookings(), key=lambda b: b.id)
    assert first.status == BookingStatus.CANCELLED
    assert second.status == BookingStatus.COMPLETED and second.end_reason == "released"
    assert third.end == at(15)


async def test_edit_opens_the_edit_form(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    opened = await bot.command_opening("edit 1")
    view = opened.params["view"]
    assert view["callback_id"] == "edit_modal"
    assert json.loads(view["private_metadata"]) == {
        "booking": 1,
        "channel": "C1",
        "start": int(at(10).timestamp()),
        "end": int(at(11).timestamp()),
    }


async def test_calendar_defaults_to_first_gpu_and_names_the_others(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    reply = await bot.command("calendar")
    text = dump(reply)
    assert "a100-1 — Mon 5 Jan 2026" in text and "Also: `rtx-0`" in text


async def test_calendar_of_a_gpu_on_a_day_and_a_week(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB tomorrow 10:00 for 1h job")
    day = await bot.command("calendar rtx-0 tomorrow")
    assert "rtx-0 — Tue 6 Jan 2026" in dump(day) and "#1" in dump(day)
    week = await bot.command("calendar rtx-0 week")
    assert "week of Mon 5 Jan 2026" in dump(week) and "#1" in dump(week)


async def test_calendar_day_is_the_users_local_day(bot: Bot) -> None:
    await bot.add_gpu()
    bot.fake.set_user("UA", tz="America/New_York")
    reply = await bot.command("calendar rtx-0")
    # 08:00 UTC on Monday is 03:00 on Monday in New York.
    assert "rtx-0 — Mon 5 Jan 2026" in dump(reply) and "EST" in dump(reply)


async def test_free_with_and_without_duration(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB now for 2h big", user="UB")
    reply = await bot.command("free 10GB for 3h")
    assert "10 GB for 3h" in dump(reply) and "book_slot" in dump(reply)
    default = await bot.command("free 10GB")
    assert "10 GB for 1h" in dump(default)


async def test_free_refuses_what_book_would_and_names_the_largest_gpu(bot: Bot) -> None:
    await bot.add_gpu()
    booking = await bot.command("book rtx-0 10GB now for 9d long")
    free = await bot.command("free 10GB for 9d")
    assert "Bookings last at most 7d; this one is 9d" in free.params["text"]
    assert free.params["text"] == booking.params["text"]
    too_big = await bot.command("free 40GB for 4h")
    assert too_big.params["text"] == "No GPU has 40 GB: the largest is `rtx-0` with 24 GB."
    assert "book_slot" not in dump(too_big)


async def test_help_shows_admin_forms_to_admins_only(bot: Bot) -> None:
    user = await bot.command("help", user="UA")
    assert "/gpubook book" in dump(user) and "admin gpu add" not in dump(user)
    admin = await bot.command("help", user=ADMIN)
    assert "admin gpu add" in dump(admin)


async def test_workspace_admins_count_as_admins(bot: Bot) -> None:
    bot.fake.set_user("UW", is_admin=True)
    reply = await bot.command("admin gpu add a100-9 80GB", user="UW")
    assert "Added `a100-9` with 80 GB" in reply.params["text"]


async def test_admin_gpu_add_retire_channel_and_stats(bot: Bot) -> None:
    added = await bot.command("admin gpu add a100-3 80GB rack 2", user=ADMIN)
    assert "Added `a100-3`" in added.params["text"]
    channel = await bot.command("admin channel <#C0GPU|gpu>", user=ADMIN)
    assert "<#C0GPU>" in channel.params["text"]
    assert await bot.workspace_channel() == "C0GPU"
    await bot.command("book a100-3 8GB now for 2h stats", user="UA")
    stats = await bot.command("admin stats 30", user=ADMIN)
    assert "a100-3" in dump(stats)
    await bot.command("release 1", user="UA")
    retired = await bot.command("admin gpu retire a100-3", user=ADMIN)
    assert "Retired `a100-3`" in retired.params["text"]
    assert [g.name for g in await bot.service.list_gpus(bot.admin)] == []


async def test_admin_commands_refuse_non_admins(bot: Bot) -> None:
    await bot.add_gpu()
    for text in (
        "admin gpu add a100-3 80GB",
        "admin gpu retire rtx-0",
        "admin channel <#C0GPU|gpu>",
        "admin stats",
        "admin gpu edit rtx-0 size 48GB",
        "admin gpu retire rtx-0 cancel-future",
        "admin audit",
    ):
        reply = await bot.command(text, user="UA")
        assert "Only gpubook admins" in reply.params["text"], text
    assert [g.name for g in await bot.service.list_gpus(bot.admin)] == ["rtx-0"]
    assert await bot.workspace_channel() == "CGPU"  # the configured default


async def test_unknown_subcommand(bot: Bot) -> None:
    reply = await bot.command("frobnicate")
    assert "I don't know `/gpubook frobnicate`" in reply.params["text"]


async def test_admin_channel_for_one_gpu_from_a_slack_mention(bot: Bot) -> None:
    await bot.add_gpu("rtx-0")
    await bot.add_gpu("a100-1", "80GB")
    # Slack escapes a typed `#rtx-chat` into a mention (the manifest sets should_escape).
    reply = await bot.command("admin channel <#C0RTX|rtx-chat> rtx-0", user=ADMIN)
    assert reply.params["text"] == "`rtx-0`'s notifications now go to <#C0RTX>."
    gpus = {g.name: g for g in await bot.service.list_gpus(bot.admin)}
    assert (gpus["rtx-0"].channel_id, gpus["a100-1"].channel_id) == ("C0RTX", None)
    assert await bot.workspace_channel() == "CGPU"  # the workspace's is unchanged


async def test_admin_retire_with_cancel_future_lists_what_it_ended(bot: Bot) -> None:
    await bot.add_gpu()
    for owner in ("UA", "UB"):
        await bot.open_home(owner)
    await bot.command("book rtx-0 4GB now for 1h running", user="UA")
    await bot.command("book rtx-0 4GB 10:00 for 1h later", user="UB")
    refused = await bot.command("admin gpu retire rtx-0", user=ADMIN)
    assert "cancel-future" in refused.params["text"]
    assert len(await bot.bookings(BookingStatus.ACTIVE, BookingStatus.UPCOMING)) == 2

    reply = await bot.command("admin gpu retire rtx-0 cancel-future", user=ADMIN)
    text = dump(reply)
    assert "Retired `rtx-0`" in reply.params["text"] and "2 of its bookings" in text
    assert text.index("Ended early") < text.index("*#1* <@UA>") < text.index("Cancelled")
    assert text.index("Cancelled") < text.index("*#2* <@UB>")
    statuses = {b.id: b.status for b in await bot.bookings()}
    assert statuses == {1: BookingStatus.COMPLETED, 2: BookingStatus.CANCELLED}
    # Both owners' open App Homes are re-published: on opening, after booking, after retiring.
    for owner in ("UA", "UB"):
        await bot.fake.wait_for(
            "views.publish", count=3, predicate=lambda c, o=owner: c.params["user_id"] == o
        )


async def test_admin_gpu_edit_resizes_renames_and_describes(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    resized = await bot.command("admin gpu edit rtx-0 size 48GB", user=ADMIN)
    assert resized.params["text"] == "Updated `rtx-0`: 48 GB."
    renamed = await bot.command("admin gpu edit rtx-0 rename rtx-1", user=ADMIN)
    assert renamed.params["text"] == "Updated `rtx-1`: 48 GB."
    # As Slack sends `<b> & rack 2`: escaped entities, read back as typed, escaped again on show.
    described = await bot.command(
        "admin gpu edit rtx-1 description &lt;b&gt; &amp; rack 2", user=ADMIN
    )
    assert "&lt;b&gt; &amp; rack 2" in dump(described) and "<b>" not in dump(described)
    [gpu] = await bot.service.list_gpus(bot.admin)
    assert (gpu.name, gpu.capacity_mib, gpu.description) == ("rtx-1", 48 * 1024, "<b> & rack 2")
    await bot.command("book rtx-1 40GB 10:00 for 1h big")
    shrink = await bot.command("admin gpu edit rtx-1 size 24GB", user=ADMIN)
    assert "can't shrink" in shrink.params["text"]


async def test_admin_audit_shows_the_latest_entries_newest_first(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h &lt;!channel&gt; job", user="UA")
    latest = await bot.command("admin audit 1", user=ADMIN)
    text = dump(latest)
    assert "<@UA> `create` booking *#1*" in text and "gpu_add" not in text
    assert "&lt;!channel&gt; job" in text and "<!channel>" not in text
    everything = dump(await bot.command("admin audit", user=ADMIN))
    assert everything.index("`create`") < everything.index("`gpu_add`")
    assert "<@UADMIN> `gpu_add`" in everything


async def test_an_admins_change_refreshes_the_owners_home(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.open_home("UA")
    await bot.command("book rtx-0 4GB 10:00 for 1h job", user="UA")
    await bot.command("book rtx-0 4GB 12:00 for 1h other", user="UA")
    await bot.fake.wait_for(
        "views.publish", predicate=lambda c: c.params["user_id"] == "UA", count=3
    )
    await bot.command("cancel 1", user=ADMIN)
    await bot.fake.wait_for(
        "views.publish", predicate=lambda c: c.params["user_id"] == "UA", count=4
    )
    await bot.click(ids.EXTEND, "2", user=ADMIN)
    [*_, home] = await bot.fake.wait_for(
        "views.publish", predicate=lambda c: c.params["user_id"] == "UA", count=5
    )
    assert "#2" in dump(home) and "#1" not in dump(home)


async def test_each_rebuilt_home_shows_every_change_to_the_gpus_made_before_it(bot: Bot) -> None:
    await bot.add_gpu()
    for owner in ("UA", "UB"):
        await bot.open_home(owner)

    def homes_of(user: str, count: int) -> Any:
        return bot.fake.wait_for(
            "views.publish", predicate=lambda c: c.params["user_id"] == user, count=count
        )

    await bot.command("book rtx-0 4GB now for 1h first", user="UA")
    [*_, home_a] = await homes_of("UA", 2)
    assert "4/24 GB" in dump(home_a)
    await bot.command("book rtx-0 6GB now for 1h second", user="UB")
    [*_, home_b] = await homes_of("UB", 2)
    assert "10/24 GB" in dump(home_b) and "second" in dump(home_b) and "first" not in dump(home_b)
    await bot.command("release 1", user="UA")
    [*_, home_a] = await homes_of("UA", 3)
    assert "6/24 GB" in dump(home_a) and "first" not in dump(home_a)


async def test_every_book_and_free_example_in_help_is_accepted(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Help must not advertise a form the service refuses (a percentage with `any`, say); a
    refusal for lack of memory would only be about the example's numbers."""
    await bot.add_gpu("a100-1", "80GB")
    await bot.add_gpu("rtx-0", "24GB")
    outcomes: list[object] = []

    def watched(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await method(*args, **kwargs)
            except GpubookError as error:
                outcomes.append(error)
                raise
            outcomes.append(result)
            return result

        return call

    for name in ("create", "create_series", "create_flexible", "free"):
        monkeypatch.setattr(bot.service, name, watched(getattr(bot.service, name)))
    examples = [(e, why) for _, e, why in EXAMPLES if e.split()[1:2] in (["book"], ["free"])]
    assert len(examples) >= 3
    for example, why in examples:
        user = ADMIN if why.startswith("Admin:") else "UA"  # as the help shows them
        await bot.command(example.removeprefix("/gpubook "), user=user)
    assert len(outcomes) == len(examples)  # each reached the service (none opened a form)
    refused = [e for e in outcomes if isinstance(e, GpubookError)]
    assert all(isinstance(e, CapacityError) for e in refused), refused
