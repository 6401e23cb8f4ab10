"""Filling in a modal at the terminal: one prompt per input, then a submit, until it closes.

Kept apart from the line reader (:mod:`bot.console.repl`) because it is a job of its own: it walks
a view's blocks the way Slack's form would take them, keeps answers across ``views.update``, and
re-asks only what the app rejected. It talks to the terminal through :class:`Terminal`, so it
does not import the reader that starts it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import date
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from bot.console.render import block_lines, initial_text, options_of, text_of
from bot.console.session import Session
from bot.core.errors import InputError
from bot.core.timeparse import parse_when

T = TypeVar("T")


class Terminal(Protocol):
    """What a form needs of the console: the session, printing, reading a line, running a call."""

    session: Session

    def show(self, text: str) -> None: ...

    def read(self, prompt: str) -> str: ...

    def call(self, coro: Coroutine[Any, Any, T]) -> T: ...


class ModalForm:
    """Prompts for a modal's inputs the way Slack's form would take them, then submits it.

    Typed answers are kept per (block id, action id) — as Slack keeps them across
    ``views.update`` — so only new inputs, or those the app rejected, are asked again.
    """

    def __init__(self, repl: Terminal) -> None:
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
        """``state.values`` of the view, as Slack sends it: every input it has, with its answer,
        or what it shows before anyone types (an input not asked yet is on screen in Slack)."""
        values: dict[str, Any] = {}
        for block in view.get("blocks", []):
            element = block.get("element", {})
            key = (block.get("block_id", ""), element.get("action_id", ""))
            if block.get("type") == "input":
                state = self.answers.get(key) or _initial_state(element)
                values.setdefault(key[0], {})[key[1]] = state
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
        if kind in ("multi_static_select", "checkboxes"):
            return self._ask_many(label, element, previous, kind)
        if kind == "datepicker":
            return self._ask_date(label, element, previous)
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

    def _ask_many(
        self,
        label: str,
        element: dict[str, Any],
        previous: dict[str, Any] | None,
        kind: str,
    ) -> dict[str, Any]:
        """Several options (a multi-select, or checkboxes): numbers (or names) separated by
        commas; Enter keeps the choice, `-` clears it."""
        reader = self.session.reader()
        options = options_of(element)
        for n, option in enumerate(options, 1):
            self.repl.show(f"│   {n}) {text_of(option.get('text'), reader)}")
        chosen = list((previous or {}).get("selected_options") or [])
        while True:
            default = ", ".join(text_of(o.get("text"), reader) for o in chosen) or None
            answer = self._line(f"{label} (e.g. 1,3)", default)
            if not answer:
                return {"type": kind, "selected_options": chosen}
            if answer == "-":
                return {"type": kind, "selected_options": []}
            picked = [_pick(options, part.strip(), reader) for part in answer.split(",")]
            if all(p is not None for p in picked):
                return {"type": kind, "selected_options": picked}
            self.repl.show(f"│ Type numbers from 1 to {len(options)}, separated by commas.")

    def _ask_date(
        self, label: str, element: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A day as YYYY-MM-DD (what Slack's date picker submits); Enter leaves it as it was."""
        default = (previous or {}).get("selected_date") or element.get("initial_date")
        while True:
            answer = self._line(f"{label} (e.g. 2026-12-01)", default) or default
            try:
                day = None if answer is None else date.fromisoformat(answer).isoformat()
            except ValueError:
                self.repl.show("│ Write the day like 2026-12-01.")
                continue
            return {"type": "datepicker", "selected_date": day}

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


def _initial_state(element: dict[str, Any]) -> dict[str, Any]:
    """An input's state before anyone types: its initial option, time or text."""
    kind = element.get("type", "plain_text_input")
    if kind == "static_select":
        return {"type": kind, "selected_option": element.get("initial_option")}
    if kind == "datetimepicker":
        return {"type": kind, "selected_date_time": element.get("initial_date_time")}
    if kind in ("multi_static_select", "checkboxes"):
        return {"type": kind, "selected_options": element.get("initial_options") or []}
    if kind == "datepicker":
        return {"type": kind, "selected_date": element.get("initial_date")}
    return {"type": kind, "value": element.get("initial_value")}


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
