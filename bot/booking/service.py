"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

One object for the interfaces to hold, made of parts that each do one job: booking writes
(:mod:`bot.booking.writes`, with placement in :mod:`bot.booking.placement`), GPU administration
(:mod:`bot.booking.gpus`), groups and their limits (:mod:`bot.booking.groups`, enforced by
:mod:`bot.booking.limits`), the queue of flexible bookings (:mod:`bot.booking.queue`, which
wraps the writes and GPU administration) and reads for people (:mod:`bot.booking.reports`). They share the
database, configuration, clock and permission rules of :class:`~bot.booking.base.ServiceBase`.
"""

from __future__ import annotations

from bot.booking.groups import GroupAdmin
from bot.booking.queue import Queue
from bot.booking.reports import Reports


class BookingService(Queue, GroupAdmin, Reports):
    """The one service: writes, GPU and group administration and reports over one database."""
