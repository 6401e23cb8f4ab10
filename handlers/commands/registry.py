"""Every `/gpubook` subcommand, declared once: its words, grammar, help, handler and traits.

Parsing (``parse_command``), the help message (``EXAMPLES``), dispatch, the metric labels
(``VERBS``) and the pipeline's choices (how long to wait for the user's profile, whether to add
the UTC note, whether to refresh App Homes) all read this table, so a new subcommand is one
:class:`Verb` here, its parser, its handler and its builders.

Longer than 400 lines on purpose: past the few lines of machinery it is one declarative table,
a :class:`Verb` per subcommand, and the point is to see them all in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.typos import nearest
from handlers.blocks.common import Message
from handlers.blocks.help import help_message
from handlers.commands import (
    admin_answers,
    admin_grammar,
    answers,
    calendar_answers,
    calendar_grammar,
    grammar,
    usage_answers,
    usage_grammar,
    watch_answers,
    watch_grammar,
)
from handlers.commands.queue_grammar import parse_any_book
from handlers.commands.syntax import (
    MAX_AUDIT_ENTRIES,
    Book,
    BookFlexible,
    BookSeries,
    Command,
    Help,
    OpenModal,
)
from handlers.pipeline import Request, always, never

#: Reads the words after a verb: (words, now, zone) → the parsed command.
Parser = Callable[[list[str], datetime, ZoneInfo], Command]
#: Answers a parsed command (``None`` when it opened a form instead).
Handler = Callable[[Request, Any], Awaitable[Message | None]]


class Usage(NamedTuple):
    """One line of the help: the form, an example that parses, what it does."""

    form: str
    example: str
    explanation: str


def _book_is_incomplete(command: Book | BookSeries | BookFlexible) -> bool:
    """A `book` missing parts opens the form pre-filled with what was given (a series that
    lacks parts is refused with its form instead)."""
    return isinstance(command, Book) and bool(command.missing)


@dataclass(frozen=True)
class Verb:
    """One subcommand."""

    #: The words that name it (`admin gpu add` is three); none for bare `/gpubook`.
    words: tuple[str, ...]
    parse: Parser
    handle: Handler
    help: tuple[Usage, ...]
    #: It changes bookings (or how they read): App Homes are refreshed after it.
    changes: bool = False
    #: It reads or shows times in the user's zone: its parse depends on the clock and the zone,
    #: and its answer says when that zone is only a UTC fallback.
    zoned: bool = False
    #: Whether the parsed command opens a form; a pure test of the command, so deciding how
    #: long the request may wait never parses the text again.
    opens_form: Callable[[Any], bool] = never


async def _help(request: Request, command: Help) -> Message:
    is_admin = request.deps.service.is_admin(request.actor)
    blocks = help_message(EXAMPLES, is_admin=is_admin, tz=request.actor.tz)
    return Message("gpubook help", blocks)


def _parse_bare(args: list[str], now: datetime, tz: ZoneInfo) -> OpenModal:
    return OpenModal()


REGISTRY: tuple[Verb, ...] = (
    Verb(
        (),
        _parse_bare,
        answers.open_form,
        (Usage("/gpubook", "/gpubook", "Open the booking form."),),
        opens_form=always,
    ),
    Verb(
        ("book",),
        parse_any_book,
        answers.book,
        (
            Usage(
                "/gpubook book <gpu|any> <size> <start> for <duration> <task>",
                "/gpubook book a100-1 20GB tomorrow 9:00 for 3h fine-tune",
                "Book memory on a GPU (`any` picks one for you).",
            ),
            Usage(
                "/gpubook book <gpu|any> <size> <start> until <end> <task>",
                "/gpubook book any 20GB now until 17:00 eval run",
                "Book until a given time instead of for a duration.",
            ),
            Usage(
                "/gpubook book <gpu> <size> <repeat> <time> for <duration>|until <time> "
                "until <day>|for <n> weeks|<n> times <task>",
                "/gpubook book a100-1 8GB weekdays 09:00 until 17:00 for 4 weeks nightly-ci",
                "Book a series: `daily`, `weekdays` or `every mon,wed`; all or nothing, at most 100.",
            ),
            Usage(
                "/gpubook book <any|pattern> <size> for <duration> asap [on <pattern>] "
                "[not before <time>] [by <time>] <task>",
                "/gpubook book any 40GB for 4h asap train-x",
                "Queue: book at the earliest fit; it moves earlier by itself when memory frees.",
            ),
            Usage(
                "/gpubook book override <gpu|any> <size> <start> for <duration> <task>",
                "/gpubook book override any 80GB now for 2d urgent rerun",
                "Admin: book past the owner's limits (audited).",
            ),
        ),
        changes=True,
        zoned=True,
        opens_form=_book_is_incomplete,
    ),
    Verb(
        ("list",),
        grammar.parse_list,
        answers.list_bookings,
        (
            Usage("/gpubook list", "/gpubook list", "Your upcoming and active bookings."),
            Usage(
                "/gpubook list all", "/gpubook list all", "Everyone's upcoming and active bookings."
            ),
        ),
    ),
    Verb(
        ("notify",),
        watch_grammar.parse_notify,
        watch_answers.notify,
        (
            Usage(
                "/gpubook notify <size> for <duration> [on <pattern>] [before <time>] [task]",
                "/gpubook notify 20GB for 2h on a100-* before fri 18:00 fine-tune",
                "Watch: a DM with a Book button when such a window opens (once; it expires at "
                "the deadline).",
            ),
        ),
        zoned=True,
    ),
    Verb(
        ("notify", "list"),
        watch_grammar.parse_notify_list,
        watch_answers.notify_list,
        (Usage("/gpubook notify list", "/gpubook notify list", "Your watches."),),
        zoned=True,
    ),
    Verb(
        ("notify", "cancel"),
        watch_grammar.parse_notify_cancel,
        watch_answers.notify_cancel,
        (Usage("/gpubook notify cancel <id>", "/gpubook notify cancel 3", "Stop a watch."),),
    ),
    Verb(
        ("cancel",),
        grammar.parse_cancel,
        answers.cancel,
        (
            Usage(
                "/gpubook cancel <id>",
                "/gpubook cancel 42",
                "Cancel a booking that has not started.",
            ),
            Usage(
                "/gpubook cancel <id> series",
                "/gpubook cancel 42 series",
                "End a series from this occurrence on (later ones are cancelled).",
            ),
        ),
        changes=True,
    ),
    Verb(
        ("release",),
        grammar.parse_release,
        answers.release,
        (Usage("/gpubook release <id>", "/gpubook release 42", "End an active booking early."),),
        changes=True,
    ),
    Verb(
        ("edit",),
        grammar.parse_edit,
        answers.edit,
        (
            Usage("/gpubook edit <id>", "/gpubook edit 42", "Change a booking in a form."),
            Usage(
                "/gpubook edit <id> series",
                "/gpubook edit 42 series",
                "Change the task, memory or length of a series from this occurrence on.",
            ),
        ),
        opens_form=always,
    ),
    Verb(
        ("extend",),
        grammar.parse_extend,
        answers.extend,
        (
            Usage(
                "/gpubook extend <id> <duration>", "/gpubook extend 42 2h", "Make a booking longer."
            ),
        ),
        changes=True,
    ),
    Verb(
        ("calendar",),
        grammar.parse_calendar,
        answers.calendar,
        (
            Usage(
                "/gpubook calendar [gpu] [day|week]",
                "/gpubook calendar a100-1 friday",
                "Bookings and memory held over a day or a week.",
            ),
        ),
        zoned=True,
    ),
    Verb(
        ("calendar", "link"),
        calendar_grammar.parse_calendar_link,
        calendar_answers.calendar_link,
        (
            Usage(
                "/gpubook calendar link [gpu]",
                "/gpubook calendar link a100-1",
                "A private calendar (ICS) link by DM: your bookings, or everyone's on a GPU.",
            ),
        ),
    ),
    Verb(
        ("calendar", "link", "revoke"),
        calendar_grammar.parse_calendar_link_revoke,
        calendar_answers.calendar_link_revoke,
        (
            Usage(
                "/gpubook calendar link revoke",
                "/gpubook calendar link revoke",
                "Turn off all your calendar links.",
            ),
        ),
    ),
    Verb(
        ("chart",),
        calendar_grammar.parse_chart,
        calendar_answers.chart,
        (
            Usage(
                "/gpubook chart [gpu] [day|week] [date]",
                "/gpubook chart a100-1 week monday",
                "A picture of the memory held over a day or a week, by DM.",
            ),
        ),
        zoned=True,
    ),
    Verb(
        ("status",),
        grammar.parse_status,
        answers.status,
        (
            Usage("/gpubook status", "/gpubook status", "Every GPU's use right now."),
            Usage(
                "/gpubook status <gpu or pattern>",
                "/gpubook status a100-*",
                "The same for the GPUs whose names match (a plain word: that start with it).",
            ),
        ),
    ),
    Verb(
        ("free",),
        grammar.parse_free,
        answers.free,
        (
            Usage(
                "/gpubook free <size> [for <duration>]",
                "/gpubook free 40GB for 4h",
                "When and where that much memory is free soonest.",
            ),
        ),
    ),
    Verb(
        ("limits",),
        grammar.parse_limits,
        answers.limits,
        (
            Usage(
                "/gpubook limits",
                "/gpubook limits",
                "Your limits: memory held at once, GB·hours this week, open bookings.",
            ),
        ),
    ),
    Verb(
        ("link",),
        usage_grammar.parse_link,
        usage_answers.link,
        (
            Usage(
                "/gpubook link [login]",
                "/gpubook link alice",
                "Link your Unix login on the GPU hosts, so gpubook sees your use; alone, list yours.",
            ),
        ),
    ),
    Verb(
        ("unlink",),
        usage_grammar.parse_unlink,
        usage_answers.unlink,
        (Usage("/gpubook unlink <login>", "/gpubook unlink alice", "Unlink a Unix login."),),
    ),
    Verb(
        ("help",),
        grammar.parse_help,
        _help,
        (Usage("/gpubook help", "/gpubook help", "This help."),),
    ),
    Verb(
        ("admin", "gpu", "add"),
        admin_grammar.parse_gpu_add,
        admin_answers.gpu_add,
        (
            Usage(
                "/gpubook admin gpu add <name> <size> [description]",
                "/gpubook admin gpu add a100-3 80GB A100 in rack 2",
                "Admin: add a GPU.",
            ),
        ),
    ),
    Verb(
        ("admin", "gpu", "retire"),
        admin_grammar.parse_gpu_retire,
        admin_answers.gpu_retire,
        (
            Usage(
                "/gpubook admin gpu retire <name> [cancel-future]",
                "/gpubook admin gpu retire a100-3 cancel-future",
                "Admin: retire a GPU; `cancel-future` ends or cancels its bookings (owners are told).",
            ),
        ),
        changes=True,
    ),
    Verb(
        ("admin", "gpu", "edit"),
        admin_grammar.parse_gpu_edit,
        admin_answers.gpu_edit,
        (
            Usage(
                "/gpubook admin gpu edit <name> size <size> | rename <new> | description <text>",
                "/gpubook admin gpu edit a100-3 size 40GB",
                "Admin: resize, rename or describe a GPU.",
            ),
            Usage(
                "/gpubook admin gpu edit <name> uuid <device-uuid|none>",
                "/gpubook admin gpu edit a100-3 uuid GPU-8f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
                "Admin: bind a GPU to the card its host agent reports (`none` unbinds).",
            ),
        ),
        changes=True,
    ),
    Verb(
        ("admin", "devices"),
        admin_grammar.parse_devices,
        admin_answers.devices,
        (
            Usage(
                "/gpubook admin devices",
                "/gpubook admin devices",
                "Admin: cards that report but are bound to no GPU, with the commands to bind them.",
            ),
        ),
    ),
    Verb(
        ("admin", "channel"),
        admin_grammar.parse_channel,
        admin_answers.channel,
        (
            Usage(
                "/gpubook admin channel <#channel> [gpu]",
                "/gpubook admin channel #gpu-bookings a100-3",
                "Admin: post notifications in this channel (for one GPU, when named).",
            ),
        ),
    ),
    Verb(
        ("admin", "stats"),
        admin_grammar.parse_stats,
        admin_answers.stats,
        (
            Usage(
                "/gpubook admin stats [days]",
                "/gpubook admin stats 30",
                "Admin: utilisation per GPU, user.",
            ),
        ),
    ),
    Verb(
        ("admin", "link"),
        usage_grammar.parse_admin_link,
        usage_answers.admin_link,
        (
            Usage(
                "/gpubook admin link <@user> <login>",
                "/gpubook admin link @alice alice",
                "Admin: link (or move) someone's Unix login.",
            ),
        ),
    ),
    Verb(
        ("admin", "audit"),
        admin_grammar.parse_audit,
        admin_answers.audit,
        (
            Usage(
                f"/gpubook admin audit [n ≤ {MAX_AUDIT_ENTRIES}]",
                "/gpubook admin audit 50",
                "Admin: the latest changes, who made them and what they were.",
            ),
        ),
    ),
    Verb(
        ("admin", "group"),
        admin_grammar.parse_group,
        admin_answers.group,
        (
            Usage(
                "/gpubook admin group add|remove <group> [@user…] | list",
                "/gpubook admin group add premium @ana @ben",
                "Admin: put people in a group (or take them out; no one named: the whole group).",
            ),
        ),
    ),
    Verb(
        ("admin", "limits"),
        admin_grammar.parse_admin_limits,
        admin_answers.limits,
        (
            Usage(
                "/gpubook admin limits <group> <limit> <value|none>",
                "/gpubook admin limits premium max-held 96GB",
                "Admin: a group's limit (max-held, max-gbh, max-open, max-duration, "
                "max-extension, max-advance); `everyone` holds the defaults.",
            ),
        ),
    ),
)

#: Every help line, in the registry's order (the help message lists them; tests parse them).
EXAMPLES: tuple[Usage, ...] = tuple(usage for verb in REGISTRY for usage in verb.help)
#: The first words `/gpubook` understands (bounded metric labels: anything else is "other").
VERBS = frozenset(verb.words[0] for verb in REGISTRY if verb.words)

_BY_WORDS = {verb.words: verb for verb in REGISTRY}
_LONGEST = max(len(verb.words) for verb in REGISTRY)
#: Words that begin longer subcommands without being one (`admin`, `admin gpu`).
_GROUPS = frozenset(
    verb.words[:count] for verb in REGISTRY for count in range(1, len(verb.words))
) - set(_BY_WORDS)


def find_verb(words: list[str]) -> tuple[Verb, list[str]]:
    """The subcommand the words name (the longest match) and the words left for its parser."""
    lowered = [word.lower() for word in words[:_LONGEST]]
    for count in range(len(lowered), -1, -1):
        verb = _BY_WORDS.get(tuple(lowered[:count]))
        if verb is not None and (count or not words):
            return verb, words[count:]
    # Name what was not understood: a group's word (`admin`) with the words after it.
    group = lowered[0] in VERBS and (lowered[0],) not in _BY_WORDS
    typed = " ".join([lowered[0], *words[1:_LONGEST]]) if group else words[0]
    suggestion = _nearest_verb(lowered)
    if suggestion is not None:
        raise InputError(
            Code.UNKNOWN_COMMAND_NEAR, field="command", typed=typed, suggestion=suggestion
        )
    raise InputError(Code.UNKNOWN_COMMAND, field="command", typed=typed)


def _nearest_verb(lowered: list[str]) -> str | None:
    """The subcommand a typo most likely meant (`bok` → `book`, `admin stat` → `admin stats`):
    the first n words typed against the subcommands of n words, the longest match first."""
    for count in range(min(_LONGEST, len(lowered)), 0, -1):
        if tuple(lowered[:count]) in _GROUPS:
            continue  # `admin gpu foo`: the words so far are right; what follows is not
        names = [" ".join(words) for words in _BY_WORDS if len(words) == count]
        suggestion = nearest(" ".join(lowered[:count]), names)
        if suggestion is not None:
            return suggestion
    return None


def parse_command(text: str, *, now: datetime, tz: ZoneInfo) -> Command:
    """Read the text after `/gpubook`; ``now`` and ``tz`` resolve the times in it."""
    verb, args = find_verb(text.split())
    return verb.parse(args, now, tz)
