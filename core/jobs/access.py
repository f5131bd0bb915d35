"""A job's way to a merchant's connection: read, renewed when its credentials are about to
lapse, and handed to the plugin's factory. Plugins never read the database themselves."""

from __future__ import annotations

import asyncio
import uuid

from core.enums import Platform
from core.jobs.worker import JobContext, PermanentJobError
from core.ports.commerce import PlatformRejected
from core.services import Services
from core.usecases.connections import ConnectionAccess, connection_access, refresh_credentials

# One renewal at a time per connection in this process; the row lock covers other processes.
_renewing: dict[uuid.UUID, asyncio.Lock] = {}


def services_of(context: JobContext) -> Services:
    if context.services is None:
        raise PermanentJobError("this worker was started without services; this job needs them")
    return context.services


async def fresh_access(
    context: JobContext,
    merchant_id: uuid.UUID,
    platform: Platform,
    *,
    connection_id: uuid.UUID | None = None,
) -> ConnectionAccess | None:
    """The merchant's enabled connection to ``platform`` (the given one, or its oldest), with
    credentials that will not lapse during the job; None when there is none.

    ``PlatformRejected`` when renewing was refused (the grant is gone): the caller decides.
    """
    services = services_of(context)
    async with context.database.read_session() as session:
        access = await connection_access(
            session, services.vault, merchant_id, platform, connection_id=connection_id
        )
    refresher = services.registry.refreshers.get(platform)
    if access is None or refresher is None:
        return access
    if not refresher.due(access.credentials, context.clock.now()):
        return access
    lock = _renewing.setdefault(access.connection_id, asyncio.Lock())
    async with lock, context.database.session() as session:
        return await refresh_credentials(
            session,
            services.vault,
            access.connection_id,
            refresher,
            now=context.clock.now(),
            hold_row_lock=context.database.is_postgres,
        )


__all__ = ["PlatformRejected", "fresh_access", "services_of"]
