"""usage rolled up as it comes: hourly rows with running totals, and how far each card is summed

Statistics read two hourly rows per card (the running totals at the window's ends) and raw
samples only for the last minutes. Existing hourly rows get their running totals here.

Revision ID: usage_rollups
Revises: statistics_start_index
Create Date: 2026-11-29
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "usage_rollups"
down_revision: str | None = "statistics_start_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_devices") as batch:
        batch.add_column(
            sa.Column("rolled_to", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("usage_hourly") as batch:
        batch.add_column(
            sa.Column(
                "cum_used_mib_s",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=False,
                server_default="0",
            )
        )
        batch.add_column(
            sa.Column("cum_users", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    _fill_running_totals()


def _fill_running_totals() -> None:
    """Running totals of the hourly rows already there, card by card in hour order."""
    hourly = sa.table(
        "usage_hourly",
        sa.column("device_id"),
        sa.column("hour"),
        sa.column("used_mib_s"),
        sa.column("users", sa.JSON()),
        sa.column("cum_used_mib_s"),
        sa.column("cum_users", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(hourly.c.device_id, hourly.c.hour, hourly.c.used_mib_s, hourly.c.users).order_by(
            hourly.c.device_id, hourly.c.hour
        )
    ).all()
    device, total, users = None, 0, {}
    for device_id, hour, used_mib_s, row_users in rows:
        if device_id != device:
            device, total, users = device_id, 0, {}
        total += used_mib_s
        for login, mib_s in _as_dict(row_users).items():
            users[login] = users.get(login, 0) + mib_s
        bind.execute(
            sa.update(hourly)
            .where(hourly.c.device_id == device_id, hourly.c.hour == hour)
            .values(cum_used_mib_s=total, cum_users=dict(users))
        )


def _as_dict(value: Any) -> dict[str, int]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def downgrade() -> None:
    with op.batch_alter_table("usage_hourly") as batch:
        batch.drop_column("cum_users")
        batch.drop_column("cum_used_mib_s")
    with op.batch_alter_table("agent_devices") as batch:
        batch.drop_column("rolled_to")
