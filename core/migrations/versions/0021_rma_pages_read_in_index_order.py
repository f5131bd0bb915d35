"""rma pages read in index order: (created_at, id) closes the list indexes, one per customer

The list of RMAs is ordered by (created_at, id) and its cursor is that pair: with id at the end
of the indexes the page needs no sort and the cursor is a start position in the index. A
customer's RMAs (the customer e-mail filter, customer sessions) get an index of their own, since
the index on customer_id alone left the planner to sort them or to walk all the merchant's RMAs.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 21:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_rma_merchant_status_created', table_name='rma')
    op.create_index(
        'ix_rma_merchant_status_created', 'rma', ['merchant_id', 'status', 'created_at', 'id']
    )
    op.drop_index('ix_rma_merchant_created', table_name='rma')
    op.create_index('ix_rma_merchant_created', 'rma', ['merchant_id', 'created_at', 'id'])
    op.create_index(
        'ix_rma_merchant_customer_created', 'rma', ['merchant_id', 'customer_id', 'created_at', 'id']
    )


def downgrade() -> None:
    op.drop_index('ix_rma_merchant_customer_created', table_name='rma')
    op.drop_index('ix_rma_merchant_created', table_name='rma')
    op.create_index('ix_rma_merchant_created', 'rma', ['merchant_id', 'created_at'])
    op.drop_index('ix_rma_merchant_status_created', table_name='rma')
    op.create_index('ix_rma_merchant_status_created', 'rma', ['merchant_id', 'status', 'created_at'])
