"""Rows to snapshots: the one place that reads ORM objects into :mod:`bot.core.snapshots`.

Everything the service returns passes through here while its session is open, so nothing
downstream can lazy-load or write through a row.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Row

from bot.core.recurrence import Recurrence
from bot.core.snapshots import AuditInfo, BookingInfo, GpuInfo
from bot.core.vocabulary import BookingStatus
from storage.models import AuditEntry, Booking, Gpu


def gpu_info(gpu: Gpu) -> GpuInfo:
    return GpuInfo(
        gpu.id,
        gpu.name,
        gpu.capacity_mib,
        gpu.description,
        gpu.channel_id,
        gpu.retired,
        gpu.device_uuid,
    )


def booking_info(booking: Booking) -> BookingInfo:
    series = booking.series
    rule = None if series is None else series.rule
    return booking_snapshot(booking, booking.gpu.name, booking.gpu.capacity_mib, rule)


def booking_snapshot(
    b: Booking | Row[Any], gpu_name: str, gpu_capacity_mib: int, rule: dict[str, Any] | None
) -> BookingInfo:
    """A booking entity, or a row of the bookings table's columns (they share their names), with
    its GPU's name and size and its series' rule, as a snapshot."""
    return BookingInfo(
        id=b.id,
        gpu_name=gpu_name,
        gpu_capacity_mib=gpu_capacity_mib,
        user_id=b.user_id,
        task=b.task,
        memory_mib=b.memory_mib,
        start=b.start_at,
        end=b.end_at,
        original_end=b.original_end_at,
        status=BookingStatus(b.status),
        end_reason=b.end_reason,
        created_by=b.created_by,
        created_at=b.created_at,
        series_id=b.series_id,
        series_rule=None if rule is None else Recurrence.from_dict(rule),
        flexible=bool(b.flexible),
    )


def audit_info(entry: AuditEntry) -> AuditInfo:
    return AuditInfo(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        booking_id=entry.booking_id,
        gpu_id=entry.gpu_id,
        details=copy.deepcopy(entry.details),
    )
