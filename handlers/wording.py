"""How the domain's sentences read in Slack: mrkdwn for messages, plain text for forms.

The domain hands over :class:`~bot.core.sentence.Sentence` s (inside refusals, or directly); the
two surfaces here give them Slack's syntax — code spans, mentions, the ``/gpubook`` command — and
escape every value, since sentences quote what users typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo

from bot.core.sentence import Sentence
from bot.core.slack_ids import is_user_id
from bot.core.wording import Surface, render
from handlers.blocks.common import escape, slack_date, slack_window
from handlers.commands import COMMAND


class SlackText(Surface):
    """Slack mrkdwn: names and samples as code, users as mentions, commands as ``/gpubook …``."""

    def text(self, text: str) -> str:
        return escape(text)

    def quote(self, text: str) -> str:
        return f"`{escape(text)}`"

    def command(self, words: str) -> str:
        return f"`{COMMAND} {escape(words)}`"

    def user(self, user_id: str) -> str:
        # Only a real Slack id becomes a mention; "cli" (the operator's command line) stays text.
        return f"<@{user_id}>" if is_user_id(user_id) else f"@{escape(user_id)}"


class SlackDates(SlackText):
    """Slack mrkdwn for readers whose zone the server does not know (a DM the sweep writes): times
    as ``<!date>`` tokens, which each reader's client shows in their own zone."""

    def when(self, at: datetime) -> str:
        return slack_date(at, now=self.now)

    def window(self, start: datetime, end: datetime, *, zone: bool = True) -> str:
        return slack_window(start, end, now=self.now)


class FormText(Surface):
    """Plain text inside Slack (a form's field errors): no markup at all — a field error is not
    mrkdwn, so a code span or a ``/gpubook`` would show as typed characters."""


def mrkdwn(
    sentences: Sentence | Iterable[Sentence], tz: tzinfo = UTC, now: datetime | None = None
) -> str:
    return render(sentences, SlackText(tz, now))


def dated_mrkdwn(sentences: Sentence | Iterable[Sentence], now: datetime) -> str:
    """:func:`mrkdwn` with times as ``<!date>`` tokens (see :class:`SlackDates`)."""
    return render(sentences, SlackDates(UTC, now))
