"""The help message: every command form with an example, and how sizes, durations and times are
written (admin forms only for admins)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo

from slack_sdk.models.blocks import Block

from handlers.blocks.common import escape, header, pack_lines, section, your_zone

_UNITS_HELP = (
    "*Sizes*: `20GB`, `20G`, `20480MiB`, `512MiB` or `50%` of the GPU. GB means 1024 MiB, as "
    "`nvidia-smi` reports cards.\n"
    "*Durations*: `90m`, `1h30m`, `2h`, `2d`.\n"
    "*Times* (read in {zone}): `now`, `14:00`, `2pm`, `tomorrow 9am`, `mon 10:00`, "
    "`2026-12-01 09:00`.\n"
    "Bookings may share a GPU as long as the memory held at every instant fits the card."
)


def help_message(
    examples: Iterable[tuple[str, str, str]], *, is_admin: bool, tz: tzinfo = UTC
) -> list[Block]:
    """Every command form with an example (``handlers.commands.registry.EXAMPLES``); admin forms
    only for admins."""
    user_lines, admin_lines = [], []
    for form, example, explanation in examples:
        # Forms hold `<gpu|any>`: escaped, or Slack would read them as links.
        line = f"`{escape(form)}` — {explanation}"
        if example != form:
            line += f"\n      e.g. `{escape(example)}`"
        (admin_lines if form.startswith("/gpubook admin") else user_lines).append(line)
    blocks: list[Block] = [header("gpubook: book shared GPUs by time and memory")]
    blocks.extend(pack_lines(user_lines, max_blocks=3))
    blocks.append(section(_UNITS_HELP.format(zone=your_zone(tz))))
    if is_admin and admin_lines:
        blocks.append(header("Admin"))
        blocks.extend(pack_lines(admin_lines, max_blocks=2))
    return blocks
