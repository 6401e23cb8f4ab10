"""The GPUs bound to a reporting card (``Gpu.device_uuid`` = ``AgentDevice.uuid``), as queries.

Live usage (status, App Home) and the lifecycle sweep's reconciliation read the same join; it
lives here, apart from the capacity reads of :mod:`bot.booking.queries`, because only the
measured side of gpubook needs it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Text, cast, select

from storage.models import AgentDevice, Gpu


def bound_cards(team_id: str | None = None) -> Select[tuple[Gpu, AgentDevice]]:
    """Every GPU in service with the card it is bound to (its device UUID), in GPU id order
    (the lock order); one workspace's, or every workspace's for the sweep."""
    query = (
        select(Gpu, AgentDevice)
        .join(
            AgentDevice,
            (AgentDevice.team_id == Gpu.team_id) & (AgentDevice.uuid == Gpu.device_uuid),
        )
        .where(Gpu.retired.is_(False))
    )
    if team_id is not None:
        query = query.where(Gpu.team_id == team_id)
    return query.order_by(Gpu.id)


def bound_card_columns() -> Select[Any]:
    """:func:`bound_cards` as the lifecycle sweep reads it: only the columns reconciliation uses.

    The sweep reads every bound card each time (4,000 for 500 hosts of 8), on the event loop
    every report is answered from; building two ORM entities per card cost ten times what the
    plain rows do there, and stalled the reports behind it for a third of a second. ``seen`` (a
    time per login ever seen on the card, the longest column) comes as JSON text, decoded only
    for the cards asked about."""
    return bound_cards().with_only_columns(
        Gpu.id,
        Gpu.team_id,
        Gpu.name,
        Gpu.capacity_mib,
        Gpu.channel_id,
        AgentDevice.last_seen_at,
        AgentDevice.first_seen_at,
        AgentDevice.users,
        AgentDevice.prev_users,
        cast(AgentDevice.seen, Text).label("seen"),
    )
