"""The core's own jobs: periodic housekeeping of the RMA lifecycle."""

from __future__ import annotations

from datetime import timedelta

from core.jobs import commerce, exchanges, money, sync, writeback
from core.jobs.worker import Handler, JobContext, PeriodicJob
from core.outbox.kinds import (
    APPLY_STORE_CREDIT,
    AUTO_RESOLVE,
    EXECUTE_REFUND,
    EXPIRE_AUTHORIZATIONS,
    MIRROR_RETURN,
    PLACE_EXCHANGE,
    RECONCILE_CONNECTIONS,
    RECONCILE_PAYMENTS,
    RECORD_PLATFORM_REFUND,
    REFRESH_REFUND,
    RESTOCK_RETURN,
    SUBSCRIBE_WEBHOOKS,
    SYNC_CONNECTION,
    SYNC_ORDER,
)
from core.usecases.remaining_units import expire_remaining_units
from core.usecases.review import expire_authorizations


async def run_expire_authorizations(context: JobContext) -> None:
    """Expire every authorization not shipped in time, and the wait for the rest of partly
    received returns, in batches, across merchants."""
    for expire in (expire_authorizations, expire_remaining_units):
        while True:
            async with context.database.session() as session:
                if await expire(session, now=context.clock.now(), limit=500) < 500:
                    break


CORE_HANDLERS: dict[str, Handler] = {
    EXPIRE_AUTHORIZATIONS: run_expire_authorizations,
    EXECUTE_REFUND: money.execute_refund,
    REFRESH_REFUND: money.refresh_refund,
    APPLY_STORE_CREDIT: money.apply_store_credit,
    PLACE_EXCHANGE: exchanges.place_exchange,
    AUTO_RESOLVE: money.auto_resolve,
    RECONCILE_PAYMENTS: money.reconcile,
    SYNC_CONNECTION: sync.sync_connection,
    SYNC_ORDER: sync.sync_order,
    SUBSCRIBE_WEBHOOKS: sync.subscribe_webhooks,
    RESTOCK_RETURN: commerce.restock_return,
    RECONCILE_CONNECTIONS: sync.reconcile_connections,
    MIRROR_RETURN: commerce.mirror_return,
    RECORD_PLATFORM_REFUND: writeback.record_platform_refund,
}
CORE_PERIODIC = [
    PeriodicJob(
        name="expire-authorizations", kind=EXPIRE_AUTHORIZATIONS, every=timedelta(minutes=15)
    ),
    PeriodicJob(name="reconcile-payments", kind=RECONCILE_PAYMENTS, every=timedelta(minutes=15)),
    # Webhooks can be missed (WooCommerce never retries) or reordered: read what changed.
    PeriodicJob(
        name="reconcile-connections", kind=RECONCILE_CONNECTIONS, every=timedelta(minutes=15)
    ),
]
