"""Every sentence gpubook says to a person about a refusal, once: codes and their wording.

A refusal is raised with a :class:`Code` and values (see :mod:`bot.core.errors`); this table holds
the words, written in the neutral markup of :mod:`bot.core.wording` so that Slack, a form and a
terminal each render them in their own syntax. Keeping every sentence here, keyed by code, means
one place to reword, and lets tests check that each template names only values it is given.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    # sizes and durations
    SIZE_MISSING = "size_missing"
    SIZE_EXPONENT = "size_exponent"
    SIZE_UNREADABLE = "size_unreadable"
    SIZE_NEGATIVE = "size_negative"
    SIZE_TOO_SMALL = "size_too_small"
    SIZE_NO_UNIT = "size_no_unit"
    SIZE_UNKNOWN_UNIT = "size_unknown_unit"
    SIZE_TOO_BIG = "size_too_big"
    PERCENT_NEEDS_GPU = "percent_needs_gpu"
    PERCENT_TOO_BIG = "percent_too_big"
    DURATION_MISSING = "duration_missing"
    DURATION_NEGATIVE = "duration_negative"
    DURATION_TOO_LONG = "duration_too_long"
    DURATION_ZERO = "duration_zero"
    DURATION_UNREADABLE = "duration_unreadable"
    DURATION_UNIT_ORDER = "duration_unit_order"
    DURATION_UNKNOWN_UNIT = "duration_unknown_unit"
    DURATION_NO_UNIT = "duration_no_unit"
    # times and days
    TIME_MISSING = "time_missing"
    TIME_UNREADABLE = "time_unreadable"
    TIME_BAD_MINUTE = "time_bad_minute"
    TIME_BAD_HOUR = "time_bad_hour"
    TIME_BAD_HOUR_12 = "time_bad_hour_12"
    TIME_BAD_SIXTIETH = "time_bad_sixtieth"
    TIME_BAD_OFFSET = "time_bad_offset"
    DATE_UNREADABLE = "date_unreadable"
    DATE_IMPOSSIBLE = "date_impossible"
    DAY_UNREADABLE = "day_unreadable"
    DAY_NEEDS_TIME = "day_needs_time"
    # settings (read from the environment by the operator's process)
    SETTING_EMPTY_DURATION = "setting_empty_duration"
    SETTING_NOT_DURATION = "setting_not_duration"
    SETTING_MIN_OVER_MAX = "setting_min_over_max"
    SETTING_NOT_DATABASE_URL = "setting_not_database_url"
    SETTING_UNSUPPORTED_DATABASE = "setting_unsupported_database"
    SETTING_NOT_HTTP_URL = "setting_not_http_url"
    SETTING_NOT_INTEGER = "setting_not_integer"
    SETTING_NOT_BOOLEAN = "setting_not_boolean"
    SETTING_NOT_LOG_LEVEL = "setting_not_log_level"
    # booking rules
    TEXT_REQUIRED = "text_required"
    TEXT_TOO_LONG = "text_too_long"
    START_IN_PAST = "start_in_past"
    END_BEFORE_START = "end_before_start"
    END_IN_PAST = "end_in_past"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    TOO_FAR_AHEAD = "too_far_ahead"
    EXTENSION_LIMIT = "extension_limit"
    EXTEND_NOT_POSITIVE = "extend_not_positive"
    MEMORY_NOT_POSITIVE = "memory_not_positive"
    PERCENT_ACROSS_GPUS = "percent_across_gpus"
    FREE_NOT_POSITIVE = "free_not_positive"
    WINDOW_EMPTY = "window_empty"
    STARTED_CANNOT_MOVE = "started_cannot_move"
    NOT_STARTED_CANCEL = "not_started_cancel"
    STARTED_RELEASE = "started_release"
    NOT_HOLDING = "not_holding"
    # who may do what
    ADMIN_ONLY = "admin_only"
    NOT_OWNER = "not_owner"
    # GPUs and bookings that do not exist
    NO_GPUS = "no_gpus"
    GPU_UNKNOWN = "gpu_unknown"
    GPU_RETIRED = "gpu_retired"
    KNOWN_GPUS = "known_gpus"
    BOOKING_UNKNOWN = "booking_unknown"
    SEVERAL_WORKSPACES = "several_workspaces"
    GPU_NAME_INVALID = "gpu_name_invalid"
    GPU_EXISTS = "gpu_exists"
    GPU_EXISTS_RETIRED = "gpu_exists_retired"
    GPU_SIZE_NOT_POSITIVE = "gpu_size_not_positive"
    GPU_CANNOT_SHRINK = "gpu_cannot_shrink"
    GPU_STILL_BOOKED = "gpu_still_booked"
    # capacity
    OVER_CARD = "over_card"
    OVER_CARD_ELSEWHERE = "over_card_elsewhere"
    NOT_ENOUGH = "not_enough"
    EARLIEST_HERE = "earliest_here"
    SOONER_ELSEWHERE = "sooner_elsewhere"
    FITS_ELSEWHERE = "fits_elsewhere"
    NOTHING_FITS = "nothing_fits"
    NO_GPU_FREE = "no_gpu_free"
    SOONEST_ANYWHERE = "soonest_anywhere"
    NOTHING_FITS_ANYWHERE = "nothing_fits_anywhere"

    # the Slack command grammar and forms
    UNKNOWN_COMMAND = "unknown_command"
    BOOK_PERIOD_EXPECTED = "book_period_expected"
    END_NOT_AFTER_START = "end_not_after_start"
    BOOKING_NUMBER = "booking_number"
    EXTEND_HOW_MUCH = "extend_how_much"
    LIST_USAGE = "list_usage"
    CALENDAR_USAGE = "calendar_usage"
    STATUS_USAGE = "status_usage"
    FREE_USAGE = "free_usage"
    GPU_ADD_USAGE = "gpu_add_usage"
    GPU_SIZE_FORM = "gpu_size_form"
    GPU_RETIRE_USAGE = "gpu_retire_usage"
    GPU_EDIT_USAGE = "gpu_edit_usage"
    CHANNEL_USAGE = "channel_usage"
    STATS_USAGE = "stats_usage"
    AUDIT_USAGE = "audit_usage"
    BROKEN_BUTTON = "broken_button"
    FORM_LOST_BOOKING = "form_lost_booking"
    FORM_DURATION_MISSING = "form_duration_missing"
    FORM_START_MISSING = "form_start_missing"
    FORM_GPU_MISSING = "form_gpu_missing"


_SIZE_FORMS = "like [[20GB]], [[512MiB]] or [[50%]]"
_DURATION_FORMS = "like [[90m]], [[1h30m]] or [[2d]]"
_TIME_FORMS = (
    "like [[now]], [[in 2h]], [[14:00]], [[2pm]], [[tomorrow 9am]], [[mon 10:00]] "
    "or [[2026-12-01 09:00]]"
)

WORDING: dict[Code, str] = {
    Code.SIZE_MISSING: f"Give the memory, {_SIZE_FORMS}.",
    Code.SIZE_EXPONENT: f"Write {{typed}} without an exponent, {_SIZE_FORMS}.",
    Code.SIZE_UNREADABLE: f"I can't read {{typed}} as memory. Give a number and a unit, {_SIZE_FORMS}.",
    Code.SIZE_NEGATIVE: f"The memory must be positive, {_SIZE_FORMS}.",
    Code.SIZE_TOO_SMALL: "The memory must be at least 1 MiB, like [[512MiB]] or [[20GB]].",
    Code.SIZE_NO_UNIT: "Give the memory with a unit, like [[20GB]] or [[512MiB]].",
    Code.SIZE_UNKNOWN_UNIT: "I don't know the unit {unit}. Use MiB, GB or TB (or % of the GPU), like [[20GB]].",
    Code.SIZE_TOO_BIG: "{typed} is more than any GPU has; give at most [[16TB]], like [[20GB]].",
    Code.PERCENT_NEEDS_GPU: "A percentage needs a GPU: pick the GPU, or give the memory like [[20GB]] instead.",
    Code.PERCENT_TOO_BIG: "{typed} is more than the whole GPU; give at most [[100%]].",
    Code.DURATION_MISSING: f"Give a duration, {_DURATION_FORMS}.",
    Code.DURATION_NEGATIVE: f"A duration must be positive, {_DURATION_FORMS}.",
    Code.DURATION_TOO_LONG: "That is longer than 366 days; give at most [[366d]].",
    Code.DURATION_ZERO: f"A duration must be longer than zero, {_DURATION_FORMS}.",
    Code.DURATION_UNREADABLE: "I can't read {typed} as a duration. Try [[90m]], [[1h30m]], [[2d]] or [[3 hours]].",
    Code.DURATION_UNIT_ORDER: "Write each unit once, largest first, like [[1h30m]].",
    Code.DURATION_UNKNOWN_UNIT: "I don't know the unit {unit}. Use s, m, h, d or w, like [[1h30m]].",
    Code.DURATION_NO_UNIT: "Give the duration with a unit, like [[90m]] or [[2h]].",
    Code.TIME_MISSING: f"Give the {{what}} time, {_TIME_FORMS}.",
    Code.TIME_UNREADABLE: f"I can't read {{typed}} as a time. Try {_TIME_FORMS[5:]}.",
    Code.TIME_BAD_MINUTE: "{typed} has no minute {minute}; minutes go from 00 to 59.",
    Code.TIME_BAD_HOUR: "{typed} has no hour {hour}; use 0–23, or 1–12 with am/pm.",
    Code.TIME_BAD_HOUR_12: "{typed} has no hour {hour}; with am/pm use 1–12, like [[9am]].",
    Code.TIME_BAD_SIXTIETH: "{typed} has {value:minute or second|minutes or seconds}; they go from 00 to 59.",
    Code.TIME_BAD_OFFSET: "{typed} is not a UTC offset; write it like [[+01:00]] or [[Z]].",
    Code.DATE_UNREADABLE: "I can't read {typed} as a date; write it like [[2026-12-01]].",
    Code.DATE_IMPOSSIBLE: "There is no date {typed}; write it like [[2026-12-01]].",
    Code.DAY_UNREADABLE: "I can't read {typed} as a day. Try [[today]], [[tomorrow]], [[friday]] or [[2026-12-01]].",
    Code.DAY_NEEDS_TIME: "Add a time to {typed}, like {morning} or {afternoon}.",
    Code.SETTING_EMPTY_DURATION: "{key} is empty; give a duration like [[8h]].",
    Code.SETTING_NOT_DURATION: "{key}={value} is not a duration; write it like [[15m]] or [[1h]].",
    Code.SETTING_MIN_OVER_MAX: "GPUBOOK_MIN_DURATION is longer than GPUBOOK_MAX_DURATION; make the minimum smaller.",
    Code.SETTING_NOT_DATABASE_URL: "DATABASE_URL={value} is not a database URL; use [[sqlite:///FILE]] or [[postgresql://USER:PASSWORD@HOST/DATABASE]].",
    Code.SETTING_UNSUPPORTED_DATABASE: "DATABASE_URL uses {backend}, which gpubook does not support; use [[sqlite:///FILE]] or [[postgresql://USER:PASSWORD@HOST/DATABASE]].",
    Code.SETTING_NOT_HTTP_URL: "{key}={value} is not an http(s) URL; write it like [[https://slack.com/api/]].",
    Code.SETTING_NOT_INTEGER: "{key}={value} is not valid; give a whole number from {low} to {high}.",
    Code.SETTING_NOT_BOOLEAN: "{key}={value} is not valid; write [[true]] or [[false]].",
    Code.SETTING_NOT_LOG_LEVEL: "GPUBOOK_LOG_LEVEL={value} is not a log level; write one of {levels}.",
    Code.TEXT_REQUIRED: "Give the {what} a name, like [[fine-tune llama]].",
    Code.TEXT_TOO_LONG: "The {what} is {length:character} long; keep it to {limit} or fewer.",
    Code.START_IN_PAST: "That start is in the past ({start}); pick a time from now on, or [[now]].",
    Code.END_BEFORE_START: "The end must be after the start; give a later end or a duration like [[2h]].",
    Code.END_IN_PAST: "That end is already past; give an end later than now.",
    Code.TOO_SHORT: "Bookings last at least {limit}; this one is {length}. Book a longer window.",
    Code.TOO_LONG: "Bookings last at most {limit}; this one is {length}. Split it into shorter bookings or ask an admin.",
    Code.TOO_FAR_AHEAD: "Bookings can start at most {limit} ahead; pick an earlier start.",
    Code.EXTENSION_LIMIT: "Booking #{id} can be extended by at most {limit} in total beyond its original end; {left} is left. Book a new window for the rest.",
    Code.EXTEND_NOT_POSITIVE: "Extend by a positive duration, like [[1h]] or [[30m]].",
    Code.MEMORY_NOT_POSITIVE: "Ask for a positive amount of memory, like [[8GB]].",
    Code.PERCENT_ACROSS_GPUS: "A percentage needs a specific GPU; across GPUs, give the memory like [[20GB]].",
    Code.FREE_NOT_POSITIVE: "Give a positive duration, like [[2h]].",
    Code.WINDOW_EMPTY: "The {what} window must end after it starts.",
    Code.STARTED_CANNOT_MOVE: "Booking #{id} has already started, so its start can't move; change its end or memory instead.",
    Code.NOT_STARTED_CANCEL: "Booking #{id} hasn't started yet; cancel it instead ([[/cancel {id}]]).",
    Code.STARTED_RELEASE: "Booking #{id} has already started; release it instead ([[/release {id}]]) to free its memory now.",
    Code.NOT_HOLDING: "Booking #{id} has already {how}, so there is nothing left to {verb}. Make a new booking instead.",
    Code.ADMIN_ONLY: "Only gpubook admins can {what}. Ask one of your workspace admins.",
    Code.NOT_OWNER: "Booking #{id} belongs to {owner}; only they or an admin can {verb} it. Ask them, or see your own with [[/list]].",
    Code.NO_GPUS: "There are no GPUs yet; an admin adds one with [[/admin gpu add NAME SIZE]].",
    Code.GPU_UNKNOWN: "GPU {gpu} doesn't exist. {known} See [[/status]].",
    Code.GPU_RETIRED: "GPU {gpu} is retired. {known} See [[/status]].",
    Code.KNOWN_GPUS: "Known GPUs: {names}.",
    Code.BOOKING_UNKNOWN: "There is no booking #{id}. See yours with [[/list]].",
    Code.SEVERAL_WORKSPACES: "This database holds several workspaces ({teams}); set GPUBOOK_TEAM to the one to act in.",
    Code.GPU_NAME_INVALID: "{name} can't be a GPU name: use lower-case letters, digits, [[.]], [[_]] and [[-]] (up to 32), like [[a100-3]], and not a word the commands use, such as [[any]], [[week]], a size, a day or a time.",
    Code.GPU_EXISTS: "A GPU named {name} already exists.",
    Code.GPU_EXISTS_RETIRED: "A GPU named {name} already exists (it is retired; pick another name).",
    Code.GPU_SIZE_NOT_POSITIVE: "A GPU's memory must be positive, like [[24GB]].",
    Code.GPU_CANNOT_SHRINK: "{gpu} has bookings holding up to {held} at once; it can't shrink to {size}. Cancel or move them first.",
    Code.GPU_STILL_BOOKED: "{gpu} still has {count:upcoming or active booking}. Wait until they end, or retire it with the cancel-future option ([[/admin gpu retire {name} cancel-future]]): running bookings end now, later ones are cancelled, and their owners are told.",
    Code.OVER_CARD: "{gpu} has {capacity} in all; you asked for {asked}. Ask for at most {capacity}.",
    Code.OVER_CARD_ELSEWHERE: "{gpu} has {capacity} in all; you asked for {asked}. Ask for at most {capacity} or use a bigger GPU.",
    Code.NOT_ENOUGH: "Not enough memory on {gpu} for {window}: {held} of {capacity} already held at the peak ({peak}), {free} free, {asked} asked.",
    Code.EARLIEST_HERE: "Earliest fit on {gpu}: {window}.",
    Code.SOONER_ELSEWHERE: "Sooner on {gpu}: {window}.",
    Code.FITS_ELSEWHERE: "It fits on {gpu}: {window}.",
    Code.NOTHING_FITS: "Nothing fits in the next {horizon}.",
    Code.NO_GPU_FREE: "No GPU has {asked} free for {window}.",
    Code.SOONEST_ANYWHERE: "The soonest window is on {gpu}, {window}.",
    Code.NOTHING_FITS_ANYWHERE: "Nothing fits within the next {horizon}; ask for less memory or a shorter window.",
    Code.UNKNOWN_COMMAND: "I don't know [[/{typed}]]. Try [[/help]].",
    Code.BOOK_PERIOD_EXPECTED: "After the start, write [[for 3h]] or [[until 17:00]], then the task, like [[/book a100-1 20GB tomorrow 9:00 for 3h fine-tune]].",
    Code.END_NOT_AFTER_START: "The end {typed} is not after the start; give a later end, or use [[for 3h]].",
    Code.BOOKING_NUMBER: "Give the booking number, like [[/{verb} 42]] (see [[/list]]).",
    Code.EXTEND_HOW_MUCH: "Say how much longer, like [[/extend 42 2h]].",
    Code.LIST_USAGE: "Use [[/list]] for your bookings or [[/list all]] for everyone's.",
    Code.CALENDAR_USAGE: "Use [[/calendar [gpu] [day|week]]], like [[/calendar a100-1 friday]].",
    Code.STATUS_USAGE: "[[/status]] takes nothing after it.",
    Code.FREE_USAGE: "Use [[/free <size> [for <duration>]]], like [[/free 40GB for 4h]].",
    Code.GPU_ADD_USAGE: "Give the name and memory, like [[/admin gpu add a100-3 80GB]].",
    Code.GPU_SIZE_FORM: "Give the GPU's memory as a size, like [[80GB]].",
    Code.GPU_RETIRE_USAGE: "Give the GPU to retire, like [[/admin gpu retire a100-3]] (add [[cancel-future]] to end or cancel its bookings).",
    Code.GPU_EDIT_USAGE: "Say what to change, like [[/admin gpu edit a100-3 size 40GB]], [[… rename a100-4]] or [[… description A100 in rack 2]].",
    Code.CHANNEL_USAGE: "Mention the channel, like [[/admin channel #gpu-bookings]] (or [[/admin channel #gpu-bookings a100-3]] for one GPU).",
    Code.STATS_USAGE: "Give the number of days, from 1 to {max}, like [[/admin stats 30]].",
    Code.AUDIT_USAGE: "Give how many entries to show, from 1 to {max}, like [[/admin audit 50]].",
    Code.BROKEN_BUTTON: "That button's data is unreadable; run the command again for a fresh one.",
    Code.FORM_LOST_BOOKING: "This form lost track of its booking; open it again from the booking.",
    Code.FORM_DURATION_MISSING: "Give a duration, like [[2h]] or [[90m]].",
    Code.FORM_START_MISSING: "Pick a start.",
    Code.FORM_GPU_MISSING: 'Pick a GPU, or "Any GPU".',
}
