"""What a `/gpubook` text means once read: one frozen object per subcommand.

Kept free of Slack and of the database, so the whole grammar is testable with a fixed clock; each
class is what one registry entry's parser returns and its handler receives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.core.limits import LimitName
from bot.core.recurrence import Recurrence
from bot.core.sentence import Sentence

DEFAULT_AUDIT_ENTRIES = 20
MAX_AUDIT_ENTRIES = 200
CANCEL_FUTURE = "cancel-future"
#: `cancel 42 series`: the word that widens a change to the rest of the booking's series.
SERIES_WORD = "series"
#: The word after `book` with which an admin books past the owner's limits (audited).
OVERRIDE = "override"
#: The word after a length that makes a booking flexible (the queue).
ASAP = "asap"


class Command:
    """What every parsed subcommand is, so a parser's result has one type."""


@dataclass(frozen=True)
class OpenModal(Command):
    """Bare `/gpubook`: open the booking modal."""


@dataclass(frozen=True)
class Book(Command):
    """`book <gpu|any> <size> <start> for <duration>|until <end> [task…]`.

    ``gpu`` is ``None`` for `any` (auto-placement) or when missing. ``size_text`` stays text because
    `50%` only means something once the GPU is chosen. Exactly one of ``end``/``duration`` is set
    when the request is complete; ``missing`` names absent parts, in grammar order, from
    ``("gpu", "size", "start", "duration", "task")``. ``notes`` say how a wall time was read
    when DST made it odd (it did not exist, or happened twice), for the confirmation to show.
    """

    gpu: str | None
    size_text: str | None
    start: datetime | None
    end: datetime | None
    duration: timedelta | None
    task: str | None
    missing: tuple[str, ...] = ()
    notes: tuple[Sentence, ...] = ()
    override_limits: bool = False

    @property
    def any_gpu(self) -> bool:
        """Whether it asked for automatic placement (`book any …`) rather than naming no GPU:
        an incomplete one opens the form with "Any GPU" selected."""
        return self.gpu is None and "gpu" not in self.missing


@dataclass(frozen=True)
class BookFlexible(Command):
    """`book <any|pattern> <size> for <duration> asap [on <pattern>] [not before <time>]
    [by <time>] <task>`: placed at the earliest fit, moved earlier when memory frees."""

    size_text: str
    duration: timedelta
    task: str
    pattern: str | None = None
    not_before: datetime | None = None
    deadline: datetime | None = None


@dataclass(frozen=True)
class Notify(Command):
    """`notify <size> for <duration> [on <pattern>] [before <time>] [task…]`: a watch, told
    once by DM when such a window opens."""

    size_text: str
    duration: timedelta
    pattern: str | None = None
    deadline: datetime | None = None
    task: str | None = None


@dataclass(frozen=True)
class NotifyList(Command):
    """`notify list`: the asker's open watches."""


@dataclass(frozen=True)
class NotifyCancel(Command):
    """`notify cancel <id>`: stop a watch."""

    watch_id: int


@dataclass(frozen=True)
class BookSeries(Command):
    """`book <gpu> <size> <repeat> <clock> for <duration>|until <clock> <end> [task…]`: a series
    (see :mod:`handlers.commands.series_grammar`). ``gpu`` is ``None`` for `any`, which the
    service refuses for a series."""

    gpu: str | None
    size_text: str
    rule: Recurrence
    task: str


@dataclass(frozen=True)
class ListBookings(Command):
    """`list` (mine) or `list all` (everyone's)."""

    everyone: bool = False


@dataclass(frozen=True)
class Cancel(Command):
    """`cancel 42`, or `cancel 42 series`: that occurrence and the later ones of its series."""

    booking_id: int
    series: bool = False


@dataclass(frozen=True)
class Release(Command):
    booking_id: int


@dataclass(frozen=True)
class Edit(Command):
    """`edit 42`, or `edit 42 series`: the occurrences of its series not started, from it on."""

    booking_id: int
    series: bool = False


@dataclass(frozen=True)
class Extend(Command):
    booking_id: int
    by: timedelta


@dataclass(frozen=True)
class Calendar(Command):
    """`calendar [gpu] [day|week]`; ``week`` with a ``day`` means the week starting that day."""

    gpu: str | None = None
    day: date | None = None
    week: bool = False


@dataclass(frozen=True)
class CalendarLink(Command):
    """`calendar link [gpu]`: a private feed URL of your bookings, or of everyone's on ``gpu``."""

    gpu: str | None = None


@dataclass(frozen=True)
class CalendarLinkRevoke(Command):
    """`calendar link revoke`: turn off every calendar link of the asker."""


@dataclass(frozen=True)
class Chart(Command):
    """`chart [gpu] [day|week] [date]`: the memory timeline as a picture, by DM."""

    gpu: str | None = None
    day: date | None = None
    week: bool = False


@dataclass(frozen=True)
class Status(Command):
    """`status [pattern]`: every GPU's use right now, or that of the GPUs whose names match
    ``pattern`` (:func:`bot.core.pool.matches`)."""

    pattern: str | None = None


@dataclass(frozen=True)
class Free(Command):
    """`free <size> [for <duration>]`; ``duration`` ``None`` lets the caller use its default."""

    size_text: str
    duration: timedelta | None = None


@dataclass(frozen=True)
class Help(Command):
    """`help`."""


@dataclass(frozen=True)
class AdminGpuAdd(Command):
    name: str
    size_text: str
    description: str | None = None


@dataclass(frozen=True)
class AdminGpuRetire(Command):
    """`admin gpu retire <name> [cancel-future]`: with the option, its bookings end or are cancelled."""

    name: str
    cancel_future: bool = False


@dataclass(frozen=True)
class AdminGpuEdit(Command):
    """`admin gpu edit <name> size <SIZE> | rename <NEW> | description <TEXT…> | uuid <UUID>`:
    one change each (`uuid none` unbinds the card)."""

    name: str
    size_text: str | None = None
    new_name: str | None = None
    description: str | None = None
    device_uuid: str | None = None


@dataclass(frozen=True)
class AdminChannel(Command):
    """`admin channel #channel [gpu]`: the workspace's notification channel, or one GPU's."""

    channel_id: str
    gpu: str | None = None


@dataclass(frozen=True)
class AdminDevices(Command):
    """`admin devices`: cards that report but are bound to no GPU."""


@dataclass(frozen=True)
class AdminAudit(Command):
    """`admin audit [n]`: the latest ``limit`` audit entries."""

    limit: int = 20


@dataclass(frozen=True)
class AdminStats(Command):
    days: int = 7


@dataclass(frozen=True)
class Link(Command):
    """`link [login]`: link a Unix login to yourself, or (without one) show your logins."""

    login: str | None = None


@dataclass(frozen=True)
class Unlink(Command):
    """`unlink <login>`."""

    login: str


@dataclass(frozen=True)
class AdminLink(Command):
    """`admin link @user <login>`: link (or move) a login to someone."""

    user_id: str
    login: str


@dataclass(frozen=True)
class ShowLimits(Command):
    """`limits`: where the asker stands against their limits."""


@dataclass(frozen=True)
class AdminGroup(Command):
    """`admin group add|remove <group> [@user…]` and `admin group list` (``action`` "list")."""

    action: str
    group: str | None = None
    user_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdminLimits(Command):
    """`admin limits <group> <limit> <value>`; ``value`` ``None`` clears the group's setting."""

    group: str
    limit: LimitName
    value: int | None
