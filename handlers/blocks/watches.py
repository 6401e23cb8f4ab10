"""What watches say: the answers to `/gpubook notify` (started, listed, cancelled) and the DM a
check sends — a window opened, with a button that books it, or the watch expired.

The sentences are the wording table's (``WATCH_*``) as Slack mrkdwn, with ``<!date>`` times so
each reader sees their own zone; the Book button's label cannot hold those, so it says UTC (as
the live-usage DMs' buttons do).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence, Size, Span, When, Window, say
from bot.core.snapshots import Notice, WatchInfo
from bot.core.vocabulary import NoticeKind
from bot.core.watches import watch_facts, watch_gpus
from handlers import ids
from handlers.blocks.common import Message, button, notice, pack_lines, section
from handlers.blocks.refusals import slot_value
from handlers.wording import dated_mrkdwn, mrkdwn

EMOJI = {NoticeKind.WATCH_OPEN: ":bell:", NoticeKind.WATCH_EXPIRED: ":hourglass:"}


def watch_started(watch: WatchInfo, tz: tzinfo, now: datetime) -> Message:
    """The answer to `/gpubook notify …`: what it waits for and until when."""
    text = mrkdwn(say(Code.WATCH_STARTED, **watch_facts(watch)), tz, now)
    return Message(text, notice(text, emoji=":bell:"))


def watch_cancelled(watch: WatchInfo, tz: tzinfo, now: datetime) -> Message:
    text = mrkdwn(say(Code.WATCH_CANCELLED, id=watch.id), tz, now)
    return Message(text, notice(text, emoji=":white_check_mark:"))


def watch_list(watches: Sequence[WatchInfo], tz: tzinfo, now: datetime) -> Message:
    """The asker's open watches, one line each, and how to cancel one."""
    if not watches:
        text = mrkdwn(say(Code.WATCH_NONE), tz, now)
        return Message(text, notice(text))
    lines = [f"• {mrkdwn(say(Code.WATCH_LINE, **watch_facts(w)), tz, now)}" for w in watches]
    text = f"Your watches ({len(watches)})"
    footer = mrkdwn(say(Code.WATCH_USAGE), tz, now)
    return Message(text, [*pack_lines([f"*{text}*", *lines]), section(footer)])


def watch_blocks(item: Notice, *, now: datetime) -> tuple[str, list[Block]]:
    """The fallback text and blocks of a watch's DM (a window opened, or it expired)."""
    d = item.details
    about: dict[str, object] = {
        "id": int(d["watch"]),
        "asked": Size(int(d["mib"])),
        "length": Span(timedelta(seconds=int(d["seconds"]))),
    }
    actions = []
    sentence: Sentence
    if item.kind == NoticeKind.WATCH_OPEN:
        gpu = str(d["gpu"])
        start, end = datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"])
        sentence = say(Code.WATCH_OPENED, gpu=Quote(gpu), window=Window(start, end), **about)
        label = f"Book {gpu} {start:%a %H:%M}–{end:%H:%M} UTC"
        value = slot_value(gpu, start, end, int(d["mib"]), str(d.get("task") or ""))
        actions.append(button(label, ids.BOOK_SLOT, value, style="primary"))
    else:
        deadline = When(datetime.fromisoformat(d["deadline"]))
        sentence = say(
            Code.WATCH_EXPIRED, gpus=watch_gpus(d.get("pattern")), deadline=deadline, **about
        )
    text = dated_mrkdwn(sentence, now)
    blocks: list[Block] = [section(f"{EMOJI.get(item.kind, '')} {text}".strip())]
    if actions:
        blocks.append(ActionsBlock(elements=actions))
    return text, blocks
