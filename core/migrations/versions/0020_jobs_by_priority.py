"""jobs by priority

A customer waiting for a refund no longer waits behind a backlog of background work (a sync, a
burst of webhooks): workers claim the lowest priority first, then the oldest, and the ready
index follows that order. Jobs already queued are background work (1).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('priority', sa.SmallInteger(), server_default='1', nullable=False)
        )
        batch_op.drop_index('ix_job_ready')
        batch_op.create_index('ix_job_ready', ['state', 'priority', 'run_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_ready')
        batch_op.create_index('ix_job_ready', ['state', 'run_at'], unique=False)
        batch_op.drop_column('priority')
