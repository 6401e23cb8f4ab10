"""Rows to snapshots: the one place that reads ORM objects into :mod:`bot.core.snapshots`.

Everything the service returns passes through here while its session is open, so nothing
downstream can lazy-load or write through a row.
"""

from __future__ import annotations

import copy

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
    return BookingInfo(
        id=booking.id,
        gpu_name=booking.gpu.name,
        gpu_capacity_mib=booking.gpu.capacity_mib,
        user_id=booking.user_id,
        task=booking.task,
        memory_mib=booking.memory_mib,
        start=booking.start_at,
        end=booking.end_at,
        original_end=booking.original_end_at,
        status=BookingStatus(booking.status),
        end_reason=booking.end_reason,
        created_by=booking.created_by,
        created_at=booking.created_at,
        series_id=booking.series_id,
        series_rule=None if booking.series is None else Recurrence.from_dict(booking.series.rule),
        flexible=bool(booking.flexible),
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
