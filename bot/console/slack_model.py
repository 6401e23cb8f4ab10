"""What the Slack double deals in, as Slack would describe it: messages as one reader sees them,
views shown, where a ``response_url`` answers, and workspace members as ``users.info`` reports
them. The double's server (:mod:`bot.console.slackapi`), its Web API methods
(:mod:`bot.console.slack_methods`) and the console's screen all speak in these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Message:
    """A message as one reader sees it. ``version`` grows on every update (old buttons die)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    #: Set for an ephemeral message: the only user who sees it.
    only_user: str | None = None
    version: int = 0
    deleted: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.ts)

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")


@dataclass(frozen=True)
class ViewShown:
    """A modal opened/updated/pushed, or an App Home published (``view["type"] == "home"``)."""

    how: str
    view: dict[str, Any]
    user_id: str | None = None


@dataclass
class SlackFile:
    """A file uploaded the way ``files_upload_v2`` does: announced (``files.getUploadURLExternal``),
    its bytes POSTed to the upload URL, then completed into a conversation."""

    id: str
    name: str
    length: int
    alt_txt: str = ""
    title: str = ""
    #: The bytes received at the upload URL; ``None`` until then.
    content: bytes | None = None
    #: Where it was shared by ``files.completeUploadExternal``; ``None`` until then.
    channel: str | None = None


@dataclass(frozen=True)
class FileShared:
    """A completed upload shared into ``channel`` (a DM is ``D…``)."""

    channel: str
    file: SlackFile

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")


Shown = Message | ViewShown | FileShared


@dataclass(frozen=True)
class ResponseTarget:
    """Where a ``response_url`` answers: the channel and user of the request, and the message
    clicked (``replace_original`` replaces it). Without a channel the answer is only received;
    ``name`` tells such URLs apart."""

    channel: str | None = None
    user_id: str | None = None
    message: tuple[str, str] | None = None
    name: str = "response"


@dataclass
class SlackUser:
    """A workspace member as ``users.info`` reports it."""

    id: str
    name: str
    tz: str = "UTC"
    is_admin: bool = False
    is_bot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: The profile's e-mail address (what ``users.lookupByEmail`` finds), if any.
    email: str | None = None

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """Render like real ``users.info``: ``tz_offset`` is seconds east of UTC, right now."""
        now = datetime.now(ZoneInfo(self.tz))
        offset = now.utcoffset()
        user = {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.name.title(),
            "deleted": False,
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {"real_name": self.name.title(), "display_name": self.name},
        }
        if self.email is not None:
            user["profile"]["email"] = self.email
        user.update(self.extra)
        return user
