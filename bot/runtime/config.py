"""Settings: everything an operator configures, read once from the environment.

Every value comes from an environment variable (or a ``.env`` file in the working directory, which
never overrides a variable that is really set), so the same image runs on a laptop and on a
platform that injects secrets. A malformed value stops the program with one sentence that names the
variable and says what to write instead: a typo in ``PORT`` should not surface later as a crash
deep inside a web server.

``bot.runtime.settings_doc`` lists every setting with its default and meaning; the README's table is
checked against it, so documentation and code cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.booking import DEFAULT_TEAM, ServiceConfig
from bot.booking.config import UsageConfig
from bot.cli.files import cannot_read
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.units import parse_duration, parse_size
from bot.runtime.settings_doc import BOT_SCOPES
from storage.db import DEFAULT_URL, normalise_url

DOTENV_FILE = ".env"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Under /run: root's, cleared at boot (systemd's RuntimeDirectory=gpubook creates it).
DEFAULT_AGENT_SOCKET = Path("/run/gpubook/agent.sock")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


#: Requests whose work runs at once unless ``GPUBOOK_ANSWERS_AT_ONCE`` says otherwise: one, so a
#: burst never holds the event loop (and the hosts' reports) all together.
ANSWERS_AT_ONCE = 1


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    #: OAuth credentials: both set means many-workspace mode (see ``distributed``).
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_scopes: tuple[str, ...] = BOT_SCOPES
    #: ``None`` means Slack's own API; otherwise always ends with ``/`` (see ``_api_url``).
    slack_api_url: str | None = None
    #: ``None`` listens on every interface (IPv4 and IPv6).
    host: str | None = None
    port: int = 3000
    #: Where the HTTP port is reached from outside (calendar links); ``None``: not configured.
    public_url: str | None = None
    channel: str | None = None
    admins: frozenset[str] = frozenset()
    #: The workspace the CLI and console act in; ``None``: not configured (see ``team``).
    team_id: str | None = None
    announce: bool = True
    sweep_seconds: int = 30
    #: Requests whose work runs at once (``handlers.context.Deps.answering``).
    answers_at_once: int = ANSWERS_AT_ONCE
    reminder_before: timedelta = timedelta(minutes=15)
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"
    usage: UsageConfig = field(default_factory=UsageConfig)
    agent_url: str | None = None
    agent_token: str | None = None
    #: Where the host agent answers ``gpubook run`` (a Unix socket).
    agent_socket: Path = DEFAULT_AGENT_SOCKET

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
            slack_client_id=_text(env, "SLACK_CLIENT_ID"),
            slack_client_secret=_text(env, "SLACK_CLIENT_SECRET"),
            slack_scopes=tuple(_id_list(env, "SLACK_SCOPES")) or BOT_SCOPES,
            slack_api_url=_api_url(env),
            host=_host(env),
            port=_integer(env, "PORT", 3000, low=1, high=65535),
            public_url=_public_url(env),
            channel=_text(env, "GPUBOOK_CHANNEL"),
            admins=frozenset(_id_list(env, "GPUBOOK_ADMINS")),
            team_id=_text(env, "GPUBOOK_TEAM"),
            announce=_boolean(env, "GPUBOOK_ANNOUNCE", True),
            sweep_seconds=_integer(env, "GPUBOOK_SWEEP_SECONDS", 30, low=1, high=3600),
            answers_at_once=_integer(
                env, "GPUBOOK_ANSWERS_AT_ONCE", ANSWERS_AT_ONCE, low=1, high=64
            ),
            reminder_before=_duration(env, "GPUBOOK_REMINDER", timedelta(minutes=15)),
            policy=Policy.from_env(env),
            log_level=_log_level(env),
            usage=_usage(env),
            agent_url=_agent_url(env),
            agent_token=_text(env, "GPUBOOK_AGENT_TOKEN"),
            agent_socket=Path(_text(env, "GPUBOOK_AGENT_SOCKET") or DEFAULT_AGENT_SOCKET),
        )

    @property
    def distributed(self) -> bool:
        """Installed into many workspaces by OAuth (a bot token per workspace), not one token."""
        return bool(self.slack_client_id or self.slack_client_secret)

    @property
    def team(self) -> str:
        """The configured workspace, or the local default (the console's own demo workspace)."""
        return self.team_id or DEFAULT_TEAM

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(
            self.policy,
            self.admins,
            default_channel=self.channel,
            announce_new=self.announce,
            usage=self.usage,
        )


def environment(dotenv: Path = Path(DOTENV_FILE)) -> dict[str, str]:
    """The process environment over the values of ``dotenv`` (when it exists).

    Merged into a new dict rather than written into ``os.environ``: reading settings should not
    change the environment every later subprocess inherits. An unreadable ``dotenv`` is a
    :class:`~bot.cli.files.FileProblem` naming it.
    """
    try:
        values = dotenv_values(dotenv) if dotenv.is_file() else {}
    except (OSError, UnicodeDecodeError) as error:  # say which file, not a traceback
        raise cannot_read(dotenv, error) from error
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
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
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


#: A hostname (RFC 1123 labels) or an IPv4/IPv6 address: what a listening socket can bind.
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _host(env: Mapping[str, str]) -> str | None:
    raw = _text(env, "HOST")
    if raw is None:
        return None
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    if not _HOST.match(raw):
        raise InputError(Code.SETTING_NOT_HOST, value=repr(raw))
    return raw


def _public_url(env: Mapping[str, str]) -> str | None:
    """The base URL of calendar links, without a trailing slash (paths are appended to it)."""
    raw = _text(env, "GPUBOOK_PUBLIC_URL")
    if raw is None:
        return None
    if not raw.startswith(("http://", "https://")):
        raise InputError(Code.SETTING_NOT_HTTP_URL, key="GPUBOOK_PUBLIC_URL", value=repr(raw))
    return raw.rstrip("/")


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


def _usage(env: Mapping[str, str]) -> UsageConfig:
    default = UsageConfig()
    release = _text(env, "GPUBOOK_IDLE_RELEASE")
    tolerance = _text(env, "GPUBOOK_USAGE_TOLERANCE")
    try:
        tolerance_mib = parse_size(tolerance) if tolerance else default.tolerance_mib
    except InputError:
        raise InputError(
            Code.SETTING_NOT_SIZE, key="GPUBOOK_USAGE_TOLERANCE", value=repr(tolerance)
        ) from None
    return UsageConfig(
        agent_interval=_duration(env, "GPUBOOK_AGENT_INTERVAL", default.agent_interval),
        retention=_duration(env, "GPUBOOK_USAGE_RETENTION", default.retention),
        tolerance_mib=tolerance_mib,
        idle_after=_duration(env, "GPUBOOK_IDLE_AFTER", default.idle_after),
        idle_release=None
        if release is None or release.lower() in _FALSE
        else _duration(env, "GPUBOOK_IDLE_RELEASE", timedelta(0)),
        link_email_domain=_email_domain(env),
    )


#: A DNS domain as an e-mail address ends: labels of letters, digits and hyphens, with a dot.
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _email_domain(env: Mapping[str, str]) -> str | None:
    """The domain logins are read under when GPUBOOK_LINK_BY_EMAIL is on (else None)."""
    if not _boolean(env, "GPUBOOK_LINK_BY_EMAIL", False):
        return None
    raw = (_text(env, "GPUBOOK_LINK_EMAIL_DOMAIN") or "").strip().lower().lstrip("@")
    if not _DOMAIN.fullmatch(raw):
        raise InputError(Code.SETTING_NOT_EMAIL_DOMAIN, value=repr(raw))
    return raw


def _agent_url(env: Mapping[str, str]) -> str | None:
    raw = _text(env, "GPUBOOK_AGENT_URL")
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise InputError(Code.SETTING_NOT_HTTP_URL, key="GPUBOOK_AGENT_URL", value=repr(raw))
    return raw.rstrip("/") if raw else None
