"""refunds split over the payments

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "status NOT IN ('FAILED', 'CANCELED')"


def upgrade() -> None:
    # Payments keep the order they were made in; existing ones share position 0 (ties are
    # broken by reference, the same way every time).
    with op.batch_alter_table('order_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('part', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('group_id', sa.Uuid(), nullable=True))
        batch_op.drop_index('uq_resolution_live_per_receipt', sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
        batch_op.create_index('uq_resolution_live_per_receipt', ['receipt_id', 'part'], unique=True, sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
        batch_op.create_index(batch_op.f('ix_resolution_group_id'), ['group_id'], unique=False)
    # Every earlier resolution is a group of one part.
    op.execute("UPDATE resolution SET group_id = id WHERE group_id IS NULL")

    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('non_card_refunds_as_store_credit', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.drop_column('non_card_refunds_as_store_credit')

    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resolution_group_id'))
        batch_op.drop_index('uq_resolution_live_per_receipt', sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
        # Fails if a refund was split over several payments: that history has no place there.
        batch_op.create_index('uq_resolution_live_per_receipt', ['receipt_id'], unique=True, sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
        batch_op.drop_column('group_id')
        batch_op.drop_column('part')

    with op.batch_alter_table('order_payment', schema=None) as batch_op:
        batch_op.drop_column('position')
