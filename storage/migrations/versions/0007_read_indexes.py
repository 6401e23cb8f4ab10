"""indexes for reads that cost what they show

Lists are read a page at a time in (start, id) order, per status; status reads what is under way
and the next start per GPU; statistics sum the bookings ending after their window starts. The
index on (team, user) alone is replaced by the list index that begins with it.

Revision ID: read_indexes
Revises: limits_groups_user_locks
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "read_indexes"
down_revision: str | None = "limits_groups_user_locks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_bookings_gpu_status_start": ["gpu_id", "status", "start_at"],
    "ix_bookings_team_status_start": ["team_id", "status", "start_at", "id"],
    "ix_bookings_team_user_status_start": ["team_id", "user_id", "status", "start_at", "id"],
    "ix_bookings_team_end": [
        "team_id",
        "end_at",
        "start_at",
        "status",
        "gpu_id",
        "user_id",
        "memory_mib",
    ],
    "ix_bookings_team_user_end": [
        "team_id",
        "user_id",
        "end_at",
        "start_at",
        "status",
        "gpu_id",
        "memory_mib",
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
        batch_op.drop_index("ix_bookings_team_user")


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_team_user", ["team_id", "user_id"], unique=False)
        for name in INDEXES:
            batch_op.drop_index(name)
