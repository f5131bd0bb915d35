"""agents override within a limit

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_override_limit_minor', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('return_policy', schema=None) as batch_op:
        batch_op.drop_column('agent_override_limit_minor')

