"""The console's terminal side: reading lines, meta commands, buttons, and filling in modals.

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
from zoneinfo import ZoneInfo

from bot.console.render import block_lines, initial_text, options_of, text_of
from bot.console.screen import Button
from bot.console.sender import COMMAND
from bot.console.session import Session
from bot.core.errors import InputError
from bot.core.timeparse import parse_when

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
  :quit or Ctrl-D leave (Ctrl-C clears the line, or closes an open form)"""


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
        elif name == "admin":
            admin = self.session.toggle_admin()
            state = "now a workspace admin" if admin else "no longer an admin"
            self.show(f"@{self.session.user_name} is {state}.")
        elif name == "home":
            self.call(self.session.send.open_home())
            self.fill_modals()
        elif name == "press" and rest.isdigit():
            self.press(int(rest))
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


class ModalForm:
    """Prompts for a modal's inputs the way Slack's form would take them, then submits it.

    Typed answers are kept per (block id, action id) — as Slack keeps them across
    ``views.update`` — so only new inputs, or those the app rejected, are asked again.
    """

    def __init__(self, repl: Repl) -> None:
        self.repl = repl
        self.session = repl.session
        self.answers: dict[tuple[str, str], dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        #: Views whose title was shown, and text blocks shown (a views.update keeps the id
        #: and mostly the text: show each only once).
        self._introduced: set[str] = set()
        self._shown_text: set[str] = set()

    def run(self) -> None:
        while (view := self.session.modal) is not None:
            self._show_title(view)
            if not self._ask_all(view):
                continue  # the view changed under us (a select dispatched an action)
            values = self._values(view)
            self.errors = self.repl.call(self.session.send.submit(view, values))
            if self.errors:
                self._show_errors(view)
            elif self.session.modal is not None:
                self.answers.clear()  # another view replaced it: a new form

    def _show_title(self, view: dict[str, Any]) -> None:
        if view["id"] in self._introduced:
            return
        self._introduced.add(view["id"])
        reader = self.session.reader()
        title = text_of(view.get("title"), reader)
        submit = text_of(view.get("submit"), reader) or "Submit"
        self.repl.show(
            reader.style.bold(f"┌ {title}")
            + f"  (Enter keeps the [value]; sent as “{submit}” after the last field; Ctrl-C closes)"
        )

    def _ask_all(self, view: dict[str, Any]) -> bool:
        """Ask every input still to answer; False when the view was replaced meanwhile."""
        reader = self.session.reader()
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                text = "\n".join("│ " + line for line in block_lines(block, reader, _no_buttons))
                if text not in self._shown_text:
                    self._shown_text.add(text)
                    self.repl.show(text)
                continue
            element = block.get("element", {})
            key = (block.get("block_id", ""), element.get("action_id", ""))
            if key in self.answers and key[0] not in self.errors:
                continue
            self.answers[key] = self._ask(block, element, self.answers.get(key))
            if self._dispatches(block, element) and not self._same_view(view):
                return False
        return True

    def _dispatches(self, block: dict[str, Any], element: dict[str, Any]) -> bool:
        """A select with ``dispatch_action`` tells the app at once (it may update the view)."""
        if not block.get("dispatch_action") or element.get("type") != "static_select":
            return False
        key = (block.get("block_id", ""), element.get("action_id", ""))
        option = self.answers[key].get("selected_option")
        if option is None:
            return False
        view = self.session.modal
        assert view is not None
        self.repl.call(self.session.send.select(view, key[0], element, option, self._values(view)))
        return True

    def _same_view(self, view: dict[str, Any]) -> bool:
        now = self.session.modal
        return now is not None and now["id"] == view["id"] and now["hash"] == view["hash"]

    def _values(self, view: dict[str, Any]) -> dict[str, Any]:
        """``state.values`` of the view: every answered input it still has."""
        values: dict[str, Any] = {}
        for block in view.get("blocks", []):
            element = block.get("element", {})
            key = (block.get("block_id", ""), element.get("action_id", ""))
            if block.get("type") == "input" and key in self.answers:
                values.setdefault(key[0], {})[key[1]] = self.answers[key]
        return values

    def _show_errors(self, view: dict[str, Any]) -> None:
        """Errors for an input are shown when it is asked again; others here, and then the whole
        form is asked again (there is no field to point at)."""
        inputs = {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
        for block_id, sentence in self.errors.items():
            if block_id not in inputs:
                self.repl.show(f"⚠ {block_id}: {sentence}")
        if not inputs & set(self.errors):
            self.answers.clear()

    # ------------------------------------------------------------------ one input

    def _ask(
        self, block: dict[str, Any], element: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        reader = self.session.reader()
        label = text_of(block.get("label"), reader)
        hint = text_of(block.get("hint"), reader)
        error = self.errors.get(block.get("block_id", ""))
        if error:
            self.repl.show(f"│ ⚠ {error}")
        kind = element.get("type")
        if kind == "static_select":
            return self._ask_select(label, element, previous)
        if kind == "datetimepicker":
            return self._ask_time(label, element, previous)
        return self._ask_text(label, hint, element, previous, optional=bool(block.get("optional")))

    def _line(self, label: str, default: str | None) -> str:
        shown = f" [{default}]" if default else ""
        return self.repl.read(f"│ {label}{shown}: ").strip()

    def _ask_text(
        self,
        label: str,
        hint: str,
        element: dict[str, Any],
        previous: dict[str, Any] | None,
        *,
        optional: bool,
    ) -> dict[str, Any]:
        default = (previous or {}).get("value") or element.get("initial_value")
        if hint:
            label = f"{label} ({hint})"
        while True:
            value = self._line(label, default) or default
            if value or optional:
                return {"type": element.get("type", "plain_text_input"), "value": value}
            self.repl.show("│ Please fill in this field.")

    def _ask_select(
        self, label: str, element: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        reader = self.session.reader()
        options = options_of(element)
        for n, option in enumerate(options, 1):
            self.repl.show(f"│   {n}) {text_of(option.get('text'), reader)}")
        chosen = (previous or {}).get("selected_option") or element.get("initial_option")
        while True:
            default = text_of(chosen.get("text"), reader) if chosen else None
            answer = self._line(f"{label} (1-{len(options)})", default)
            picked = _pick(options, answer, reader) if answer else chosen
            if picked is not None:
                return {"type": "static_select", "selected_option": picked}
            self.repl.show(f"│ Type a number from 1 to {len(options)}.")

    def _ask_time(
        self, label: str, element: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        reader = self.session.reader()
        seconds = (previous or {}).get("selected_date_time", element.get("initial_date_time"))
        shown = initial_text({**element, "initial_date_time": seconds}, reader)
        while True:
            answer = self._line(f"{label} (e.g. tomorrow 9am)", shown)
            if not answer and seconds is not None:
                return {"type": "datetimepicker", "selected_date_time": int(seconds)}
            try:
                when = parse_when(
                    answer, now=self.session.clock(), tz=ZoneInfo(self.session.workspace.tz_name)
                )
            except InputError as error:
                self.repl.show(f"│ {error}")
                continue
            return {"type": "datetimepicker", "selected_date_time": int(when.timestamp())}


def _pick(options: list[dict[str, Any]], answer: str, reader: Any) -> dict[str, Any] | None:
    """An option by its number, its value, or the start of its text."""
    if answer.isdigit() and 1 <= int(answer) <= len(options):
        return options[int(answer) - 1]
    lowered = answer.lower()
    for option in options:
        if option.get("value", "").lower() == lowered:
            return option
    matches = [o for o in options if text_of(o.get("text"), reader).lower().startswith(lowered)]
    return matches[0] if len(matches) == 1 else None


def _no_buttons(element: dict[str, Any], block_id: str) -> int:
    """Modal text blocks are shown for reading; gpubook's modals hold no buttons to press."""
    return 0
