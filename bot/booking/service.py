"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

One object for the interfaces to hold, made of parts that each do one job: booking writes
(:mod:`bot.booking.writes`, with placement in :mod:`bot.booking.placement`), GPU administration
(:mod:`bot.booking.gpus`), groups and their limits (:mod:`bot.booking.groups`, enforced by
:mod:`bot.booking.limits`), the queue of flexible bookings (:mod:`bot.booking.queue`; every
write that frees memory is followed by a queue pass, then a check of the watches of
:mod:`bot.booking.watches`: :mod:`bot.booking.queue_passes`), recurring series
(:mod:`bot.booking.series`), reads for people (:mod:`bot.booking.reports`; status of a pool of any size in
:mod:`bot.booking.pool`), host agents' reports
(:mod:`bot.booking.agents`) and the bookings they answer with (:mod:`bot.booking.host_runs`), live
usage (:mod:`bot.booking.usage`), private calendar feeds (:mod:`bot.booking.feeds`) and who has
their App Home in view (:mod:`bot.booking.homes`). They
share the database, configuration, clock and permission rules of
:class:`~bot.booking.base.ServiceBase`.
"""

from __future__ import annotations

from bot.booking.agents import AgentHosts
from bot.booking.feeds import Feeds
from bot.booking.homes import HomeViews
from bot.booking.host_runs import HostRuns
from bot.booking.pool import PoolStatuses
from bot.booking.queue_passes import QueuePasses


class BookingService(QueuePasses, HostRuns, PoolStatuses, AgentHosts, Feeds, HomeViews):
    """The one service: writes (single bookings, flexible ones and series), GPU and group
    administration, reports, host agents, live usage, calendar feeds and App Home views over one
    database."""
