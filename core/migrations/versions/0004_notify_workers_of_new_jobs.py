"""notify workers of new jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 15:00:00

On PostgreSQL every statement that inserts jobs sends NOTIFY rma_jobs, delivered at commit,
from whichever process or code path inserted them. Workers LISTEN to start at once; they still
poll, so a lost notification only costs latency. SQLite has no equivalent and needs none: its
runner is in-process and woken directly.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION rma_notify_new_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('rma_jobs', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER job_inserted AFTER INSERT ON job "
        "FOR EACH STATEMENT EXECUTE FUNCTION rma_notify_new_jobs()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS job_inserted ON job")
    op.execute("DROP FUNCTION IF EXISTS rma_notify_new_jobs()")
