"""unmatched arrivals

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'unmatched_arrival',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('description', sa.String(length=2000), nullable=False),
        sa.Column('sender', sa.String(length=200), nullable=False),
        sa.Column('carrier', sa.String(length=32), nullable=True),
        sa.Column('tracking_number', sa.String(length=100), nullable=True),
        sa.Column('recorded_by', sa.String(length=200), nullable=False),
        sa.Column('rma_id', sa.Uuid(), nullable=True),
        sa.Column('outcome_note', sa.String(length=2000), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchant.id'], name=op.f('fk_unmatched_arrival_merchant_id_merchant'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['rma_id'], ['rma.id'], name=op.f('fk_unmatched_arrival_rma_id_rma'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_unmatched_arrival')),
    )
    with op.batch_alter_table('unmatched_arrival', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unmatched_arrival_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_unmatched_arrival_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unmatched_arrival', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unmatched_arrival_status'))
        batch_op.drop_index(batch_op.f('ix_unmatched_arrival_merchant_id'))
    op.drop_table('unmatched_arrival')
