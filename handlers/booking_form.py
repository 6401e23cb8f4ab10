"""What the booking form keeps in its ``private_metadata``, so every re-render says the same.

Slack's view state holds what each input shows — what the command or button pre-filled, or what
the user typed since — and a re-render (the GPU select's ``views.update``) starts from it. Two
things the state cannot tell are kept here: which memory is only the GPU's default (that one
follows a newly chosen GPU; a memory the user gave never does), and why the form opened (what a
`book` lacked or did not understand, said at the top of the form on every render).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence, say
from handlers.blocks.common import clip
from handlers.blocks.modals import ANY_GPU
from handlers.context import metadata, read_metadata

#: A `book` part the command lacked (``Book.missing``) → what the form says about it.
NOT_GIVEN = {
    "gpu": Code.FORM_NO_GPU,
    "size": Code.FORM_NO_MEMORY,
    "start": Code.FORM_NO_START,
    "duration": Code.FORM_NO_DURATION,
    "task": Code.FORM_NO_TASK,
}
#: How much of a word that is not a GPU the form quotes back (GPU names are at most 32).
MAX_QUOTED_GPU = 40


@dataclass(frozen=True)
class BookingForm:
    """A booking form's metadata: where it answers, why it opened and its memory default."""

    channel: str | None = None
    #: What the command lacked, as ``Book.missing`` names them.
    missing: tuple[str, ...] = ()
    #: The GPU the command named that is no GPU here.
    not_a_gpu: str | None = None
    #: The memory the form shows as the GPU's default (``None`` when it shows a given one).
    default_memory: str | None = None

    @classmethod
    def opened(
        cls, channel: str | None, missing: Iterable[str], gpu: str | None, gpus: Iterable[str]
    ) -> BookingForm:
        """The form a command or button opens: ``gpu`` is what it named (``ANY_GPU`` for
        automatic placement), ``gpus`` those there are."""
        not_a_gpu = gpu if gpu not in (None, ANY_GPU) and gpu not in set(gpus) else None
        return cls(
            channel,
            tuple(m for m in missing if m in NOT_GIVEN),
            clip(not_a_gpu, MAX_QUOTED_GPU) if not_a_gpu else None,
        )

    @classmethod
    def load(cls, raw: str | None) -> BookingForm:
        """Read back from a view; it is client-echoed, so anything malformed is left out."""
        meta = read_metadata(raw)
        missing = meta.get("missing")
        return cls(
            _text(meta.get("channel")),
            tuple(m for m in missing if m in NOT_GIVEN) if isinstance(missing, list) else (),
            _text(meta.get("not_a_gpu")),
            _text(meta.get("default")),
        )

    def dump(self, default_memory: str | None) -> str:
        """The metadata of a render that shows ``default_memory`` as the memory default."""
        return metadata(
            channel=self.channel,
            missing=list(self.missing) or None,
            not_a_gpu=self.not_a_gpu,
            default=default_memory,
        )

    def notes(self) -> list[Sentence]:
        """Why the form opened: the GPU it did not know, then each part the command lacked."""
        said = [say(Code.FORM_NOT_A_GPU, gpu=Quote(self.not_a_gpu))] if self.not_a_gpu else []
        return said + [say(NOT_GIVEN[m]) for m in self.missing]

    def kept_memory(self, shown: str | None) -> str | None:
        """The memory a re-render keeps: the one the form shows, unless that is still only the
        default (then ``None``: the newly chosen GPU's default replaces it)."""
        return None if shown == self.default_memory else shown


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
