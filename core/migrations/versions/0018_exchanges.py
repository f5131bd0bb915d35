"""exchanges: the replacement an exchange resolution gives

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('exchange',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rma_id', sa.Uuid(), nullable=False),
    sa.Column('resolution_id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('returned_value_minor', sa.Integer(), nullable=False),
    sa.Column('replacement_value_minor', sa.Integer(), nullable=False),
    sa.Column('refund_minor', sa.Integer(), nullable=False),
    sa.Column('due_minor', sa.Integer(), nullable=False),
    sa.Column('lines', sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=False),
    sa.Column('platform_reference', sa.String(length=255), nullable=True),
    sa.Column('fulfilment_reference', sa.String(length=255), nullable=True),
    sa.Column('cancel_reason', sa.String(length=2000), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchant.id'], name=op.f('fk_exchange_merchant_id_merchant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_exchange_order_id_order')),
    sa.ForeignKeyConstraint(['resolution_id'], ['resolution.id'], name=op.f('fk_exchange_resolution_id_resolution'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rma_id'], ['rma.id'], name=op.f('fk_exchange_rma_id_rma'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange')),
    sa.UniqueConstraint('resolution_id', name=op.f('uq_exchange_resolution_id'))
    )
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exchange_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exchange_rma_id'), ['rma_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_rma_id'))
        batch_op.drop_index(batch_op.f('ix_exchange_order_id'))
        batch_op.drop_index(batch_op.f('ix_exchange_merchant_id'))

    op.drop_table('exchange')
