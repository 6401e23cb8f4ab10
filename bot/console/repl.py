"""The console's terminal side: reading lines, meta commands, buttons, and opening modals
(filled in by :class:`bot.console.forms.ModalForm`).

Input is read on the main thread with plain ``input()`` (readline gives history and line
editing, Ctrl-C and Ctrl-D behave as in any shell), while the bot — Bolt app, database,
scheduler — runs in an asyncio loop on a thread of its own (:class:`LoopThread`). That split lets
the scheduler print "booking started" *while* someone is typing: :class:`Printer` writes it
above the prompt and redraws the prompt with what was typed so far.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

from bot.console.forms import ModalForm
from bot.console.render import text_of
from bot.console.screen import Button
from bot.console.sender import COMMAND
from bot.console.session import Session

try:  # not on every platform (Windows); the console works without history there
    import readline
except ImportError:  # pragma: no cover - POSIX CI always has readline
    readline = None  # type: ignore[assignment]

T = TypeVar("T")
#: Reads one line after showing a prompt, like ``input``: EOFError on Ctrl-D,
#: KeyboardInterrupt on Ctrl-C.
Read = Callable[[str], str]

HELP = """\
Type gpubook commands as in Slack, with or without `/gpubook`:
  status · list · book rtx-0 8GB tomorrow 9am for 2h my task · calendar rtx-0 · cancel 1
  help (the bot's own help) · an empty `/gpubook` opens the booking form
Console commands:
  N or :press N   press button [N]
  :as NAME        act as another user (e.g. `:as bob`)
  :admin          toggle workspace-admin rights for the current user
  :home           open your App Home tab
  :help           this help
  :quit or Ctrl-D leave (Ctrl-C clears the line, or closes an open form)
Times are read and shown in the console's time zone: start it with `--tz ZONE`
(e.g. `./dev console --tz Europe/Berlin`); by default $TZ, else this machine's."""


class LoopThread:
    """An asyncio loop on a daemon thread; :meth:`call` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="gpubook-loop", daemon=True
        )

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


class Printer:
    """Thread-safe output. While a prompt is being read on a terminal, text printed from the
    bot's thread goes above it, and the prompt and the half-typed line are redrawn."""

    def __init__(self, out: TextIO, *, redraw: bool = False) -> None:
        self.out = out
        self.redraw = redraw and readline is not None
        self._lock = threading.Lock()
        self._prompt: str | None = None

    def show(self, text: str) -> None:
        with self._lock:
            if self._prompt is not None and self.redraw:
                typed = readline.get_line_buffer()
                self.out.write(f"\r\x1b[K{text}\n{self._prompt}{typed}")
            else:
                self.out.write(text + "\n")
            self.out.flush()

    @contextmanager
    def prompting(self, prompt: str) -> Any:
        with self._lock:
            self._prompt = prompt
        try:
            yield
        finally:
            with self._lock:
                self._prompt = None


class Repl:
    """Reads lines until Ctrl-D or ``:quit`` and turns each into requests to the session."""

    def __init__(self, session: Session, loop: LoopThread, printer: Printer, read: Read) -> None:
        self.session = session
        self.loop = loop
        self.printer = printer
        self._read = read

    # ------------------------------------------------------------------ plumbing

    def show(self, text: str) -> None:
        self.printer.show(text)

    def read(self, prompt: str) -> str:
        with self.printer.prompting(prompt):
            return self._read(prompt)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.call(coro)

    @property
    def prompt(self) -> str:
        admin = " admin" if self.session.is_admin else ""
        return f"gpubook ({self.session.user_name}{admin})> "

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Exit code 0 however the session ends (Ctrl-D, ``:quit``)."""
        while True:
            try:
                line = self.read(self.prompt)
            except EOFError:
                self.show("")
                return 0
            except KeyboardInterrupt:
                self.show("^C")
                continue
            try:
                if not self.handle(line):
                    return 0
            except KeyboardInterrupt:
                self.show("^C (the request goes on in the background)")

    def handle(self, line: str) -> bool:
        """Run one line; False means leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            return self.meta(line)
        if line.isdigit():
            self.press(int(line))
        elif line == COMMAND or line.startswith(COMMAND + " "):
            self.command(line.removeprefix(COMMAND).strip())
        elif line.startswith("/"):
            self.show(f"Only {COMMAND} exists here; try `{COMMAND} help`.")
        else:
            self.command(line)
        return True

    def meta(self, line: str) -> bool:
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if name in ("quit", "q", "exit"):
            return False
        if name == "help":
            self.show(HELP)
        elif name == "as" and rest:
            self.session.switch_user(rest)
            self.show(f"You are now @{self.session.user_name} ({self.session.user_id}).")
        elif name == "as":
            self.show("Say whom to act as: `:as NAME` (e.g. `:as bob`).")
        elif name == "admin":
            admin = self.session.toggle_admin()
            state = "now a workspace admin" if admin else "no longer an admin"
            self.show(f"@{self.session.user_name} is {state}.")
        elif name == "home":
            self.call(self.session.send.open_home())
            self.fill_modals()
        elif name == "press" and rest.isdigit():
            self.press(int(rest))
        elif name == "press":
            self.show("Say which button to press: `:press N` (or just type N).")
        else:
            self.show(f"Unknown console command `{line}`; type :help.")
        return True

    def command(self, text: str) -> None:
        self.call(self.session.send.command(text))
        self.fill_modals()

    def press(self, number: int) -> None:
        button = self.session.button(number)
        if button is None:
            self.show(f"There is no button [{number}].")
            return
        reason = self.session.stale_reason(button)
        if reason is not None:
            self.show(f"Button [{number}] is gone: {reason}.")
            return
        if button.element.get("confirm") and not self.confirm(button):
            return
        self.call(self.session.send.press(button))
        self.fill_modals()

    def confirm(self, button: Button) -> bool:
        """Slack's confirmation dialog for a button that has one."""
        dialog = button.element["confirm"]
        reader = self.session.reader()
        self.show(f"{text_of(dialog.get('title'), reader)} {text_of(dialog.get('text'), reader)}")
        yes = text_of(dialog.get("confirm"), reader) or "Yes"
        no = text_of(dialog.get("deny"), reader) or "No"
        try:
            answer = self.read(f"[y] {yes} / [n] {no}: ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return True
        self.show(f"{no}: nothing was sent.")
        return False

    # ------------------------------------------------------------------ modals

    def fill_modals(self) -> None:
        """Fill in whatever modal is open until it closes; Ctrl-C (or Ctrl-D) closes it."""
        if self.session.modal is None:
            return
        try:
            ModalForm(self).run()
        except (KeyboardInterrupt, EOFError):
            self.session.cancel_modal()
            self.show("\nForm closed; nothing was submitted.")
