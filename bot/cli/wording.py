"""How the domain's sentences read in a terminal: plain text, commands as this CLI's own.

A sentence that suggests a command names the ``gpubook`` command line's equivalent
(``gpubook cancel 42``, ``gpubook gpu add …``), and otherwise names the Slack command in words.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from bot.core.errors import GpubookError
from bot.core.wording import Surface

#: Words of the slash command that the CLI has too, with what the CLI calls them.
_CLI_VERBS = {
    "book": "book",
    "cancel": "cancel",
    "release": "release",
    "status": "gpu list",
    "list": "export",
    "admin": "",
}
#: `admin …` commands the CLI has, without the `admin`.
_CLI_ADMIN = ("gpu ", "group ", "limits ")
#: Options the slash command takes as words and the CLI as flags.
_CLI_OPTIONS = {"cancel-future": "--cancel-future"}


class TerminalText(Surface):
    """Plain text; commands as ``gpubook …`` where the CLI has them, else named as Slack's."""

    def quote(self, text: str) -> str:
        return f"'{text}'" if " " in text else text

    def command(self, words: str) -> str:
        verb, _, rest = words.partition(" ")
        if verb in _CLI_VERBS and (verb != "admin" or rest.startswith(_CLI_ADMIN)):
            args = [_CLI_OPTIONS.get(word, word) for word in rest.split()]
            return " ".join(["gpubook", *_CLI_VERBS[verb].split(), *args])
        return f"the Slack command '{words}'"


def terminal_text(error: GpubookError, tz: tzinfo = UTC, now: datetime | None = None) -> str:
    return error.render(TerminalText(tz, now))
