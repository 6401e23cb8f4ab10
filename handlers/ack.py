"""The ack: a slash command's answer sent in it, and the work listeners carry on after it.

The app runs with Bolt's ``process_before_response`` (``bot.runtime.app``): Bolt answers Slack
when the listener returns. Without it Bolt runs the listener in a task and checks every 10 ms
whether it has acked yet, which put 10 ms on every request. So a listener acks (or answers in
its ack), hands the rest of its work to :func:`after_ack`, and returns.

A slash command's ack may carry the answer itself — an ephemeral message, as one sent through
the response_url is — so the person gets it in the same HTTP response, with no second request
to Slack (:class:`AckReply`). It is awaited only for ``Deps.answer_in_ack_within``: a slower
answer (a first ``users.info``, a database that does not answer) goes through the response_url
after an empty ack, as every answer did before. And only while no other command is being
answered (:data:`COMMANDS`): commands arriving together share one event loop, so each answer
would wait behind the others' work, and so would each ack; in a burst they ack at once instead,
as Bolt does, and answer through their response_urls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from handlers.blocks.common import Message
from handlers.context import Reply

log = logging.getLogger(__name__)

#: Work carried on after a listener returned: held here because the loop keeps only a weak
#: reference to a task, and so that stopping can let it finish (:func:`settle`).
_RUNNING: set[asyncio.Task[Any]] = set()


def after_ack(work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Carry on with ``work`` once the listener has returned, so Bolt can send its ack now.

    ``work`` answers its own failures (``handlers.context.answer``); anything that still
    escapes is logged, never lost silently.
    """
    task = asyncio.create_task(work, name=name)
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed after its ack", task.get_name(), exc_info=task.exception())


async def settle(within: float) -> None:
    """Let the work carried on after acks finish (replies, posts), for up to ``within`` seconds."""
    if _RUNNING:
        await asyncio.wait(set(_RUNNING), timeout=within)


class Commands:
    """The slash commands this process is answering: from their arrival until their work is
    done."""

    def __init__(self) -> None:
        self._answering = 0

    @property
    def busy(self) -> bool:
        return self._answering > 0

    def track(self, work: asyncio.Task[Any]) -> None:
        """Count ``work`` (a command's answering) until it is done."""
        self._answering += 1
        work.add_done_callback(self._done)

    def _done(self, _: asyncio.Task[Any]) -> None:
        self._answering -= 1


#: This process's commands being answered.
COMMANDS = Commands()


class AckReply:
    """Sends the first answer as the ack while the ack is still owed; anything else (a later
    message, a replacement, an answer after :meth:`close`) through ``later``."""

    def __init__(self, ack: Any) -> None:
        self._ack = ack
        self._owed = True
        self.answered = asyncio.get_running_loop().create_future()

    def around(self, later: Reply) -> Reply:
        """The reply to give the work: into the ack first, then through ``later``."""
        return _First(self, later)

    async def close(self) -> None:
        """Ack with nothing if no answer went into the ack: it is due now."""
        if self._owed:
            self._owed = False
            await self._ack()

    async def take(self, message: Message) -> bool:
        """Send ``message`` as the ack if it is still owed; False if it is not."""
        if not self._owed:
            return False
        self._owed = False
        await self._ack(text=message.text, blocks=list(message.blocks), response_type="ephemeral")
        if not self.answered.done():
            self.answered.set_result(None)
        return True


class _First:
    """A :class:`~handlers.context.Reply` that tries the ack first."""

    def __init__(self, ack: AckReply, later: Reply) -> None:
        self._ack, self._later = ack, later

    async def send(self, message: Message, *, replace: bool = False) -> None:
        if replace or not await self._ack.take(message):
            await self._later.send(message, replace=replace)
