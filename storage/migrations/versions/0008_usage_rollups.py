"""usage rolled up continuously: hourly rows as hours pass, daily rows as days pass

Statistics read daily rows for whole days, hourly rows at a window's edges and raw samples only
for the last minutes; each card records how far its samples and hours are summed.

Revision ID: usage_rollups
Revises: read_indexes
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "usage_rollups"
down_revision: str | None = "read_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_devices") as batch:
        batch.add_column(
            sa.Column("rolled_to", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("days_rolled_to", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "usage_daily",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("day", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column(
            "used_mib_s", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("max_used_mib", sa.Integer(), nullable=False),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["agent_devices.id"],
            name=op.f("fk_usage_daily_device_id_agent_devices"),
        ),
        sa.PrimaryKeyConstraint("device_id", "day", name=op.f("pk_usage_daily")),
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
    with op.batch_alter_table("agent_devices") as batch:
        batch.drop_column("days_rolled_to")
        batch.drop_column("rolled_to")
