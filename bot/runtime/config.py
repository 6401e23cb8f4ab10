"""Settings: everything an operator configures, read once from the environment.

Every value comes from an environment variable (or a ``.env`` file in the working directory, which
never overrides a variable that is really set), so the same image runs on a laptop and on a
platform that injects secrets. A malformed value stops the program with one sentence that names the
variable and says what to write instead: a typo in ``PORT`` should not surface later as a crash
deep inside a web server.

``SETTINGS_DOC`` lists every setting with its default and meaning; the README's table is checked
against it, so documentation and code cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.booking import DEFAULT_TEAM, ServiceConfig
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.units import parse_duration
from storage.db import DEFAULT_URL, normalise_url

DOTENV_FILE = ".env"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: (variable, default, meaning) for every setting, in the order the README shows them.
SETTINGS_DOC: tuple[tuple[str, str, str], ...] = (
    (
        "DATABASE_URL",
        DEFAULT_URL,
        "Database: `sqlite:///FILE` or `postgresql://USER:PASS@HOST/DB`.",
    ),
    ("SLACK_BOT_TOKEN", "(none)", "Bot token (`xoxb-…`); needed to run the bot."),
    (
        "SLACK_SIGNING_SECRET",
        "(none)",
        "Signing secret; needed to receive Slack requests over HTTP.",
    ),
    (
        "SLACK_APP_TOKEN",
        "(none)",
        "App-level token (`xapp-…`); set it to use Socket Mode instead of HTTP.",
    ),
    (
        "SLACK_API_URL",
        "(Slack's)",
        "Base URL of the Slack Web API, e.g. a test double's `http://localhost:8080/api/`.",
    ),
    ("PORT", "3000", "HTTP port for Slack requests, health and metrics."),
    (
        "GPUBOOK_CHANNEL",
        "(none)",
        "Channel id for notifications when neither the GPU nor the workspace sets one.",
    ),
    (
        "GPUBOOK_ADMINS",
        "(none)",
        "Comma-separated Slack user ids with admin rights (workspace admins always have them).",
    ),
    (
        "GPUBOOK_TEAM",
        "(see meaning)",
        f"Workspace (team) id the command line and console act in. Unset: the one workspace the database holds GPUs for, else `{DEFAULT_TEAM}`.",
    ),
    (
        "GPUBOOK_ANNOUNCE",
        "true",
        "Whether new bookings are announced in the channel (`true` or `false`).",
    ),
    (
        "GPUBOOK_SWEEP_SECONDS",
        "30",
        "How often, in seconds, bookings are started/completed and notifications sent.",
    ),
    ("GPUBOOK_REMINDER", "15m", "How long before a booking ends its owner gets a reminder."),
    ("GPUBOOK_MIN_DURATION", "5m", "Shortest booking allowed."),
    (
        "GPUBOOK_MAX_DURATION",
        "7d",
        "Longest booking allowed (also the admins' extension limit); the default of the group everyone's max-duration.",
    ),
    (
        "GPUBOOK_MAX_ADVANCE",
        "60d",
        "How far ahead a booking may start; the default of everyone's max-advance.",
    ),
    (
        "GPUBOOK_MAX_EXTENSION",
        "24h",
        "How far, in total, a running booking may be extended past its original end; the default of everyone's max-extension.",
    ),
    (
        "GPUBOOK_GROUP_<NAME>",
        "(none)",
        "Comma-separated user ids in the group NAME (e.g. `GPUBOOK_GROUP_PREMIUM`), besides those admins add.",
    ),
    (
        "GPUBOOK_MAX_EXTENSION_<NAME>",
        "(none)",
        "Extension limit for members of group NAME, instead of GPUBOOK_MAX_EXTENSION, unless an admin sets the group's max-extension.",
    ),
    ("GPUBOOK_LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    #: ``None`` means Slack's own API; otherwise always ends with ``/`` (see ``_api_url``).
    slack_api_url: str | None = None
    port: int = 3000
    channel: str | None = None
    admins: frozenset[str] = frozenset()
    #: The workspace the CLI and console act in; ``None``: not configured (see ``team``).
    team_id: str | None = None
    announce: bool = True
    sweep_seconds: int = 30
    reminder_before: timedelta = timedelta(minutes=15)
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env``, or (``None``) from the process environment and ``.env``.

        An explicit mapping is used as is, so tests never pick up a developer's ``.env``.
        """
        if env is None:
            env = environment()
        return cls(
            database_url=_database_url(env),
            slack_bot_token=_text(env, "SLACK_BOT_TOKEN"),
            slack_signing_secret=_text(env, "SLACK_SIGNING_SECRET"),
            slack_app_token=_text(env, "SLACK_APP_TOKEN"),
            slack_api_url=_api_url(env),
            port=_integer(env, "PORT", 3000, low=1, high=65535),
            channel=_text(env, "GPUBOOK_CHANNEL"),
            admins=frozenset(_id_list(env, "GPUBOOK_ADMINS")),
            team_id=_text(env, "GPUBOOK_TEAM"),
            announce=_boolean(env, "GPUBOOK_ANNOUNCE", True),
            sweep_seconds=_integer(env, "GPUBOOK_SWEEP_SECONDS", 30, low=1, high=3600),
            reminder_before=_duration(env, "GPUBOOK_REMINDER", timedelta(minutes=15)),
            policy=Policy.from_env(env),
            log_level=_log_level(env),
        )

    @property
    def team(self) -> str:
        """The configured workspace, or the local default (the console's own demo workspace)."""
        return self.team_id or DEFAULT_TEAM

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(
            self.policy, self.admins, default_channel=self.channel, announce_new=self.announce
        )


def environment(dotenv: Path = Path(DOTENV_FILE)) -> dict[str, str]:
    """The process environment over the values of ``dotenv`` (when it exists).

    Merged into a new dict rather than written into ``os.environ``: reading settings should not
    change the environment every later subprocess inherits.
    """
    values = dotenv_values(dotenv) if dotenv.is_file() else {}
    merged = {key: value for key, value in values.items() if value is not None}
    merged.update(os.environ)
    return merged


def _text(env: Mapping[str, str], key: str) -> str | None:
    return env.get(key, "").strip() or None


def _id_list(env: Mapping[str, str], key: str) -> list[str]:
    return [part.strip() for part in env.get(key, "").split(",") if part.strip()]


def _database_url(env: Mapping[str, str]) -> str:
    raw = _text(env, "DATABASE_URL") or DEFAULT_URL
    try:
        backend = make_url(normalise_url(raw)).get_backend_name()
    except ArgumentError:
        raise InputError(Code.SETTING_NOT_DATABASE_URL, value=repr(raw)) from None
    if backend not in ("sqlite", "postgresql"):
        raise InputError(Code.SETTING_UNSUPPORTED_DATABASE, backend=repr(backend))
    return raw


def _api_url(env: Mapping[str, str]) -> str | None:
    """The API base with a trailing slash: the SDK joins method names onto it like a relative URL,
    so ``http://host/api`` would silently lose its ``/api``."""
    raw = _text(env, "SLACK_API_URL")
    if raw is None:
        return None
    if not raw.startswith(("http://", "https://")):
        raise InputError(Code.SETTING_NOT_HTTP_URL, key="SLACK_API_URL", value=repr(raw))
    return raw if raw.endswith("/") else raw + "/"


def _integer(env: Mapping[str, str], key: str, default: int, *, low: int, high: int) -> int:
    raw = _text(env, key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InputError(
            Code.SETTING_NOT_INTEGER, key=key, value=repr(raw), low=str(low), high=str(high)
        )
    return value


def _boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = _text(env, key)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InputError(Code.SETTING_NOT_BOOLEAN, key=key, value=repr(raw))


def _duration(env: Mapping[str, str], key: str, default: timedelta) -> timedelta:
    raw = _text(env, key)
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except InputError:
        raise InputError(Code.SETTING_NOT_DURATION, key=key, value=repr(raw)) from None


def _log_level(env: Mapping[str, str]) -> str:
    raw = _text(env, "GPUBOOK_LOG_LEVEL") or "INFO"
    if raw.upper() not in LOG_LEVELS:
        raise InputError(Code.SETTING_NOT_LOG_LEVEL, value=repr(raw), levels=", ".join(LOG_LEVELS))
    return raw.upper()
