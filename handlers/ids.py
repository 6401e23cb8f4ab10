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
#: "Extend N" on a refused extension: the longest one that fits; value: JSON {"id", "seconds"}.
EXTEND_OFFER = "extend_offer"
RELEASE = "booking_release"
CANCEL = "booking_cancel"
#: "Pin" on a flexible booking's move DM: it stops moving.
PIN = "booking_pin"
EDIT = "booking_edit"
# "Book this window" on refusals and free-window answers; value: JSON of the slot and task.
BOOK_SLOT = "book_slot"
# "Book the N that fit" on a refused series; value: JSON {"gpu", "mib", "rule", "task"}.
BOOK_SERIES_FIT = "book_series_fit"
# Calendar navigation; value: JSON {"gpu": name, "day": ISO date, "week": bool}.
CALENDAR_NAV = "calendar_nav"
# Live-usage DMs: raise a booking to what is used (value: JSON {"booking": id, "mib": n}), or
# dismiss an over-use / keep an idle booking (value: the episode id).
USAGE_RAISE = "usage_raise"
USAGE_DISMISS = "usage_dismiss"
USAGE_KEEP = "usage_keep"
# The calendar's Chart button (the same value): the day or week drawn, sent by DM.
CALENDAR_CHART = "calendar_chart"
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
#: The booking form's repeat section (a series): how often, which days, the last day.
BLOCK_REPEAT = "repeat"
BLOCK_REPEAT_DAYS = "repeat_days"
BLOCK_REPEAT_UNTIL = "repeat_until"
#: The booking form's "flexible" checkbox: the booking is queued (moves earlier when room frees).
BLOCK_FLEXIBLE = "flexible"
FLEXIBLE_VALUE = "flexible"
INPUT = "value"

#: Where a service error's ``field`` goes in a modal that has no block of that name.
FIELD_TO_BLOCK = {"end": BLOCK_DURATION}
