"""Who is asking: the identity every service call is made for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo

#: The workspace of tools outside Slack (CLI, console) on a database that holds none yet.
DEFAULT_TEAM = "T_LOCAL"


@dataclass(frozen=True)
class Actor:
    """A Slack user in a workspace, with the time zone their answers are read and shown in."""

    user_id: str
    team_id: str = DEFAULT_TEAM
    is_workspace_admin: bool = False
    tz: tzinfo = UTC
