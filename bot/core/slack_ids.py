"""What a Slack user id and a channel id look like: one rule, for every interface that reads one.

Slack ids are a letter saying what they name followed by upper-case letters and digits: ``U``
(or ``W`` on Enterprise Grid) for people, ``C`` for channels (``G`` for private channels of older
workspaces). Slack escapes mentions in command text (``should_escape`` in ``manifest.yml``) to
``<@U123|bob>`` and ``<#C123|general>``; those forms carry the id too, so they are read here as
well. Only the shape is checked: whether the id exists is Slack's to say (``users.info``,
``conversations.info``), and a tool that can ask does so itself.
"""

from __future__ import annotations

import re

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote

_USER = r"[UW][A-Z0-9]+"
_CHANNEL = r"[CG][A-Z0-9]+"
_USER_ID = re.compile(_USER)
_CHANNEL_ID = re.compile(_CHANNEL)
_USER_MENTION = re.compile(rf"<@({_USER})(?:\|[^<>]*)?>")
_CHANNEL_MENTION = re.compile(rf"<#({_CHANNEL})(?:\|[^<>]*)?>")
#: A user or channel mention as Slack writes it in text (a regular expression, no groups).
MENTION = rf"<@{_USER}(?:\|[^<>]*)?>|<#{_CHANNEL}(?:\|[^<>]*)?>"


def is_user_id(text: str) -> bool:
    """Whether ``text`` is shaped like a Slack user id (``U0123ABCD``); ``cli`` is not one."""
    return _USER_ID.fullmatch(text) is not None


def is_channel_id(text: str) -> bool:
    """Whether ``text`` is shaped like a Slack channel id (``C0123ABCD``)."""
    return _CHANNEL_ID.fullmatch(text) is not None


def mentioned_user(text: str) -> str | None:
    """The user id in ``U123``, ``<@U123>`` or ``<@U123|bob>``; ``None`` if it names no user."""
    text = text.strip()
    mention = _USER_MENTION.fullmatch(text)
    if mention is not None:
        return mention[1]
    return text if is_user_id(text) else None


def mentioned_channel(text: str) -> str | None:
    """The channel id in ``C123``, ``<#C123>`` or ``<#C123|general>``; ``None`` if it names none."""
    text = text.strip()
    mention = _CHANNEL_MENTION.fullmatch(text)
    if mention is not None:
        return mention[1]
    return text if is_channel_id(text) else None


def user_id(text: str, *, field: str = "user") -> str:
    """The user id ``text`` names, or the refusal that says what a user id looks like."""
    found = mentioned_user(text)
    if found is not None:
        return found
    if not text.strip():
        raise InputError(Code.USER_ID_MISSING, field=field)
    raise InputError(Code.USER_ID_INVALID, field=field, typed=Quote(text))


def channel_id(text: str, *, field: str = "channel") -> str:
    """The channel id ``text`` names, or the refusal that says what a channel id looks like."""
    found = mentioned_channel(text)
    if found is None:
        raise InputError(Code.CHANNEL_ID_INVALID, field=field, typed=Quote(text))
    return found
