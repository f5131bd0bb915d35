"""policy prices warranty claims and credit fees

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing versions keep what they did: no special warranty pricing existed (shipping and
    # bonus followed the general rules), and the fee was taken from store credit too.
    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warranty_refunds_shipping', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('warranty_credit_bonus', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('restocking_fee_on_store_credit', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.drop_column('restocking_fee_on_store_credit')
        batch_op.drop_column('warranty_credit_bonus')
        batch_op.drop_column('warranty_refunds_shipping')
