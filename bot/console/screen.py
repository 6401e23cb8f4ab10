"""What the person at the keyboard sees of Slack: the messages and App Home the bot shows them,
rendered as text, with every button numbered so it can be pressed by typing its number.

Like a Slack client, the screen belongs to one user at a time (``:as`` switches whose it is), and
it remembers where each numbered button was shown: pressing one sends the payload a click on it
would, and the session can tell when that message or view has changed since. A file the bot
shares (a chart) cannot be shown in a terminal: it is written to :attr:`Screen.files_dir` and
its path printed, to open with any viewer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.console.double import BOT_USER_ID, Workspace
from bot.console.render import Reader, Style, render_message, render_view
from bot.console.slack_model import FileShared, Message, Shown
from bot.core.clock import Clock


@dataclass(frozen=True)
class Button:
    """A button shown on screen under ``number``, and where it was shown (for the payload)."""

    number: int
    element: dict[str, Any]
    block_id: str
    #: The message it sits in (its version at the time), or the view (modal or App Home).
    message: Message | None = None
    view: dict[str, Any] | None = None


#: Where shared files are written unless the screen is told otherwise.
FILES_DIR = Path(tempfile.gettempdir()) / "gpubook-console"


class Screen:
    """One user's view of the console workspace; the double reports to :meth:`on_shown`."""

    def __init__(
        self,
        workspace: Workspace,
        user_id: str,
        clock: Clock,
        style: Style,
        show: Callable[[str], None],
        files_dir: Path = FILES_DIR,
    ) -> None:
        self.workspace = workspace
        self.files_dir = files_dir
        self.user_id = user_id
        self.clock = clock
        self.style = style
        self.show = show
        #: Whether App Home publishes are shown (after `:home`, until the next command).
        self.viewing_home = False
        self._buttons: dict[int, Button] = {}

    def reader(self) -> Reader:
        return Reader(ZoneInfo(self.workspace.tz_name), self.clock(), self.style, self.names)

    @property
    def names(self) -> dict[str, str]:
        """Names by id, of people and channels (Slack's ids never collide across the two)."""
        channels = {channel: name for name, channel in self.workspace.channels.items()}
        return {**self.workspace.names, **channels, BOT_USER_ID: "gpubook"}

    def on_shown(self, shown: Shown) -> None:
        """Render what the bot just showed. Modals are not printed: the REPL prompts for them."""
        if isinstance(shown, Message):
            self.show(self.render_message(shown))
        elif isinstance(shown, FileShared):
            self.show(self.render_file(shown))
        elif shown.how == "publish" and shown.user_id == self.user_id and self.viewing_home:
            self.show(render_view(shown.view, self.reader(), self._numberer(view=shown.view)))

    def render_message(self, message: Message) -> str:
        reader = self.reader()
        if message.deleted:
            return reader.style.dim(f"── {self._label(message)}: message deleted ──")
        number = self._numberer(message=message)
        return render_message(self._label(message), message.text, message.blocks, reader, number)

    def render_file(self, shared: FileShared) -> str:
        """Write the file's bytes under :attr:`files_dir` and say where."""
        file = shared.file
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / f"{file.id}-{Path(file.name).name}"
        path.write_bytes(file.content or b"")
        where = f"#{self.workspace.channel_name(shared.channel)}"
        if shared.is_dm:
            where = f"DM from gpubook to {self._name(shared.channel[1:])}"
        head = self.reader().style.dim(f"── {where} ──")
        return f"{head}\n  📎 {file.title or file.name}: saved to {path}"

    def _name(self, user_id: str) -> str:
        return (
            "you" if user_id == self.user_id else "@" + self.workspace.names.get(user_id, user_id)
        )

    def _label(self, message: Message) -> str:
        if message.is_dm:
            where = f"DM from gpubook to {self._name(message.channel[1:])}"
        else:
            where = f"#{self.workspace.channel_name(message.channel)}"
        if message.only_user:
            where += f" · only {self._name(message.only_user)} can see this"
        if message.version:
            where += " · updated"
        return where

    def _numberer(
        self, *, message: Message | None = None, view: dict[str, Any] | None = None
    ) -> Callable[[dict[str, Any], str], int]:
        def number(element: dict[str, Any], block_id: str) -> int:
            n = len(self._buttons) + 1
            self._buttons[n] = Button(n, element, block_id, message, view)
            return n

        return number

    def button(self, number: int) -> Button | None:
        return self._buttons.get(number)
