"""Structured logs for `gpubook serve`: one JSON object per line.

JSON lines, because log shippers (Loki, CloudWatch, journald → Elastic) parse them without a
grok pattern. Fields passed through ``extra={"fields": {...}}`` become top-level keys, which is
how the one line per Slack request (see ``bot.runtime.app``) carries kind, command, user, outcome and
latency.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

#: The logger the per-request lines go to.
REQUEST_LOGGER = "gpubook.requests"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", …fields, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str) -> None:
    """Send every log record to stderr as JSON lines at ``level`` (``settings.log_level``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def log_request(**fields: Any) -> None:
    """The one line per handled Slack request."""
    logging.getLogger(REQUEST_LOGGER).info("request", extra={"fields": fields})
