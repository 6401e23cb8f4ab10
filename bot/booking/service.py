"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

One object for the interfaces to hold, made of parts that each do one job: booking writes
(:mod:`bot.booking.writes`, with placement in :mod:`bot.booking.placement`), GPU administration
(:mod:`bot.booking.gpus`), reads for people (:mod:`bot.booking.reports`), host agents'
reports (:mod:`bot.booking.agents`), live usage (:mod:`bot.booking.usage`) and private calendar
feeds (:mod:`bot.booking.feeds`). They share the database, configuration, clock and permission
rules of :class:`~bot.booking.base.ServiceBase`.
"""

from __future__ import annotations

from bot.booking.agents import AgentHosts
from bot.booking.feeds import Feeds
from bot.booking.gpus import GpuAdmin
from bot.booking.reports import Reports
from bot.booking.series import SeriesWrites
from bot.booking.usage import LiveUsage
from bot.booking.writes import BookingWrites


class BookingService(BookingWrites, SeriesWrites, GpuAdmin, Reports, AgentHosts, LiveUsage, Feeds):
    """The one service: writes (single bookings and series), GPU administration, reports, host
    agents, live usage and calendar feeds over one database."""
