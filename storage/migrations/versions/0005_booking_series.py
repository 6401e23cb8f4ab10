"""recurring bookings: the booking_series table and bookings.series_id

Revision ID: booking_series
Revises: calendar_links
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "booking_series"
down_revision: str | None = "calendar_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_bookings_series_id_booking_series"),
            "booking_series",
            ["series_id"],
            ["id"],
        )
        batch_op.create_index("ix_bookings_series", ["series_id", "start_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_series")
        batch_op.drop_constraint(
            batch_op.f("fk_bookings_series_id_booking_series"), type_="foreignkey"
        )
        batch_op.drop_column("series_id")
    op.drop_table("booking_series")
