"""What every setting is called, defaults to and means, apart from the code that reads them
(:mod:`bot.runtime.config`): the README's settings table is checked against it
(``tests/test_docs.py``).
"""

from __future__ import annotations

from bot.booking import DEFAULT_TEAM
from storage.db import DEFAULT_URL

#: The bot scopes gpubook needs, as ``manifest.yml`` declares them (a test keeps them equal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "users:read",
    # Linking Unix logins by e-mail (GPUBOOK_LINK_BY_EMAIL) reads addresses: users.lookupByEmail.
    "users:read.email",
    "im:write",
    "files:write",
)

#: (variable, default, meaning) for every setting, in the order the README shows them.
SETTINGS_DOC: tuple[tuple[str, str, str], ...] = (
    (
        "DATABASE_URL",
        DEFAULT_URL,
        "Database: `sqlite:///FILE` or `postgresql://USER:PASS@HOST/DB`.",
    ),
    (
        "SLACK_BOT_TOKEN",
        "(none)",
        "Bot token (`xoxb-…`); needed to run the bot in one workspace (see `SLACK_CLIENT_ID`).",
    ),
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
        "SLACK_CLIENT_ID",
        "(none)",
        "OAuth client id; with `SLACK_CLIENT_SECRET`, gpubook installs into many workspaces "
        "(`GET /slack/install`) and keeps a bot token per workspace instead of `SLACK_BOT_TOKEN`.",
    ),
    ("SLACK_CLIENT_SECRET", "(none)", "OAuth client secret (see `SLACK_CLIENT_ID`)."),
    (
        "SLACK_SCOPES",
        ",".join(BOT_SCOPES),
        "Comma-separated bot scopes asked for at install (many-workspace mode; as in `manifest.yml`).",
    ),
    (
        "SLACK_API_URL",
        "(Slack's)",
        "Base URL of the Slack Web API, e.g. a test double's `http://localhost:8080/api/`.",
    ),
    (
        "HOST",
        "(all interfaces)",
        "Address to listen on for Slack requests, health and metrics, e.g. `127.0.0.1` behind a proxy.",
    ),
    (
        "PORT",
        "3000",
        "HTTP port for Slack requests, health, metrics, agent reports and calendar feeds.",
    ),
    (
        "GPUBOOK_PUBLIC_URL",
        "(none)",
        "Base URL where people reach gpubook's HTTP port (e.g. `https://gpus.example.com`); "
        "calendar links need it.",
    ),
    (
        "GPUBOOK_CHANNEL",
        "(none)",
        "Channel id for notifications when neither the GPU nor the workspace sets one; the bot's "
        "is used when it posts, so bookings made from the command line are announced there too.",
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
    (
        "GPUBOOK_ANSWERS_AT_ONCE",
        "1",
        "How many requests' work (a command's booking and answer, a button's) runs at once; the"
        " others wait their turn, so hosts' reports and the other acks never queue behind a whole"
        " burst. Raise it only when the database is far away (each request then waits mostly for"
        " it).",
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
    (
        "GPUBOOK_AGENT_INTERVAL",
        "15s",
        "How often `gpubook agent` reports; the bot calls a host silent after 3 intervals without one.",
    ),
    (
        "GPUBOOK_AGENT_URL",
        "(none)",
        "For `gpubook agent`: the bot's base URL, e.g. `https://gpubook.example.com`.",
    ),
    ("GPUBOOK_AGENT_TOKEN", "(none)", "For `gpubook agent`: this host's token."),
    (
        "GPUBOOK_AGENT_SOCKET",
        "/run/gpubook/agent.sock",
        "On a GPU host: the Unix socket where `gpubook agent` answers `gpubook run`.",
    ),
    (
        "GPUBOOK_USAGE_RETENTION",
        "7d",
        (
            "How long usage samples are kept at full resolution (they are summed into hourly "
            "rows within minutes; statistics read those)."
        ),
    ),
    (
        "GPUBOOK_USAGE_TOLERANCE",
        "512MiB",
        "Measured use beyond the booked memory by more than this is over-use.",
    ),
    (
        "GPUBOOK_IDLE_AFTER",
        "30m",
        "An active booking whose owner had no process on its card this long is idle.",
    ),
    (
        "GPUBOOK_IDLE_RELEASE",
        "off",
        "Release idle bookings this long after asking their owner (`off`: never).",
    ),
    (
        "GPUBOOK_LINK_BY_EMAIL",
        "false",
        "Link a Unix login nobody linked to the Slack user whose e-mail is `login@` "
        "GPUBOOK_LINK_EMAIL_DOMAIN (`users.lookupByEmail`, scope `users:read.email`); audited, "
        "never replacing a link someone made.",
    ),
    (
        "GPUBOOK_LINK_EMAIL_DOMAIN",
        "(none)",
        "The domain of people's Slack e-mail addresses for GPUBOOK_LINK_BY_EMAIL, like "
        "`example.org`.",
    ),
)
