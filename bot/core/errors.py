"""Typed errors that carry a sentence a person can act on.

Every refusal the service (or a parser at the edge) makes is one of these. Interfaces never build
their own wording for a refusal: Slack, the console and the CLI all show ``str(error)``, so a user
reads the same sentence wherever they asked. ``field`` names the input the error is about, so a
modal can put the message under the right block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class GpubookError(Exception):
    """Base class: ``str(err)`` is the user-facing sentence."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InputError(GpubookError):
    """Malformed or out-of-range input: a size, duration, time or text the user typed."""


class NotFound(GpubookError):
    """An unknown GPU or booking id."""


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


class CapacityError(GpubookError):
    """Not enough memory on the GPU for the window; carries the numbers and a suggestion.

    ``suggestion`` is the earliest window on the same GPU; ``alternative`` is an earlier window on
    another GPU when one exists (else ``None``).
    """

    def __init__(
        self,
        message: str,
        *,
        gpu_name: str,
        capacity_mib: int,
        peak_mib: int,
        requested_mib: int,
        suggestion: SuggestedSlot | None,
        alternative: SuggestedSlot | None = None,
        field: str | None = "memory",
    ) -> None:
        super().__init__(message, field=field)
        self.gpu_name = gpu_name
        self.capacity_mib = capacity_mib
        self.peak_mib = peak_mib
        self.requested_mib = requested_mib
        self.suggestion = suggestion
        self.alternative = alternative
