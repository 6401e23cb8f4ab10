"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

One object for the interfaces to hold, made of parts that each do one job: booking writes
(:mod:`bot.booking.writes`, with placement in :mod:`bot.booking.placement`), GPU administration
(:mod:`bot.booking.gpus`) and reads for people (:mod:`bot.booking.reports`). They share the
database, configuration, clock and permission rules of :class:`~bot.booking.base.ServiceBase`.
"""

from __future__ import annotations

from bot.booking.gpus import GpuAdmin
from bot.booking.reports import Reports
from bot.booking.series import SeriesWrites
from bot.booking.writes import BookingWrites


class BookingService(BookingWrites, SeriesWrites, GpuAdmin, Reports):
    """The one service: writes (single bookings and series), GPU administration and reports over
    one database."""
