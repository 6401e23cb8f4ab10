"""Every sentence gpubook says to a person (refusals, and answers that are sentences), once.

A refusal is raised with a :class:`Code` and values (see :mod:`bot.core.errors`); this table holds
the words, written in the neutral markup of :mod:`bot.core.wording` so that Slack, a form and a
terminal each render them in their own syntax. Keeping every sentence here, keyed by code, means
one place to reword, and lets tests check that each template names only values it is given.

Longer than 400 lines on purpose: it is a table (a code and a sentence per line, no logic), and
splitting it would bring back the scattered wording it exists to end.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    # the bot itself cannot do its job right now
    DATABASE_UNAVAILABLE = "database_unavailable"
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
    TIME_UNREADABLE_NEAR = "time_unreadable_near"
    TIME_BAD_MINUTE = "time_bad_minute"
    TIME_BAD_HOUR = "time_bad_hour"
    TIME_BAD_HOUR_12 = "time_bad_hour_12"
    TIME_BAD_SIXTIETH = "time_bad_sixtieth"
    TIME_BAD_OFFSET = "time_bad_offset"
    DATE_UNREADABLE = "date_unreadable"
    DATE_IMPOSSIBLE = "date_impossible"
    DAY_UNREADABLE = "day_unreadable"
    DAY_UNREADABLE_NEAR = "day_unreadable_near"
    DAY_NEEDS_TIME = "day_needs_time"
    NEXT_NEEDS_WEEKDAY = "next_needs_weekday"
    CLOCK_SKIPPED = "clock_skipped"
    CLOCK_TWICE = "clock_twice"
    # settings (read from the environment by the operator's process)
    SETTING_EMPTY_DURATION = "setting_empty_duration"
    SETTING_NOT_DURATION = "setting_not_duration"
    SETTING_MIN_OVER_MAX = "setting_min_over_max"
    SETTING_NOT_DATABASE_URL = "setting_not_database_url"
    SETTING_UNSUPPORTED_DATABASE = "setting_unsupported_database"
    SETTING_NOT_HTTP_URL = "setting_not_http_url"
    SETTING_NOT_HOST = "setting_not_host"
    SETTING_NOT_INTEGER = "setting_not_integer"
    SETTING_NOT_BOOLEAN = "setting_not_boolean"
    SETTING_NOT_LOG_LEVEL = "setting_not_log_level"
    # files and the database (the operator's command line)
    FILE_EXISTS = "file_exists"
    FILE_NO_FOLDER = "file_no_folder"
    FILE_CANT_WRITE = "file_cant_write"
    FILE_CANT_READ = "file_cant_read"
    FILE_NOT_TEXT = "file_not_text"
    DATABASE_FAILED = "database_failed"
    SYSTEM_FAILURE = "system_failure"
    UNEXPECTED_FAILURE = "unexpected_failure"
    SETTING_NOT_SIZE = "setting_not_size"
    SETTING_NOT_EMAIL_DOMAIN = "setting_not_email_domain"
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
    USER_ID_MISSING = "user_id_missing"
    USER_ID_INVALID = "user_id_invalid"
    CHANNEL_ID_INVALID = "channel_id_invalid"
    USER_UNKNOWN = "user_unknown"
    USER_DEACTIVATED = "user_deactivated"
    CHANNEL_UNKNOWN = "channel_unknown"
    SLACK_UNCHECKED = "slack_unchecked"
    NOT_INSTALLED = "not_installed"
    GPU_NAME_INVALID = "gpu_name_invalid"
    GPU_EXISTS = "gpu_exists"
    GPU_EXISTS_RETIRED = "gpu_exists_retired"
    GPU_SIZE_NOT_POSITIVE = "gpu_size_not_positive"
    GPU_CANNOT_SHRINK = "gpu_cannot_shrink"
    GPU_STILL_BOOKED = "gpu_still_booked"
    DEVICE_UUID_INVALID = "device_uuid_invalid"
    DEVICE_UUID_TAKEN = "device_uuid_taken"
    LOGIN_INVALID = "login_invalid"
    LOGIN_TAKEN = "login_taken"
    LOGIN_NOT_LINKED = "login_not_linked"
    # live usage: what the reconciliation tells people
    USAGE_OVERUSE = "usage_overuse"
    USAGE_RAISE_FITS = "usage_raise_fits"
    USAGE_RAISE_NO_ROOM = "usage_raise_no_room"
    USAGE_OVERUSE_CHANNEL = "usage_overuse_channel"
    USAGE_UNBOOKED = "usage_unbooked"
    USAGE_IDLE = "usage_idle"
    USAGE_IDLE_RELEASE = "usage_idle_release"
    USAGE_SILENT_HOST = "usage_silent_host"
    USAGE_EPISODE_GONE = "usage_episode_gone"
    USAGE_DISMISSED = "usage_dismissed"
    USAGE_KEPT = "usage_kept"
    # host agents and their reports (answers of POST /agent/report, read by operators)
    AGENT_HOST_INVALID = "agent_host_invalid"
    AGENT_TOKEN_UNKNOWN = "agent_token_unknown"
    REPORT_NO_TOKEN = "report_no_token"
    REPORT_BAD_TOKEN = "report_bad_token"
    REPORT_WRONG_HOST = "report_wrong_host"
    REPORT_DEVICE_ELSEWHERE = "report_device_elsewhere"
    REPORT_CONTENT_TYPE = "report_content_type"
    REPORT_TOO_LARGE = "report_too_large"
    REPORT_NOT_JSON = "report_not_json"
    REPORT_NOT_OBJECT = "report_not_object"
    REPORT_FIELD_MISSING = "report_field_missing"
    REPORT_FIELD_TYPE = "report_field_type"
    REPORT_TOO_MANY = "report_too_many"
    REPORT_DUPLICATE_DEVICE = "report_duplicate_device"
    # gpubook run, on a GPU host
    RUN_GPU_NOT_HERE = "run_gpu_not_here"
    RUN_WHICH_GPU = "run_which_gpu"
    RUN_NOT_YET = "run_not_yet"
    RUN_NOTHING_HERE = "run_nothing_here"
    RUN_NOTHING_ON = "run_nothing_on"
    RUN_OFFER = "run_offer"
    RUN_NO_AGENT = "run_no_agent"
    RUN_NOT_HEARD = "run_not_heard"
    RUN_STALE = "run_stale"
    RUN_BOOK_UNLINKED = "run_book_unlinked"
    RUN_BOOK_NO_CARDS = "run_book_no_cards"
    # capacity
    OVER_CARD = "over_card"
    OVER_LARGEST = "over_largest"
    NO_GPU_BIG_ENOUGH = "no_gpu_big_enough"
    NOT_ENOUGH = "not_enough"
    EARLIEST_HERE = "earliest_here"
    SOONER_ELSEWHERE = "sooner_elsewhere"
    FITS_ELSEWHERE = "fits_elsewhere"
    NOTHING_FITS = "nothing_fits"
    NO_GPU_FREE = "no_gpu_free"
    SOONEST_ANYWHERE = "soonest_anywhere"
    NOTHING_FITS_ANYWHERE = "nothing_fits_anywhere"
    NOTHING_FITS_ON = "nothing_fits_on"
    TOO_SMALL_FOR = "too_small_for"
    EXTENSION_NOT_ENOUGH = "extension_not_enough"
    EXTEND_AT_MOST = "extend_at_most"
    EXTEND_NONE = "extend_none"
    # recurring bookings
    SERIES_TOO_MANY = "series_too_many"
    SERIES_EMPTY = "series_empty"
    SERIES_NEEDS_GPU = "series_needs_gpu"
    SERIES_REFUSED = "series_refused"
    SERIES_NONE_FIT = "series_none_fit"
    SERIES_MISS = "series_miss"
    SERIES_MISS_FULL = "series_miss_full"
    SERIES_MORE_MISSES = "series_more_misses"
    NOT_A_SERIES = "not_a_series"
    SERIES_EDIT_REFUSED = "series_edit_refused"
    SERIES_NOTHING_LATER = "series_nothing_later"
    # fair share: groups and limits
    GROUP_NAME_INVALID = "group_name_invalid"
    GROUP_EVERYONE_MEMBERS = "group_everyone_members"
    GROUP_UNKNOWN = "group_unknown"
    LIMIT_UNKNOWN = "limit_unknown"
    LIMIT_VALUE = "limit_value"
    OVER_MAX_HELD = "over_max_held"
    OVER_MAX_GBH = "over_max_gbh"
    OVER_MAX_OPEN = "over_max_open"
    LIMIT_FITS_FROM = "limit_fits_from"
    LIMIT_NEVER_FITS = "limit_never_fits"
    LIMIT_FREES_AT = "limit_frees_at"
    LIMIT_FROM_GROUP = "limit_from_group"
    QUEUE_NO_GPU_MATCHES = "queue_no_gpu_matches"
    QUEUE_NOTHING_FITS = "queue_nothing_fits"
    QUEUE_NOT_FLEXIBLE = "queue_not_flexible"
    QUEUE_MOVED = "queue_moved"
    QUEUE_SHIFTED = "queue_shifted"
    WATCH_DEADLINE_TOO_SOON = "watch_deadline_too_soon"
    WATCH_TOO_MANY = "watch_too_many"
    WATCH_NOT_FOUND = "watch_not_found"
    WATCH_CLOSED = "watch_closed"
    WATCH_STARTED = "watch_started"
    WATCH_CANCELLED = "watch_cancelled"
    WATCH_NONE = "watch_none"
    WATCH_LINE = "watch_line"
    WATCH_OPENED = "watch_opened"
    WATCH_EXPIRED = "watch_expired"
    NO_LIMIT = "no_limit"
    NOBODY = "nobody"
    EVERYBODY = "everybody"
    LIMIT_ENTRY = "limit_entry"
    GROUP_SHOWN = "group_shown"
    GROUP_NO_LIMITS = "group_no_limits"
    GROUP_NONE_YET = "group_none_yet"
    STANDING_HELD = "standing_held"
    STANDING_HELD_UNLIMITED = "standing_held_unlimited"
    STANDING_GBH = "standing_gbh"
    STANDING_GBH_UNLIMITED = "standing_gbh_unlimited"
    STANDING_GBH_AGES = "standing_gbh_ages"
    STANDING_OPEN = "standing_open"
    STANDING_OPEN_UNLIMITED = "standing_open_unlimited"
    STANDING_RULES = "standing_rules"

    # the Slack command grammar and forms
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_COMMAND_NEAR = "unknown_command_near"
    BOOK_PERIOD_EXPECTED = "book_period_expected"
    END_NOT_AFTER_START = "end_not_after_start"
    END_WRAPS_LONG = "end_wraps_long"
    BOOK_TWO_STARTS = "book_two_starts"
    BOOK_TWO_PERIODS = "book_two_periods"
    BOOK_START_AFTER_PERIOD = "book_start_after_period"
    SERIES_USAGE = "series_usage"
    SERIES_DAYS = "series_days"
    SERIES_CLOCK = "series_clock"
    SERIES_END_MISSING = "series_end_missing"
    SERIES_END_BEFORE_START = "series_end_before_start"
    SERIES_WEEKS = "series_weeks"
    BOOKING_NUMBER = "booking_number"
    EXTEND_HOW_MUCH = "extend_how_much"
    LIST_USAGE = "list_usage"
    CALENDAR_USAGE = "calendar_usage"
    CALENDAR_LINK_USAGE = "calendar_link_usage"
    CHART_USAGE = "chart_usage"
    STATUS_USAGE = "status_usage"
    STATUS_NO_MATCH = "status_no_match"
    FREE_USAGE = "free_usage"
    GPU_ADD_USAGE = "gpu_add_usage"
    GPU_SIZE_FORM = "gpu_size_form"
    GPU_RETIRE_USAGE = "gpu_retire_usage"
    GPU_EDIT_USAGE = "gpu_edit_usage"
    CHANNEL_USAGE = "channel_usage"
    STATS_USAGE = "stats_usage"
    AUDIT_USAGE = "audit_usage"
    DEVICES_USAGE = "devices_usage"
    LINK_USAGE = "link_usage"
    UNLINK_USAGE = "unlink_usage"
    ADMIN_LINK_USAGE = "admin_link_usage"
    GROUP_USAGE = "group_usage"
    LIMITS_USAGE = "limits_usage"
    QUEUE_USAGE = "queue_usage"
    WATCH_USAGE = "watch_usage"
    ADMIN_LIMITS_USAGE = "admin_limits_usage"
    BROKEN_BUTTON = "broken_button"
    FORM_LOST_BOOKING = "form_lost_booking"
    FORM_DURATION_MISSING = "form_duration_missing"
    FORM_FLEXIBLE_SERIES = "form_flexible_series"
    FORM_START_MISSING = "form_start_missing"
    FORM_GPU_MISSING = "form_gpu_missing"
    # why a `book` opened the form instead of booking (said at the top of the form)
    FORM_NOT_A_GPU = "form_not_a_gpu"
    FORM_NO_GPU = "form_no_gpu"
    FORM_NO_MEMORY = "form_no_memory"
    FORM_NO_START = "form_no_start"
    FORM_NO_DURATION = "form_no_duration"
    FORM_NO_TASK = "form_no_task"

    # calendar links (ICS feeds) and charts: answers as well as refusals
    CALENDAR_LINK_NEEDS_URL = "calendar_link_needs_url"
    CALENDAR_LINK_OWN = "calendar_link_own"
    CALENDAR_LINK_GPU = "calendar_link_gpu"
    CALENDAR_LINK_HOW = "calendar_link_how"
    CALENDAR_LINK_SENT = "calendar_link_sent"
    CALENDAR_LINKS_REVOKED = "calendar_links_revoked"
    CALENDAR_LINKS_NONE = "calendar_links_none"
    FEED_NAME_OWN = "feed_name_own"
    FEED_NAME_GPU = "feed_name_gpu"
    FEED_EVENT = "feed_event"
    CHART_NEEDS_MATPLOTLIB = "chart_needs_matplotlib"
    CHART_NEEDS_SCOPE = "chart_needs_scope"
    CHART_SENT = "chart_sent"


_SIZE_FORMS = "like [[20GB]], [[512MiB]] or [[50%]]"
_DURATION_FORMS = "like [[90m]], [[1h30m]] or [[2d]]"
_TIME_FORMS = (
    "like [[now]], [[in 2h]], [[14:00]], [[2pm]], [[tomorrow 9am]], [[mon 10:00]] "
    "or [[2026-12-01 09:00]]"
)
_USER_ID_FORMS = "like [[U0123ABCD]] (in Slack: the person's profile → ⋮ → Copy member ID)"

WORDING: dict[Code, str] = {
    Code.DATABASE_UNAVAILABLE: "gpubook can't reach its database right now; nothing was changed — try again in a minute.",
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
    Code.TIME_UNREADABLE_NEAR: "I can't read {typed} as a time. Did you mean {suggestion}?",
    Code.TIME_BAD_MINUTE: "{typed} has no minute {minute}; minutes go from 00 to 59.",
    Code.TIME_BAD_HOUR: "{typed} has no hour {hour}; use 0–23, or 1–12 with am/pm.",
    Code.TIME_BAD_HOUR_12: "{typed} has no hour {hour}; with am/pm use 1–12, like [[9am]].",
    Code.TIME_BAD_SIXTIETH: "{typed} has {value:minute or second|minutes or seconds}; they go from 00 to 59.",
    Code.TIME_BAD_OFFSET: "{typed} is not a UTC offset; write it like [[+01:00]] or [[Z]].",
    Code.DATE_UNREADABLE: "I can't read {typed} as a date; write it like [[2026-12-01]].",
    Code.DATE_IMPOSSIBLE: "There is no date {typed}; write it like [[2026-12-01]].",
    Code.DAY_UNREADABLE: "I can't read {typed} as a day. Try [[today]], [[tomorrow]], [[friday]] or [[2026-12-01]].",
    Code.DAY_UNREADABLE_NEAR: "I can't read {typed} as a day. Did you mean {suggestion}?",
    Code.DAY_NEEDS_TIME: "Add a time to {typed}, like {morning} or {afternoon}.",
    Code.NEXT_NEEDS_WEEKDAY: "After [[next]], name a weekday: [[next mon 9am]] is 9:00 on the Monday of next week.",
    Code.CLOCK_SKIPPED: "{typed} does not exist on {day} in {zone} (the clocks go forward), so it was read as {read}.",
    Code.CLOCK_TWICE: "{typed} happens twice on {day} in {zone} (the clocks go back); it was read as the first, {read}. For the second, write {later}.",
    Code.SETTING_EMPTY_DURATION: "{key} is empty; give a duration like [[8h]].",
    Code.SETTING_NOT_DURATION: "{key}={value} is not a duration; write it like [[15m]] or [[1h]].",
    Code.SETTING_MIN_OVER_MAX: "GPUBOOK_MIN_DURATION is longer than GPUBOOK_MAX_DURATION; make the minimum smaller.",
    Code.SETTING_NOT_DATABASE_URL: "DATABASE_URL={value} is not a database URL; use [[sqlite:///FILE]] or [[postgresql://USER:PASSWORD@HOST/DATABASE]].",
    Code.SETTING_UNSUPPORTED_DATABASE: "DATABASE_URL uses {backend}, which gpubook does not support; use [[sqlite:///FILE]] or [[postgresql://USER:PASSWORD@HOST/DATABASE]].",
    Code.SETTING_NOT_HTTP_URL: "{key}={value} is not an http(s) URL; write it like [[https://slack.com/api/]].",
    Code.SETTING_NOT_HOST: "HOST={value} is not an address to listen on; write an IP address like [[127.0.0.1]] or a host name, or leave it unset for all interfaces.",
    Code.SETTING_NOT_INTEGER: "{key}={value} is not valid; give a whole number from {low} to {high}.",
    Code.SETTING_NOT_BOOLEAN: "{key}={value} is not valid; write [[true]] or [[false]].",
    Code.SETTING_NOT_LOG_LEVEL: "GPUBOOK_LOG_LEVEL={value} is not a log level; write one of {levels}.",
    Code.FILE_EXISTS: "{path} already exists; give a new file name.",
    Code.FILE_NO_FOLDER: "Can't write {path}: the folder {folder} does not exist.",
    Code.FILE_CANT_WRITE: "Can't write {path}: {reason}.",
    Code.FILE_CANT_READ: "Can't read {path}: {reason}.",
    Code.FILE_NOT_TEXT: "Can't read {path}: it is not UTF-8 text.",
    Code.DATABASE_FAILED: "The database at {url} failed: {reason}.",
    Code.SYSTEM_FAILURE: "Stopped: the system said {reason}.",
    Code.UNEXPECTED_FAILURE: "Stopped by an unexpected error ({reason}); nothing more was done. Please report it.",
    Code.SETTING_NOT_SIZE: "{key}={value} is not a size; write it like [[512MiB]] or [[1GB]].",
    Code.SETTING_NOT_EMAIL_DOMAIN: "GPUBOOK_LINK_BY_EMAIL=true needs GPUBOOK_LINK_EMAIL_DOMAIN, the domain of your people's Slack e-mail addresses, like [[example.org]] (got {value}).",
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
    Code.USER_ID_MISSING: f"Give a Slack user id, {_USER_ID_FORMS}.",
    Code.USER_ID_INVALID: f"{{typed}} is not a Slack user id; give one {_USER_ID_FORMS}.",
    Code.CHANNEL_ID_INVALID: "{typed} is not a Slack channel id; give one like [[C0123ABCD]] (in Slack: the channel's name → About, at the bottom).",
    Code.USER_UNKNOWN: "Slack has no user {typed} in this workspace; check the member ID.",
    Code.USER_DEACTIVATED: "{typed} is a deactivated Slack account; give someone who can use gpubook.",
    Code.CHANNEL_UNKNOWN: "Slack has no channel {typed} that gpubook can see; check the channel ID.",
    Code.SLACK_UNCHECKED: "Couldn't ask Slack whether {typed} exists ({reason}); going ahead without checking.",
    Code.NOT_INSTALLED: "gpubook is not installed in this workspace any more, so it can't answer. An admin can install it again from its install page; the bookings made before are kept.",
    Code.GPU_NAME_INVALID: "{name} can't be a GPU name: use lower-case letters, digits, [[.]], [[_]] and [[-]] (up to 32), like [[a100-3]], and not a word the commands use, such as [[any]], [[week]], a size, a day or a time.",
    Code.GPU_EXISTS: "A GPU named {name} already exists.",
    Code.GPU_EXISTS_RETIRED: "A GPU named {name} already exists (it is retired; pick another name).",
    Code.GPU_SIZE_NOT_POSITIVE: "A GPU's memory must be positive, like [[24GB]].",
    Code.GPU_CANNOT_SHRINK: "{gpu} has bookings holding up to {held} at once; it can't shrink to {size}. Cancel or move them first.",
    Code.GPU_STILL_BOOKED: "{gpu} still has {count:upcoming or active booking}. Wait until they end, or retire it with the cancel-future option ([[/admin gpu retire {name} cancel-future]]): running bookings end now, later ones are cancelled, and their owners are told.",
    Code.OVER_CARD: "{gpu} has only {capacity}; you asked for {asked}.",
    Code.OVER_LARGEST: "{gpu} has only {capacity}, and no GPU has more; you asked for {asked}.",
    Code.NO_GPU_BIG_ENOUGH: "No GPU has {asked}: the largest is {gpu} with {capacity}.",
    Code.DEVICE_UUID_INVALID: "{uuid} is not a device UUID; copy it from [[nvidia-smi -L]] or from the unbound devices list, like [[GPU-8f1c2d3e-…]].",
    Code.DEVICE_UUID_TAKEN: "Device {uuid} is already bound to {gpu}; clear it there first.",
    Code.LOGIN_INVALID: "{login} is not a Unix login; give yours as the GPU hosts know it, like [[alice]].",
    Code.LOGIN_TAKEN: "The login {login} is linked to {owner}; ask them or an admin to unlink it first.",
    Code.LOGIN_NOT_LINKED: "The login {login} is not linked to anyone.",
    Code.USAGE_OVERUSE: "Your processes on {gpu} use {used}, but your bookings there hold {booked}: others may run out of memory.",
    Code.USAGE_RAISE_FITS: "Raising booking #{id} to {size} fits now.",
    Code.USAGE_RAISE_NO_ROOM: "Booking #{id} can't be raised to {size}: the card has no room for it. Please use less memory.",
    Code.USAGE_OVERUSE_CHANNEL: "{owner} uses {used} on {gpu} while holding {booked}: memory others booked there is at risk.",
    Code.USAGE_UNBOOKED: "Your processes on {gpu} use {used}, and you have no booking there. Book it so others know it is taken, or stop them.",
    Code.USAGE_IDLE: "Your booking #{id} of {size} on {gpu} has had no process of yours for {idle}. Release it for others, or keep it.",
    Code.USAGE_IDLE_RELEASE: "It is released {at} unless you keep it.",
    Code.USAGE_SILENT_HOST: "The host {host} has sent no usage report since {since}: its cards show no live data. Check its agent on the host with [[gpubook agent --once --print]].",
    Code.USAGE_EPISODE_GONE: "That has cleared already; there is nothing to do.",
    Code.USAGE_DISMISSED: "Dismissed: I won't tell you again while this lasts.",
    Code.USAGE_KEPT: "Kept: booking #{id} stays yours, and I won't ask again while it is idle.",
    Code.AGENT_HOST_INVALID: "{host} can't be a host name: use letters, digits, [[.]], [[_]] and [[-]] (up to 128), like [[gpu-host-1]].",
    Code.AGENT_TOKEN_UNKNOWN: "There is no active agent token {which}; see them with [[gpubook agent token list]].",
    Code.REPORT_NO_TOKEN: "Send the host's token as the header [[Authorization: Bearer TOKEN]].",
    Code.REPORT_BAD_TOKEN: "That token is unknown or revoked; an admin creates one with [[gpubook agent token create HOST]].",
    Code.REPORT_WRONG_HOST: "This token was issued for host {token_host}, not {host}.",
    Code.REPORT_DEVICE_ELSEWHERE: "The card {uuid} is reported by host {host} (last at {seen}); a card moves to another host only once its old host has not reported it for {window}. Nothing was stored.",
    Code.REPORT_CONTENT_TYPE: "Send the report as [[Content-Type: application/json]].",
    Code.REPORT_TOO_LARGE: "The report is larger than {limit} bytes; nothing was stored.",
    Code.REPORT_NOT_JSON: "The body is not JSON ({reason}); nothing was stored.",
    Code.REPORT_NOT_OBJECT: "The report must be a JSON object with host, sent_at and devices.",
    Code.REPORT_FIELD_MISSING: "The report lacks {path}.",
    Code.REPORT_FIELD_TYPE: "{path} must be {expected}.",
    Code.REPORT_TOO_MANY: "{path} lists {count} entries; at most {limit} are accepted.",
    Code.REPORT_DUPLICATE_DEVICE: "Device {uuid} is listed twice in one report.",
    Code.RUN_GPU_NOT_HERE: "{gpu} is not a card of this host; its cards are: {gpus}.",
    Code.RUN_WHICH_GPU: "You have bookings under way on {gpus}; choose one with [[--gpu NAME]].",
    Code.RUN_NOT_YET: "Your booking #{id} on {gpu} starts {at}; run then.",
    Code.RUN_NOTHING_HERE: "No booking of yours (login {login}) is under way on this host's cards. A booking counts here once your Slack user is linked to that login ([[/link {name}]]).",
    Code.RUN_NOTHING_ON: "No booking of yours (login {login}) is under way on {gpu}.",
    Code.RUN_OFFER: "{free} is free on {gpu} now; book and run at once with {example}.",
    Code.RUN_NO_AGENT: "No gpubook agent answers at {path} ({reason}); ask an admin to run [[gpubook agent]] on this host, or set GPUBOOK_AGENT_SOCKET to where it listens.",
    Code.RUN_NOT_HEARD: "The agent on this host has not heard from the bot yet, so it does not know the bookings; try again in a moment.",
    Code.RUN_STALE: "The agent on this host has not heard from the bot since {since}, so it cannot tell which bookings are current; try again once it reports.",
    Code.RUN_BOOK_UNLINKED: "The login {login} is not linked to a Slack user, so there is nobody to book for; link it in Slack with [[/link {name}]].",
    Code.RUN_BOOK_NO_CARDS: "The host {host} has no card bound to a GPU; an admin binds them ([[gpubook agent devices]] lists how).",
    Code.NOT_ENOUGH: "Not enough memory on {gpu} for {window}: {held} of {capacity} already held at the peak ({peak}), {free} free, {asked} asked.",
    Code.EARLIEST_HERE: "Earliest fit on {gpu}: {window}.",
    Code.SOONER_ELSEWHERE: "Sooner on {gpu}: {window}.",
    Code.FITS_ELSEWHERE: "It fits on {gpu}: {window}.",
    Code.NOTHING_FITS: "Nothing fits before {until}.",
    Code.NO_GPU_FREE: "No GPU has {asked} free for {window}.",
    Code.SOONEST_ANYWHERE: "The soonest window is on {gpu}, {window}.",
    Code.NOTHING_FITS_ANYWHERE: "Nothing fits on any GPU before {until}; ask for less memory or a shorter window.",
    Code.NOTHING_FITS_ON: "Nothing fits before {until} on {gpus}.",
    Code.TOO_SMALL_FOR: "Too small for {asked}: {gpus}.",
    Code.EXTENSION_NOT_ENOUGH: "Booking #{id} can't be extended by {by}; there is not enough memory on {gpu} for {window}: {held} of {capacity} already held at the peak ({peak}), {free} free, {asked} asked.",
    Code.EXTEND_AT_MOST: "The longest extension that fits is {longest}, until {until}.",
    Code.EXTEND_NONE: "No extension fits: the memory is taken right from its end ({end}).",
    Code.SERIES_TOO_MANY: "A series can have at most {limit} occurrences; end it sooner, like [[until 2027-03-01]] or [[for 4 weeks]].",
    Code.SERIES_EMPTY: "That series has no occurrence: none of its days falls between its first day and its end.",
    Code.SERIES_NEEDS_GPU: "A repeating booking needs a GPU named, not [[any]]: every occurrence is on the same card.",
    Code.SERIES_REFUSED: "{missed} of the {total} occurrences don't fit, so nothing was booked:",
    Code.SERIES_NONE_FIT: "None of the {total} occurrences fits, so nothing was booked:",
    # One line per occurrence that does not fit, under the sentence that says how many.
    Code.SERIES_MISS: "\n• {window}: {reason}",
    Code.SERIES_MISS_FULL: "\n• {window}: {held} of {capacity} on {gpu} already held at the peak, {free} free, {asked} asked.",
    Code.SERIES_MORE_MISSES: "\n…and {count} more.",
    Code.NOT_A_SERIES: "Booking #{id} is not part of a series; leave out [[series]] to {verb} it alone.",
    Code.SERIES_EDIT_REFUSED: "{missed} of the {total} occurrences can't take that change, so none was changed:",
    Code.SERIES_NOTHING_LATER: "Booking #{id} has started and no later occurrence of its series is left; edit it alone with [[/edit {id}]].",
    Code.GROUP_NAME_INVALID: "{name} can't be a group name: use lower-case letters, digits, [[-]] and [[_]] (up to 32), starting with a letter, like [[premium]].",
    Code.GROUP_EVERYONE_MEMBERS: "Everyone is in [[everyone]] already; its limits are the defaults, set with [[/admin limits everyone max-gbh 300]].",
    Code.GROUP_UNKNOWN: "There is no group {group}. See the groups with [[/admin group list]].",
    Code.LIMIT_UNKNOWN: "I don't know the limit {typed}; the limits are {names}.",
    Code.LIMIT_VALUE: "{typed} is not a value for {limit}: give a size like [[64GB]] for max-held, GB·hours like [[300]] for max-gbh, a number for max-open, a duration like [[8h]] for the others, or [[none]] to clear it.",
    Code.OVER_MAX_HELD: "That would have {owner} hold {total} at once across all GPUs ({held} already held at the peak, {peak}, plus {asked}); the max-held limit is {limit}.",
    Code.OVER_MAX_GBH: "That would bring {owner} to {total} over the last 7 days and ahead ({used} used or booked, plus {asked} for this booking); the max-gbh limit is {limit}.",
    Code.OVER_MAX_OPEN: "{owner} already has {count:upcoming or active booking}; the max-open limit is {limit}.",
    Code.LIMIT_FITS_FROM: "Within the limit it fits from {when}.",
    Code.LIMIT_NEVER_FITS: "This booking alone is over the limit; ask for less, or ask an admin.",
    Code.LIMIT_FREES_AT: "The next one ends {when}.",
    Code.LIMIT_FROM_GROUP: "That limit comes from the group {group}.",
    Code.QUEUE_NO_GPU_MATCHES: "No GPU matches {pattern}. See [[/status]].",
    Code.QUEUE_NOTHING_FITS: "{asked} for that long fits on no GPU it may use before {until}; ask for less, or give a later deadline.",
    Code.QUEUE_NOT_FLEXIBLE: "Booking #{id} is not flexible, so there is nothing to pin: it never moves.",
    Code.QUEUE_MOVED: "#{id} moved up: now {gpu} at {start} instead of {was_gpu} at {was_start}.",
    Code.QUEUE_SHIFTED: "#{id} moved to {gpu} instead of {was_gpu}, still at {start}: that made room for a booking in the queue.",
    Code.WATCH_DEADLINE_TOO_SOON: "A window of {length} cannot end before {deadline} any more; give a later deadline.",
    Code.WATCH_TOO_MANY: "You already wait with {count:watch|watches}, the most one person may have; cancel one first ([[/notify list]]).",
    Code.WATCH_NOT_FOUND: "You have no watch #{id}. See [[/notify list]].",
    Code.WATCH_CLOSED: "Watch #{id} is over already: nothing left to cancel.",
    Code.WATCH_STARTED: "Watch #{id}: I'll DM you once {asked} for {length} fits on {gpus} before {deadline} (right away if it already does).",
    Code.WATCH_CANCELLED: "Watch #{id} cancelled: no DM will come from it.",
    Code.WATCH_NONE: "You are not waiting for anything. Start with [[/notify 20GB for 2h]].",
    Code.WATCH_LINE: "#{id}: {asked} for {length} on {gpus}, before {deadline}",
    Code.WATCH_OPENED: "Watch #{id}: {asked} for {length} fits on {gpu}, {window}. It is not booked yet: book it before someone else does.",
    Code.WATCH_EXPIRED: "Watch #{id} expired: {asked} for {length} never fitted on {gpus} in time to end before {deadline}.",
    Code.NO_LIMIT: "no limit",
    Code.NOBODY: "nobody",
    Code.EVERYBODY: "every member of the workspace",
    Code.LIMIT_ENTRY: "{name} {value}",
    Code.GROUP_SHOWN: "Group {group} ({members}): {limits}.",
    Code.GROUP_NO_LIMITS: "no limits of its own",
    Code.GROUP_NONE_YET: "There are no groups yet; an admin makes one with [[/admin group add premium @ana]].",
    Code.STANDING_HELD: "You hold {now} now, and at most {peak} at once in what you have booked; your max-held is {limit}.",
    Code.STANDING_HELD_UNLIMITED: "You hold {now} now, and at most {peak} at once in what you have booked; no max-held limit.",
    Code.STANDING_GBH: "{used} of {limit} used or booked over the last 7 days and ahead; {free} free{more}.",
    Code.STANDING_GBH_AGES: ", until this week's use starts to age out {when}",
    Code.STANDING_GBH_UNLIMITED: "{used} used or booked over the last 7 days and ahead; no max-gbh limit.",
    Code.STANDING_OPEN: "{count:upcoming or active booking}; your max-open is {limit}.",
    Code.STANDING_OPEN_UNLIMITED: "{count:upcoming or active booking}; no max-open limit.",
    Code.STANDING_RULES: "Your bookings last at most {duration}, start at most {advance} ahead and are extended by at most {extension} in total.",
    Code.UNKNOWN_COMMAND: "I don't know [[/{typed}]]. Try [[/help]].",
    Code.UNKNOWN_COMMAND_NEAR: "I don't know [[/{typed}]]. Did you mean [[/{suggestion}]]? See [[/help]] for every command.",
    Code.BOOK_PERIOD_EXPECTED: "After the start, write [[for 3h]] or [[until 17:00]], then the task, like [[/book a100-1 20GB tomorrow 9:00 for 3h fine-tune]].",
    Code.END_NOT_AFTER_START: "The end {typed} is not after the start; give a later end, or use [[for 3h]].",
    Code.END_WRAPS_LONG: "{typed} is earlier in the day than the start ({start}), so the booking would end at {typed} the next day and last {length}. If you mean that, give the end with its day, like {explicit}; if not, correct the start or the end.",
    Code.BOOK_TWO_STARTS: "I read two starts, {first} and {second}. Give one start, then [[for 3h]] or [[until 17:00]], then the task (a task can't begin with a time).",
    Code.BOOK_TWO_PERIODS: "I read both {first} and {second}. Give one length, [[for 3h]] or [[until 17:00]], then the task (a task can't begin with a second one).",
    Code.BOOK_START_AFTER_PERIOD: "Give the start before the length, like {fixed}, then the task.",
    Code.SERIES_USAGE: "A repeating booking reads like [[/book rtx-0 8GB weekdays 09:00 until 17:00 until 2027-03-01 nightly-ci]] or [[/book rtx-0 8GB every mon,wed 10:00 for 2h for 4 weeks sync]].",
    Code.SERIES_DAYS: "I can't read {typed} as days; write them like [[every mon,wed]], [[every day]] or [[weekdays]].",
    Code.SERIES_CLOCK: "After {repeat}, give the time of day, like [[09:00]] or [[2pm]], then [[for 2h]] or [[until 17:00]].",
    Code.SERIES_END_MISSING: "Say when the series ends, after its hours: [[until 2027-03-01]], [[for 4 weeks]] or [[10 times]].",
    Code.SERIES_END_BEFORE_START: "The series would end on {last}, before its first day ({first}); give a later end.",
    Code.SERIES_WEEKS: "Give a whole number of weeks or times from 1, like [[for 4 weeks]] or [[10 times]].",
    Code.BOOKING_NUMBER: "Give the booking number, like [[/{verb} 42]] (see [[/list]]).",
    Code.EXTEND_HOW_MUCH: "Say how much longer, like [[/extend 42 2h]].",
    Code.LIST_USAGE: "Use [[/list]] for your bookings or [[/list all]] for everyone's.",
    Code.CALENDAR_USAGE: "Use [[/calendar [gpu] [day|week]]], like [[/calendar a100-1 friday]].",
    Code.CALENDAR_LINK_USAGE: "Use [[/calendar link]] for your bookings, [[/calendar link a100-1]] for everyone's on a GPU, or [[/calendar link revoke]] to turn off all your links.",
    Code.CHART_USAGE: "Use [[/chart [gpu] [day|week] [date]]], like [[/chart a100-1 week monday]].",
    Code.STATUS_USAGE: "[[/status]] takes at most one GPU name or pattern, like [[/status a100-*]].",
    Code.STATUS_NO_MATCH: "No GPU's name matches {pattern}. See [[/status]].",
    Code.FREE_USAGE: "Use [[/free <size> [for <duration>]]], like [[/free 40GB for 4h]].",
    Code.GPU_ADD_USAGE: "Give the name and memory, like [[/admin gpu add a100-3 80GB]].",
    Code.GPU_SIZE_FORM: "Give the GPU's memory as a size, like [[80GB]].",
    Code.GPU_RETIRE_USAGE: "Give the GPU to retire, like [[/admin gpu retire a100-3]] (add [[cancel-future]] to end or cancel its bookings).",
    Code.GPU_EDIT_USAGE: "Say what to change, like [[/admin gpu edit a100-3 size 40GB]], [[… rename a100-4]], [[… description A100 in rack 2]] or [[… uuid GPU-8f1c2d3e-…]] (the card it is; [[uuid none]] unbinds).",
    Code.CHANNEL_USAGE: "Mention the channel, like [[/admin channel #gpu-bookings]] (or [[/admin channel #gpu-bookings a100-3]] for one GPU).",
    Code.STATS_USAGE: "Give the number of days, from 1 to {max}, like [[/admin stats 30]].",
    Code.AUDIT_USAGE: "Give how many entries to show, from 1 to {max}, like [[/admin audit 50]].",
    Code.DEVICES_USAGE: "[[/admin devices]] takes nothing after it.",
    Code.LINK_USAGE: "Give your Unix login on the GPU hosts, like [[/link alice]].",
    Code.UNLINK_USAGE: "Give the login to unlink, like [[/unlink alice]].",
    Code.ADMIN_LINK_USAGE: "Mention the person, then the login, like [[/admin link @alice alice]].",
    Code.GROUP_USAGE: "Use [[/admin group add premium @ana @ben]], [[/admin group remove premium @ana]] (no one named: the whole group and its limits) or [[/admin group list]].",
    Code.WATCH_USAGE: "Use [[/notify 20GB for 2h]]; then you may add [[on a100-*]] and [[before fri 18:00]], then the task the booking gets; [[/notify list]] shows yours, [[/notify cancel 3]] ends one.",
    Code.QUEUE_USAGE: "Use [[/book any 40GB for 4h asap train-x]]; after [[asap]] you may add [[on a100-*]], [[not before 14:00]] or [[by fri 18:00]], then the task.",
    Code.LIMITS_USAGE: "[[/limits]] takes nothing after it.",
    Code.ADMIN_LIMITS_USAGE: "Use [[/admin limits <group> <limit> <value>]], like [[/admin limits premium max-held 96GB]] or [[/admin limits everyone max-gbh 300]] ([[none]] clears a value).",
    Code.BROKEN_BUTTON: "That button's data is unreadable; run the command again for a fresh one.",
    Code.FORM_LOST_BOOKING: "This form lost track of its booking; open it again from the booking.",
    Code.FORM_FLEXIBLE_SERIES: "A flexible booking is one window that moves; untick it, or choose Does not repeat.",
    Code.FORM_DURATION_MISSING: "Give a duration, like [[2h]] or [[90m]].",
    Code.FORM_START_MISSING: "Pick a start.",
    Code.FORM_GPU_MISSING: 'Pick a GPU, or "Any GPU".',
    Code.FORM_NOT_A_GPU: "{gpu} is not a GPU here: pick one below.",
    Code.FORM_NO_GPU: "No GPU was given: pick one below.",
    Code.FORM_NO_MEMORY: "No memory was given: set it below.",
    Code.FORM_NO_START: "No start time was given: pick one below.",
    Code.FORM_NO_DURATION: "No duration was given: set it below.",
    Code.FORM_NO_TASK: "No task was given: say below what the GPU is for.",
    Code.CALENDAR_LINK_NEEDS_URL: "Calendar links need the address where gpubook answers on the web: ask the operator to set GPUBOOK_PUBLIC_URL, like [[https://gpus.example.com]].",
    Code.CALENDAR_LINK_OWN: "Your private calendar link for your own bookings: {url}",
    Code.CALENDAR_LINK_GPU: "Your private calendar link for everyone's bookings on {gpu}: {url}",
    Code.CALENDAR_LINK_HOW: "Subscribe to it from your calendar (Google Calendar: Other calendars, From URL; Outlook and Apple Calendar: subscribe to a calendar from the web). Anyone with the link can read these bookings: it replaces your earlier link for the same calendar, and [[/calendar link revoke]] turns off all your links.",
    Code.CALENDAR_LINK_SENT: "I've sent you the link in a direct message.",
    Code.CALENDAR_LINKS_REVOKED: "Turned off your {count:calendar link}; calendars subscribed to them stop updating. Make a new one with [[/calendar link]].",
    Code.CALENDAR_LINKS_NONE: "You have no calendar links to turn off.",
    Code.FEED_NAME_OWN: "gpubook: my bookings",
    Code.FEED_NAME_GPU: "gpubook: {gpu}",
    Code.FEED_EVENT: "Booking #{id} on {gpu}: {size} of {capacity}, booked by {owner}.",
    Code.CHART_NEEDS_MATPLOTLIB: "Charts need matplotlib, which this gpubook was installed without; ask the operator to install it with [[pip install 'gpubook[chart]']].",
    Code.CHART_NEEDS_SCOPE: "I can't send pictures yet: this installation of gpubook lacks Slack's files:write permission. Ask a workspace admin to reinstall the app from its updated manifest.",
    Code.CHART_SENT: "I've sent you the chart of {gpu} in a direct message.",
}
