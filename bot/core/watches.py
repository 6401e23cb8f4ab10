"""What the sentences about a watch name (pure): shared by Slack's answers and DMs and the CLI,
so a watch reads the same everywhere."""

from __future__ import annotations

from bot.core.sentence import Quote, Size, Span, When
from bot.core.snapshots import WatchInfo


def watch_gpus(pattern: str | None) -> Quote | str:
    """The GPUs a watch may use, as a sentence names them."""
    return Quote(pattern) if pattern else "any GPU"


def watch_facts(watch: WatchInfo) -> dict[str, object]:
    """The fields of the ``WATCH_*`` sentences that describe ``watch``."""
    return {
        "id": watch.id,
        "asked": Size(watch.memory_mib),
        "length": Span(watch.duration),
        "gpus": watch_gpus(watch.pattern),
        "deadline": When(watch.deadline),
    }
