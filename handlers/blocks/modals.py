"""The booking and edit modals, and reading their submitted values back.

Block ids are the service's error ``field`` names (``handlers.ids``), so a refusal can be shown
under its input with ``ack(response_action="errors", errors={field: sentence})``.

Slack keeps what a user typed in an input across ``views.update`` as long as its block id *and*
action id stay the same, and ignores a new ``initial_value`` then. The memory default must follow
the chosen GPU, so the memory input's action id carries the GPU (:func:`memory_action_id`) and a
re-render passes back any memory the user gave as the new initial value; read submitted values
with :func:`modal_values`, which does not depend on action ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.core.formats import format_duration, format_size
from bot.core.recurrence import DAY_NAMES
from bot.core.sentence import Sentence
from bot.core.snapshots import BookingInfo, BookingStatus, GpuStatus
from bot.core.timefmt import zone_label
from handlers import ids
from handlers.blocks.common import clip, escape, mib_text, slack_date
from handlers.wording import mrkdwn

MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_TITLE = 24
MAX_TASK_CHARS = 200
ANY_GPU = "any"
DEFAULT_DURATION = "2h"
QUARTER = timedelta(minutes=15)


def next_quarter_hour(now: datetime) -> datetime:
    """The first quarter hour strictly after ``now`` (10:00 → 10:15, 10:07 → 10:15).

    Strictly after, so the default start is never already past by the time the form is sent.
    """
    utc = now.astimezone(UTC)
    floor = utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)
    return floor + QUARTER


def memory_action_id(gpu: str | None) -> str:
    """The memory input's action id: it changes with the GPU so the 50% default is re-applied."""
    return f"{ids.INPUT}:{gpu or ANY_GPU}"


def _title(text: str) -> PlainTextObject:
    return PlainTextObject(text=clip(text, MAX_TITLE))


def _gpu_option(s: GpuStatus) -> Option:
    text = f"{s.gpu.name} · {format_size(s.gpu.capacity_mib)} · {format_size(s.free_mib)} free now"
    return Option(text=PlainTextObject(text=clip(text, MAX_OPTION_TEXT)), value=s.gpu.name)


def _any_option() -> Option:
    return Option(text=PlainTextObject(text="Any GPU (best fit)"), value=ANY_GPU)


def _shown_gpus(gpus: list[GpuStatus], selected: str | None) -> list[GpuStatus]:
    """At most 99 GPUs (plus "any"): those with most free memory, always including the selected."""
    limit = MAX_SELECT_OPTIONS - 1
    if len(gpus) <= limit:
        return gpus
    ranked = sorted(gpus, key=lambda s: (-s.free_mib, s.gpu.name))[:limit]
    chosen = next((s for s in gpus if s.gpu.name == selected), None)
    if chosen is not None and chosen not in ranked:
        ranked[-1] = chosen
    return ranked


def _gpu_block(gpus: list[GpuStatus], selected: str | None) -> list[Block]:
    shown = _shown_gpus(gpus, selected)
    options = [_any_option(), *(_gpu_option(s) for s in shown)]
    initial = next((o for o in options if o.value == selected), None)
    blocks: list[Block] = [
        InputBlock(
            block_id=ids.BLOCK_GPU,
            label="GPU",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=ids.MODAL_GPU_SELECT,
                placeholder="Pick a GPU",
                options=options,
                initial_option=initial,
            ),
        )
    ]
    if len(shown) < len(gpus):
        blocks.append(
            _context(
                f"Showing the {len(shown)} GPUs with most free memory of {len(gpus)}; book "
                "another with `/gpubook book <gpu> …`."
            )
        )
    return blocks


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def default_memory(gpus: list[GpuStatus], selected: str | None) -> str | None:
    """Half of the selected GPU, as text the parser reads back exactly; None without a GPU."""
    chosen = next((s for s in gpus if s.gpu.name == selected), None)
    return mib_text(chosen.gpu.capacity_mib // 2) if chosen else None


def _memory_block(initial: str | None, gpu: str | None) -> InputBlock:
    return InputBlock(
        block_id=ids.BLOCK_MEMORY,
        label="Memory",
        hint="e.g. 20GB, 20480MiB or 50%",
        element=PlainTextInputElement(
            action_id=memory_action_id(gpu),
            placeholder="20GB",
            initial_value=initial,
            max_length=32,
        ),
    )


def _start_block(start: datetime) -> InputBlock:
    return InputBlock(
        block_id=ids.BLOCK_START,
        label="Start",
        element=DateTimePickerElement(
            action_id=ids.INPUT, initial_date_time=int(start.timestamp())
        ),
    )


def _duration_block(initial: str) -> InputBlock:
    return InputBlock(
        block_id=ids.BLOCK_DURATION,
        label="Duration",
        hint="e.g. 90m, 1h30m, 2d",
        element=PlainTextInputElement(action_id=ids.INPUT, initial_value=initial, max_length=32),
    )


def _task_block(task: str | None) -> InputBlock:
    return InputBlock(
        block_id=ids.BLOCK_TASK,
        label="Task",
        hint="What the GPU is for; shown to everyone.",
        element=PlainTextInputElement(
            action_id=ids.INPUT,
            placeholder="fine-tune llama",
            initial_value=clip(task, MAX_TASK_CHARS) if task else None,
            max_length=MAX_TASK_CHARS,
        ),
    )


class Repeat:
    """The repeat select's values (none, when the form books one window)."""

    NONE = "none"
    DAILY = "daily"
    WEEKDAYS = "weekdays"
    WEEKLY = "weekly"


_REPEAT_LABELS = {
    Repeat.NONE: "Does not repeat",
    Repeat.DAILY: "Every day",
    Repeat.WEEKDAYS: "Every weekday (Mon–Fri)",
    Repeat.WEEKLY: "Weekly, on the days below",
}


def _repeat_blocks() -> list[Block]:
    """How often (none by default), which days for weekly, and the last day (a series needs one)."""
    options = [Option(text=PlainTextObject(text=t), value=v) for v, t in _REPEAT_LABELS.items()]
    days = [Option(text=PlainTextObject(text=n), value=str(i)) for i, n in enumerate(DAY_NAMES)]
    return [
        InputBlock(
            block_id=ids.BLOCK_REPEAT,
            label="Repeat",
            optional=True,
            element=StaticSelectElement(
                action_id=ids.INPUT, options=options, initial_option=options[0]
            ),
        ),
        InputBlock(
            block_id=ids.BLOCK_REPEAT_DAYS,
            label="Days (weekly)",
            optional=True,
            hint="Empty: the start's weekday.",
            element=StaticMultiSelectElement(action_id=ids.INPUT, options=days),
        ),
        InputBlock(
            block_id=ids.BLOCK_REPEAT_UNTIL,
            label="Repeat until (included)",
            optional=True,
            element=DatePickerElement(action_id=ids.INPUT),
        ),
    ]


def _flexible_block() -> InputBlock:
    """Queue the booking instead: the start is the earliest wanted, and it moves earlier by
    itself when room frees (a flexible booking: :mod:`bot.booking.queue`)."""
    option = Option(
        text=PlainTextObject(text="Flexible (move earlier when room frees)"),
        value=ids.FLEXIBLE_VALUE,
        description=PlainTextObject(
            text="Booked at the earliest fit from the start, on the GPU chosen (or any)."
        ),
    )
    return InputBlock(
        block_id=ids.BLOCK_FLEXIBLE,
        label="Queue",
        optional=True,
        element=CheckboxesElement(action_id=ids.INPUT, options=[option]),
    )


def booking_modal(
    gpus: list[GpuStatus],
    *,
    now: datetime,
    tz: tzinfo,
    selected_gpu: str | None = None,
    memory_text: str | None = None,
    start: datetime | None = None,
    duration_text: str | None = None,
    task: str | None = None,
    notes: Sequence[Sentence] = (),
    private_metadata: str = "",
) -> View:
    """The `/gpubook` form: GPU (dispatching a block action on change), memory, start, duration, task.

    ``notes`` (why the form opened) come first, one per line. Re-build it with the new
    ``selected_gpu`` on ``MODAL_GPU_SELECT`` and ``views.update`` it: without a ``memory_text``
    the memory default then becomes half of that GPU.
    """
    memory = memory_text if memory_text is not None else default_memory(gpus, selected_gpu)
    said = [_context("\n".join(mrkdwn(note, tz, now) for note in notes))] if notes else []
    blocks: list[Block] = [
        *said,
        *_gpu_block(gpus, selected_gpu),
        _memory_block(memory, selected_gpu),
        _start_block(start or next_quarter_hour(now)),
        _duration_block(duration_text or DEFAULT_DURATION),
        _task_block(task),
        _flexible_block(),
        *_repeat_blocks(),
        _context(
            f"Start is in your time zone ({zone_label(tz, now)}); memory is held for the whole window."
            " A repeated booking starts at that time of day on each day, all or nothing."
        ),
    ]
    return View(
        type="modal",
        callback_id=ids.BOOK_MODAL,
        title=_title("Book a GPU"),
        submit=_title("Book"),
        close=_title("Cancel"),
        blocks=blocks,
        private_metadata=private_metadata,
    )


def edit_modal(
    b: BookingInfo, *, now: datetime, private_metadata: str, series: bool = False
) -> View:
    """Change a booking's memory, start (before it starts), duration or task; with ``series``,
    the memory, duration or task of its series' occurrences not started, from it on.

    ``private_metadata`` is what the submission needs back (see ``handlers.modals``); the service
    checks ownership again on submit.
    """
    title = f"Edit {'series' if series else 'booking'} #{b.id}"
    if len(title) > MAX_TITLE:
        title = f"Edit #{b.id}"
    blocks: list[Block] = [
        _context(f"*#{b.id}* on `{escape(b.gpu_name)}` — {escape(clip(b.task, 120))}"),
        _memory_block(mib_text(b.memory_mib), b.gpu_name),
    ]
    if series:
        blocks.append(
            _context(
                f"For #{b.id} (unless it has started) and every later occurrence of its series; "
                "each keeps its start."
            )
        )
    elif b.status == BookingStatus.UPCOMING:
        blocks.append(_start_block(b.start))
    else:
        blocks.append(
            _context(f"Started {slack_date(b.start, now=now)}; a running booking keeps its start.")
        )
    blocks += [_duration_block(format_duration(b.duration)), _task_block(b.task)]
    return View(
        type="modal",
        callback_id=ids.EDIT_MODAL,
        title=_title(title),
        submit=_title("Save"),
        close=_title("Cancel"),
        blocks=blocks,
        private_metadata=private_metadata,
    )


def modal_values(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted modal's values by block id: ``{"gpu": "a100-1", "memory": "20GB", ...}``.

    Takes the ``view`` dict of a ``view_submission`` / ``block_actions`` body. Selects give the
    option value, the date-time picker its UNIX seconds (int), text inputs their text; an empty or
    absent input gives ``None``. Keyed by block id only, since the memory input's action id varies.
    """
    values: dict[str, Any] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        for action in actions.values():
            values[block_id] = _value_of(action)
    return values


def _value_of(action: dict[str, Any]) -> Any:
    kind = action.get("type")
    if kind == "static_select":
        option = action.get("selected_option") or {}
        return option.get("value")
    if kind == "datetimepicker":
        return action.get("selected_date_time")
    if kind in ("multi_static_select", "checkboxes"):
        return [option.get("value") for option in action.get("selected_options") or []]
    if kind == "datepicker":
        return action.get("selected_date")
    return action.get("value") or None
