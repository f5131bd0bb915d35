"""Staff keys remembered per process: no query once known, and a revocation seen at once.

Two ``Database`` objects on one database stand for two processes: the API process that
remembers keys and another one (``rma apikey revoke``, another API process) that revokes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import pytest_asyncio
from sqlalchemy import event

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import ApiKeyRole
from core.errors import NotFound
from core.usecases.live_keys import LiveKeys
from core.usecases.merchants import create_api_key, list_api_keys, revoke_api_key
from tests import factories

# On PostgreSQL the revocation arrives as a notification, a few milliseconds after the commit.
NOTIFICATION_SECONDS = 5.0


@pytest_asyncio.fixture(loop_scope="session")
async def other_process(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    yield database
    await database.dispose()


@contextmanager
def counted_reads(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.read_engine.sync_engine, "before_cursor_execute", count)


async def issued_key(db: Database, merchant_id: object, role: str = "ADMIN") -> tuple[str, object]:
    async with db.session() as session:
        issued = await create_api_key(
            session, merchant_id=merchant_id, role=role, now=SYSTEM_CLOCK.now()
        )
    return issued.plaintext, issued.api_key.id


async def listening(keys: LiveKeys) -> None:
    """Until this process can tell key changes (PostgreSQL: its listener is connected)."""
    for _ in range(int(NOTIFICATION_SECONDS / 0.01)):
        if keys.database.key_changes().generation() is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the process never started listening for key changes")


async def refused_within(keys: LiveKeys, plaintext: str, seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if await keys.find(plaintext) is None:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_known_key_costs_no_query(db: Database) -> None:
    merchant = await factories.merchant(db)
    plaintext, key_id = await issued_key(db, merchant.id, "AGENT")
    keys = LiveKeys(db)
    await listening(keys)

    first = await keys.find(plaintext)
    with counted_reads(db) as statements:
        again = await keys.find(plaintext)

    assert first is not None and first == again
    assert (again.api_key_id, again.merchant_id, again.role) == (
        key_id,
        merchant.id,
        ApiKeyRole.AGENT,
    )
    assert statements == []


async def test_a_key_revoked_by_another_process_is_refused_at_once(
    db: Database, other_process: Database, database_url: str
) -> None:
    merchant = await factories.merchant(db)
    plaintext, key_id = await issued_key(db, merchant.id)
    kept, _ = await issued_key(db, merchant.id)
    keys = LiveKeys(db)
    await listening(keys)
    assert await keys.find(plaintext) is not None
    assert await keys.find(kept) is not None

    async with other_process.session() as session:
        await revoke_api_key(
            session, merchant_id=merchant.id, key_id=key_id, now=SYSTEM_CLOCK.now()
        )

    if database_url.startswith("sqlite"):
        assert await keys.find(plaintext) is None  # the very next request
    else:
        assert await refused_within(keys, plaintext, NOTIFICATION_SECONDS)
    assert await keys.find(kept) is not None
    async with db.read_session() as session:
        listed = {key.id: key for key in await list_api_keys(session, merchant.id)}
    assert listed[key_id].revoked_at is not None


async def test_unknown_and_new_keys(db: Database) -> None:
    merchant = await factories.merchant(db)
    keys = LiveKeys(db)
    await listening(keys)

    assert await keys.find("rma_sk_never-issued") is None
    assert await keys.find("not a key at all") is None
    plaintext, _ = await issued_key(db, merchant.id)
    assert await keys.find(plaintext) is not None  # unknown keys are not remembered


async def test_nothing_is_remembered_while_changes_cannot_be_told(
    db: Database, database_url: str
) -> None:
    merchant = await factories.merchant(db)
    plaintext, _ = await issued_key(db, merchant.id)
    blind = Database(database_url, pool_size=1)
    try:
        # A changes watcher that cannot tell: every lookup asks the database.
        blind._key_changes = _Blind()
        keys = LiveKeys(blind)
        assert await keys.find(plaintext) is not None
        with counted_reads(blind) as statements:
            assert await keys.find(plaintext) is not None
        assert [sql for sql in statements if sql.startswith("SELECT")] != []
    finally:
        await blind.dispose()


async def test_revoking_is_per_merchant(db: Database) -> None:
    owner = await factories.merchant(db)
    stranger = await factories.merchant(db)
    plaintext, key_id = await issued_key(db, owner.id)

    with pytest.raises(NotFound):
        async with db.session() as session:
            await revoke_api_key(
                session, merchant_id=stranger.id, key_id=key_id, now=SYSTEM_CLOCK.now()
            )

    assert await LiveKeys(db).find(plaintext) is not None


class _Blind:
    def generation(self) -> int | None:
        return None

    async def close(self) -> None:
        return None
