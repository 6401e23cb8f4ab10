"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

One object for the interfaces to hold, made of parts that each do one job: booking writes
(:mod:`bot.booking.writes`, with placement in :mod:`bot.booking.placement`), GPU administration
(:mod:`bot.booking.gpus`), groups and their limits (:mod:`bot.booking.groups`, enforced by
:mod:`bot.booking.limits`), the queue of flexible bookings (:mod:`bot.booking.queue`, which
wraps the writes and GPU administration), recurring series (:mod:`bot.booking.series`), reads
for people (:mod:`bot.booking.reports`), host agents' reports (:mod:`bot.booking.agents`), live
usage (:mod:`bot.booking.usage`), private calendar feeds (:mod:`bot.booking.feeds`) and who
has their App Home in view (:mod:`bot.booking.homes`). They
share the database, configuration, clock and permission rules of
:class:`~bot.booking.base.ServiceBase`.
"""

from __future__ import annotations

from bot.booking.agents import AgentHosts
from bot.booking.feeds import Feeds
from bot.booking.groups import GroupAdmin
from bot.booking.homes import HomeViews
from bot.booking.queue import Queue
from bot.booking.reports import Reports
from bot.booking.series import SeriesWrites
from bot.booking.usage import LiveUsage


class BookingService(
    Queue, SeriesWrites, GroupAdmin, Reports, AgentHosts, LiveUsage, Feeds, HomeViews
):
    """The one service: writes (single bookings, flexible ones and series), GPU and group
    administration, reports, host agents, live usage, calendar feeds and App Home views over one
    database."""
