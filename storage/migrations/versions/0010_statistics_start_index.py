"""a covering index over the starts, for statistics' pieces around settled days

Statistics keep the days that can no longer change and sum, in SQL, only the pieces before and
after them, reading the bookings that start from the longest booking's length before the piece:
a range over (team, start) that never visits the table.

Revision ID: statistics_start_index
Revises: home_views
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "statistics_start_index"
down_revision: str | None = "home_views"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["team_id", "start_at", "end_at", "status", "gpu_id", "user_id", "memory_mib"]


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_team_start", COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_team_start")
