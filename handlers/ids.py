"""Identifiers shared by the Block Kit builders and the listeners that answer them.

A button built in ``handlers.blocks`` and the listener registered for it must agree on these
strings; keeping them in one module makes a mismatch an import error instead of a dead button.
Modal block ids are the service's error ``field`` names, so a refusal lands under its input.
"""

from __future__ import annotations

from datetime import timedelta

# Buttons on booking messages and the App Home; value: the booking id.
EXTEND = "booking_extend"
#: What the Extend button adds, and its label (on cards and in reminders alike).
EXTEND_STEP = timedelta(hours=1)
EXTEND_LABEL = f"Extend {EXTEND_STEP // timedelta(hours=1)} h"
RELEASE = "booking_release"
CANCEL = "booking_cancel"
EDIT = "booking_edit"
# "Book this window" on refusals and free-window answers; value: JSON of the slot and task.
BOOK_SLOT = "book_slot"
# Calendar navigation; value: JSON {"gpu": name, "day": ISO date, "week": bool}.
CALENDAR_NAV = "calendar_nav"
# A list's next page; value: JSON {"all": bool, "start": ISO time, "id": int, "shown": int}.
LIST_MORE = "list_more"
# App Home buttons.
HOME_NEW_BOOKING = "home_new_booking"
HOME_CALENDAR = "home_calendar"
# Modal GPU select: dispatches an action so the memory default follows the chosen GPU.
MODAL_GPU_SELECT = "modal_gpu_select"

# Modal callback ids.
BOOK_MODAL = "book_modal"
EDIT_MODAL = "edit_modal"

# Modal block ids (== service error fields) and the action id inside each block.
BLOCK_GPU = "gpu"
BLOCK_MEMORY = "memory"
BLOCK_START = "start"
BLOCK_DURATION = "duration"
BLOCK_TASK = "task"
INPUT = "value"

#: Where a service error's ``field`` goes in a modal that has no block of that name.
FIELD_TO_BLOCK = {"end": BLOCK_DURATION}
