"""store credit spent through the API

Credit mirrored to a payment provider's customer balance is spendable there, so the ledger
now records the move as it does for platform store credit; credit mirrored before gets its
entry here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:20:00.000000
"""

from collections.abc import Sequence

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('store_credit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('actor', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_store_credit_entry_merchant_id_request_key'), ['merchant_id', 'request_key'])
    _record_earlier_mirrors()


def _record_earlier_mirrors() -> None:
    bind = op.get_bind()
    resolution = sa.table(
        'resolution',
        sa.column('id', sa.Uuid()),
        sa.column('merchant_id', sa.Uuid()),
        sa.column('rma_id', sa.Uuid()),
        sa.column('kind', sa.String()),
        sa.column('status', sa.String()),
        sa.column('amount_minor', sa.Integer()),
        sa.column('currency', sa.String()),
        sa.column('breakdown', sa.JSON()),
        sa.column('updated_at', sa.DateTime(timezone=True)),
    )
    rma = sa.table('rma', sa.column('id', sa.Uuid()), sa.column('customer_id', sa.Uuid()))
    entry = sa.table(
        'store_credit_entry',
        sa.column('id', sa.Uuid()),
        sa.column('merchant_id', sa.Uuid()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('customer_id', sa.Uuid()),
        sa.column('amount_minor', sa.Integer()),
        sa.column('currency', sa.String()),
        sa.column('note', sa.String()),
        sa.column('kind', sa.String()),
        sa.column('reference', sa.String()),
        sa.column('request_key', sa.String()),
        sa.column('actor', sa.String()),
    )
    rows = bind.execute(
        sa.select(resolution, rma.c.customer_id)
        .join(rma, rma.c.id == resolution.c.rma_id)
        .where(resolution.c.kind == 'STORE_CREDIT', resolution.c.status == 'SUCCEEDED')
    ).mappings()
    for row in rows.all():
        breakdown = row['breakdown'] or {}
        mirrored = breakdown.get('mirroredAs')
        if not mirrored or breakdown.get('transferredAs'):
            continue  # never mirrored, or its move to a platform is in the ledger already
        bind.execute(
            entry.insert().values(
                id=uuid.uuid4(),
                merchant_id=row['merchant_id'],
                created_at=row['updated_at'] or datetime.now(UTC),
                customer_id=row['customer_id'],
                amount_minor=-row['amount_minor'],
                currency=row['currency'],
                note="moved to the customer's balance at the payment provider",
                kind='TRANSFERRED',
                reference=str(mirrored)[:100],
                request_key=f"mirror:{row['id']}",
                actor='system',
            )
        )



def downgrade() -> None:
    with op.batch_alter_table('store_credit_entry', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_store_credit_entry_merchant_id_request_key'), type_='unique')
        batch_op.drop_column('actor')
        batch_op.drop_column('request_key')

