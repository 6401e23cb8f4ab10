"""Typed refusals: what went wrong as a code and values, never as finished text.

Every refusal the service (or a parser at the edge) makes is one of these. The error carries
:class:`~bot.core.sentence.Sentence` s — a code from :mod:`bot.core.phrases` and its values — so
each interface renders the same words in its own syntax (:func:`bot.core.wording.render`): Slack
mrkdwn, plain text in a form, a terminal. ``str(error)`` is the plain rendering in UTC, for logs.
``field`` names the input the error is about, so a form can show it under the right block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.phrases import Code
from bot.core.sentence import Sentence
from bot.core.wording import Surface, render


class GpubookError(Exception):
    """Base class: a refusal a person can act on."""

    def __init__(
        self, code: Code, *, field: str | None = None, also: Sequence[Sentence] = (), **data: Any
    ) -> None:
        self.sentences: tuple[Sentence, ...] = (Sentence(code, data), *also)
        self.field = field
        super().__init__(code.value)

    @property
    def code(self) -> Code:
        return self.sentences[0].code

    def for_field(self, field: str | None) -> GpubookError:
        """The same refusal about another input (a parser reused for the end, not the start)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.args, clone.field = self.args, field
        return clone

    def render(self, surface: Surface | None = None) -> str:
        """The sentences for ``surface`` (default: plain text in UTC)."""
        return render(self.sentences, surface or Surface())

    def __str__(self) -> str:
        return self.render()


class InputError(GpubookError):
    """Malformed or out-of-range input: a size, duration, time or text the user typed."""


class NotFound(GpubookError):
    """An unknown GPU or booking id."""


class Unauthorized(GpubookError):
    """A credential (a host agent's token) that is unknown or no longer valid."""


class PermissionDenied(GpubookError):
    """The caller may not do this (someone else's booking, or an admin-only action)."""


class PolicyViolation(GpubookError):
    """The request is well formed but breaks a configured policy (duration, advance, extension)."""


class InvalidState(GpubookError):
    """The booking is in a state that does not allow the operation (e.g. cancelling a finished one)."""


@dataclass(frozen=True)
class SuggestedSlot:
    """A window where the refused request would fit, bookable exactly as given."""

    gpu_name: str
    start: datetime
    end: datetime
    memory_mib: int


@dataclass(frozen=True)
class SuggestedExtension:
    """The longest extension of a booking that fits, extendable exactly as given."""

    booking_id: int
    by: timedelta
    end: datetime


class CapacityError(GpubookError):
    """Not enough memory on the GPU for the window; carries the numbers and what would fit.

    ``suggestion`` is the earliest window on the same GPU; ``alternative`` is an earlier window on
    another GPU when one exists (else ``None``); ``extension`` is, for a refused extension, the
    longest one that fits. Each passes the booking rules, so it books (or extends) as given.
    """

    def __init__(
        self,
        code: Code,
        *,
        gpu_name: str,
        capacity_mib: int,
        peak_mib: int,
        requested_mib: int,
        suggestion: SuggestedSlot | None,
        alternative: SuggestedSlot | None = None,
        extension: SuggestedExtension | None = None,
        field: str | None = "memory",
        also: Sequence[Sentence] = (),
        **data: Any,
    ) -> None:
        super().__init__(code, field=field, also=also, **data)
        self.gpu_name = gpu_name
        self.capacity_mib = capacity_mib
        self.peak_mib = peak_mib
        self.requested_mib = requested_mib
        self.suggestion = suggestion
        self.alternative = alternative
        self.extension = extension


@dataclass(frozen=True)
class SeriesOffer:
    """The occurrences of a refused series that fit, bookable as one click: the request again,
    booking what fits and leaving the rest (``rule`` is the recurrence's JSON values)."""

    gpu_name: str
    memory_mib: int
    rule: dict[str, Any]
    task: str
    fits: int


class SeriesRefused(GpubookError):
    """Some occurrences of a series do not fit (each is named with its reason), so none was
    booked; ``offer`` books the ones that fit, when there are any."""

    def __init__(
        self, code: Code, *, offer: SeriesOffer | None, also: Sequence[Sentence] = (), **data: Any
    ) -> None:
        super().__init__(code, field="repeat", also=also, **data)
        self.offer = offer
