"""The booking service's public API: what interfaces (Slack handlers, CLI, console) may use."""

from bot.booking.config import ServiceConfig
from bot.booking.queue import collect_moves
from bot.booking.service import BookingService
from bot.booking.writes import BookingChange
from bot.core.actor import DEFAULT_TEAM, Actor

__all__ = [
    "DEFAULT_TEAM",
    "Actor",
    "BookingChange",
    "BookingService",
    "ServiceConfig",
    "collect_moves",
]
