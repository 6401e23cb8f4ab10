"""The grammar of `link`, `unlink` and `admin link`: Unix logins and the people they are."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from handlers.commands.syntax import AdminLink, Link, Unlink

#: Slack sends a mention as `<@U123|alice>` (or `<@U123>`).
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def parse_link(args: list[str], now: datetime, tz: ZoneInfo) -> Link:
    if len(args) > 1:
        raise InputError(Code.LINK_USAGE, field="login")
    return Link(args[0] if args else None)


def parse_unlink(args: list[str], now: datetime, tz: ZoneInfo) -> Unlink:
    if len(args) != 1:
        raise InputError(Code.UNLINK_USAGE, field="login")
    return Unlink(args[0])


def parse_admin_link(args: list[str], now: datetime, tz: ZoneInfo) -> AdminLink:
    mention = _MENTION.fullmatch(args[0]) if len(args) == 2 else None
    if mention is None:
        raise InputError(Code.ADMIN_LINK_USAGE, field="user")
    return AdminLink(mention[1], args[1])
