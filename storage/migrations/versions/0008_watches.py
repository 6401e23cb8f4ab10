"""watches: a person waiting for room, told once by DM when a window opens

Revision ID: watches
Revises: read_indexes
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "watches"
down_revision: str | None = "read_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("gpu_pattern", sa.String(length=64), nullable=True),
        sa.Column("deadline", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.String(length=16), nullable=True),
        sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watches")),
    )
    with op.batch_alter_table("watches", schema=None) as batch_op:
        batch_op.create_index("ix_watches_open", ["ended", "team_id", "id"], unique=False)
        batch_op.create_index("ix_watches_team_user", ["team_id", "user_id", "ended"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("watches", schema=None) as batch_op:
        batch_op.drop_index("ix_watches_team_user")
        batch_op.drop_index("ix_watches_open")
    op.drop_table("watches")
