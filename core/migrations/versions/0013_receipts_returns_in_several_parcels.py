"""receipts: returns in several parcels

Every RMA that already received goods gets one receipt holding them, its inspections and its
resolutions. Before, only an RMA still at RECEIVED could take more units; that one keeps
expecting the rest for the policy's default 14 days (or until its authorization runs out, if
later); every other one expects nothing more, as it did.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import uuid
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('receipt',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rma_id', sa.Uuid(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('inspected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchant.id'], name=op.f('fk_receipt_merchant_id_merchant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rma_id'], ['rma.id'], name=op.f('fk_receipt_rma_id_rma'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt')),
    sa.UniqueConstraint('rma_id', 'sequence', name=op.f('uq_receipt_rma_id_sequence'))
    )
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_rma_id'), ['rma_id'], unique=False)

    op.create_table('receipt_line',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('receipt_id', sa.Uuid(), nullable=False),
    sa.Column('rma_line_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_receipt_line_quantity_positive')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchant.id'], name=op.f('fk_receipt_line_merchant_id_merchant'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipt.id'], name=op.f('fk_receipt_line_receipt_id_receipt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rma_line_id'], ['rma_line.id'], name=op.f('fk_receipt_line_rma_line_id_rma_line'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_line')),
    sa.UniqueConstraint('receipt_id', 'rma_line_id', name=op.f('uq_receipt_line_receipt_id_rma_line_id'))
    )
    with op.batch_alter_table('receipt_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_line_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_line_receipt_id'), ['receipt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_line_rma_line_id'), ['rma_line_id'], unique=False)

    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('quantity', sa.Integer(), nullable=True))
    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt_id', sa.Uuid(), nullable=True))
    with op.batch_alter_table('rma', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rest_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rest_ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_rma_rest_expires_at'), ['rest_expires_at'], unique=False)

    _one_receipt_per_received_rma()

    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.alter_column('receipt_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column('quantity', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_inspection_rma_line_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_inspection_receipt_id'), ['receipt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspection_rma_line_id'), ['rma_line_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_inspection_receipt_id_rma_line_id'), ['receipt_id', 'rma_line_id'])
        batch_op.create_foreign_key(batch_op.f('fk_inspection_receipt_id_receipt'), 'receipt', ['receipt_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.alter_column('receipt_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_index('uq_resolution_live_per_rma', sqlite_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"), postgresql_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"))
        batch_op.create_index('uq_resolution_live_per_receipt', ['receipt_id'], unique=True, sqlite_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"), postgresql_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"))
        batch_op.create_foreign_key(batch_op.f('fk_resolution_receipt_id_receipt'), 'receipt', ['receipt_id'], ['id'], ondelete='CASCADE')



_RECEIPT_STATUS = {
    'RECEIVED': 'RECEIVED',
    'INSPECTED': 'INSPECTED',
    'RESOLVING': 'RESOLVING',
    'RESOLVED': 'RESOLVED',
    'CLOSED': 'RESOLVED',
}
_DEFAULT_VALID_DAYS = 14


def _one_receipt_per_received_rma() -> None:
    bind = op.get_bind()
    rma = sa.table(
        'rma',
        sa.column('id', sa.Uuid()),
        sa.column('merchant_id', sa.Uuid()),
        sa.column('status', sa.String()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('received_at', sa.DateTime(timezone=True)),
        sa.column('inspected_at', sa.DateTime(timezone=True)),
        sa.column('resolved_at', sa.DateTime(timezone=True)),
        sa.column('closed_at', sa.DateTime(timezone=True)),
        sa.column('updated_at', sa.DateTime(timezone=True)),
        sa.column('authorization_expires_at', sa.DateTime(timezone=True)),
        sa.column('rest_expires_at', sa.DateTime(timezone=True)),
        sa.column('rest_ended_at', sa.DateTime(timezone=True)),
    )
    rma_line = sa.table(
        'rma_line',
        sa.column('id', sa.Uuid()),
        sa.column('rma_id', sa.Uuid()),
        sa.column('quantity', sa.Integer()),
        sa.column('received_quantity', sa.Integer()),
    )
    receipt = sa.table(
        'receipt',
        sa.column('id', sa.Uuid()),
        sa.column('merchant_id', sa.Uuid()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('rma_id', sa.Uuid()),
        sa.column('sequence', sa.Integer()),
        sa.column('status', sa.String()),
        sa.column('received_at', sa.DateTime(timezone=True)),
        sa.column('inspected_at', sa.DateTime(timezone=True)),
        sa.column('resolved_at', sa.DateTime(timezone=True)),
        sa.column('updated_at', sa.DateTime(timezone=True)),
    )
    receipt_line = sa.table(
        'receipt_line',
        sa.column('id', sa.Uuid()),
        sa.column('merchant_id', sa.Uuid()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('receipt_id', sa.Uuid()),
        sa.column('rma_line_id', sa.Uuid()),
        sa.column('quantity', sa.Integer()),
    )
    inspection = sa.table(
        'inspection',
        sa.column('rma_line_id', sa.Uuid()),
        sa.column('receipt_id', sa.Uuid()),
        sa.column('quantity', sa.Integer()),
    )
    resolution = sa.table('resolution', sa.column('rma_id', sa.Uuid()), sa.column('receipt_id', sa.Uuid()))
    lines_by_rma: dict[uuid.UUID, list[tuple[uuid.UUID, int, int]]] = {}
    for line_id, rma_id, quantity, received in bind.execute(
        sa.select(rma_line.c.id, rma_line.c.rma_id, rma_line.c.quantity, rma_line.c.received_quantity)
    ):
        lines_by_rma.setdefault(rma_id, []).append((line_id, quantity, received))
    resolved = {row[0] for row in bind.execute(sa.select(resolution.c.rma_id).distinct())}
    for row in bind.execute(sa.select(rma)).mappings().all():
        lines = lines_by_rma.get(row['id'], [])
        if not any(received for _l, _q, received in lines) and row['id'] not in resolved:
            continue
        arrived = row['received_at'] or row['created_at']
        receipt_id = uuid.uuid4()
        bind.execute(
            receipt.insert().values(
                id=receipt_id,
                merchant_id=row['merchant_id'],
                created_at=arrived,
                rma_id=row['id'],
                sequence=1,
                status=_RECEIPT_STATUS.get(row['status'], 'REFUSED'),
                received_at=arrived,
                inspected_at=row['inspected_at'],
                resolved_at=row['resolved_at'],
                updated_at=row['updated_at'],
            )
        )
        for line_id, _quantity, received in lines:
            if received:
                bind.execute(
                    receipt_line.insert().values(
                        id=uuid.uuid4(),
                        merchant_id=row['merchant_id'],
                        created_at=arrived,
                        receipt_id=receipt_id,
                        rma_line_id=line_id,
                        quantity=received,
                    )
                )
            bind.execute(
                inspection.update()
                .where(inspection.c.rma_line_id == line_id)
                .values(receipt_id=receipt_id, quantity=max(received, 1))
            )
        bind.execute(
            resolution.update().where(resolution.c.rma_id == row['id']).values(receipt_id=receipt_id)
        )
        outstanding = any(received < quantity for _l, quantity, received in lines)
        if outstanding and row['status'] == 'RECEIVED':
            deadline = arrived + timedelta(days=_DEFAULT_VALID_DAYS)
            expires = row['authorization_expires_at']
            rest = {'rest_expires_at': max(deadline, expires) if expires else deadline}
        else:
            rest = {'rest_ended_at': row['closed_at'] or arrived}
        bind.execute(rma.update().where(rma.c.id == row['id']).values(**rest))


def downgrade() -> None:
    with op.batch_alter_table('rma', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rma_rest_expires_at'))
        batch_op.drop_column('rest_ended_at')
        batch_op.drop_column('rest_expires_at')

    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_resolution_receipt_id_receipt'), type_='foreignkey')
        batch_op.drop_index('uq_resolution_live_per_receipt', sqlite_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"), postgresql_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"))
        # Fails if an RMA was resolved in several receipts: that history has no place there.
        batch_op.create_index('uq_resolution_live_per_rma', ['rma_id'], unique=True, sqlite_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"), postgresql_where=sa.text("status NOT IN ('FAILED', 'CANCELED')"))
        batch_op.drop_column('receipt_id')

    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inspection_receipt_id_receipt'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_inspection_receipt_id_rma_line_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_inspection_rma_line_id'))
        batch_op.drop_index(batch_op.f('ix_inspection_receipt_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_inspection_rma_line_id'), ['rma_line_id'])
        batch_op.drop_column('quantity')
        batch_op.drop_column('receipt_id')

    with op.batch_alter_table('receipt_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_line_rma_line_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_line_receipt_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_line_merchant_id'))

    op.drop_table('receipt_line')
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_rma_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_merchant_id'))

    op.drop_table('receipt')
