"""Jobs that move money for resolutions, through the installed plugin for each provider."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from core.entities import Order, Resolution, Rma
from core.enums import (
    DEAD_RESOLUTION_STATUSES,
    PaymentProviderName,
    ResolutionKind,
    ResolutionStatus,
)
from core.errors import DomainError, InsufficientCredit
from core.jobs import failpoints
from core.jobs.access import fresh_access, services_of
from core.jobs.commerce import note_on_job_rma, transfer_store_credit
from core.jobs.worker import JobContext, PermanentJobError
from core.outbox.kinds import EXECUTE_REFUND, PLACE_EXCHANGE, REFRESH_REFUND
from core.outbox.queue import enqueue_once
from core.ports.commerce import PlatformRejected
from core.ports.payments import (
    PaymentProvider,
    PaymentProviderFactory,
    ProviderIdempotencyConflict,
    ProviderRefund,
    ProviderRejected,
    RefundReport,
    RefundRequest,
)
from core.services import Services
from core.usecases.money_movement import (
    RefundAttempt,
    begin_refund_attempt,
    mark_requires_review,
    record_credit_mirrored,
    store_credit_mirror,
)
from core.usecases.provider_reports import record_provider_refund
from core.usecases.resolutions import (
    record_resolution_outcome,
    resolve_rma,
)
from core.usecases.store_credit import MIRROR, release_transfer

log = structlog.get_logger()

# After this many attempts whose outcome stayed unknown and found no refund, a person decides:
# sending again could only ever be a second refund.
MAX_BLIND_ATTEMPTS = 6
STALE_AFTER = timedelta(minutes=10)


def _services(context: JobContext) -> Services:
    return services_of(context)


@contextlib.asynccontextmanager
async def _provider_for(
    context: JobContext,
    merchant_id: uuid.UUID,
    factory: PaymentProviderFactory,
    connection_id: uuid.UUID | None = None,
) -> AsyncIterator[PaymentProvider | str]:
    """The merchant's provider for this job, closed afterwards; or why there is none (the
    merchant has no enabled connection for it, or its credentials are unusable). The order's
    own connection when it came from one of several shops."""
    try:
        access = await fresh_access(
            context, merchant_id, factory.platform, connection_id=connection_id
        )
    except PlatformRejected as error:
        yield f"the {factory.platform.value} connection refused to renew its access: {error}"
        return
    if access is None:
        yield f"the merchant has no {factory.provider.value} connection"
        return
    try:
        provider = factory.build({**access.credentials, "account": access.account})
    except ProviderRejected as error:
        yield str(error)
        return
    try:
        yield provider
    finally:
        await provider.close()


async def _fail(context: JobContext, attempt: RefundAttempt, reason: str) -> None:
    async with context.database.session() as session:
        await record_resolution_outcome(
            session,
            attempt.merchant_id,
            attempt.resolution_id,
            succeeded=False,
            actor="system",
            failure_reason=reason[:2000],  # a provider's words may run long
            now=context.clock.now(),
        )


async def _record(
    context: JobContext,
    merchant_id: uuid.UUID,
    provider_name: PaymentProviderName,
    refund: ProviderRefund,
    resolution_id: uuid.UUID,
) -> None:
    report = RefundReport(
        provider=provider_name,
        provider_reference=refund.reference,
        status=refund.status,
        amount_minor=refund.amount_minor,
        resolution_id=str(resolution_id),
        failure_reason=refund.failure_reason,
    )
    async with context.database.session() as session:
        await record_provider_refund(
            session, merchant_id, report, actor="system", now=context.clock.now()
        )


async def execute_refund(context: JobContext) -> None:
    """Refund a resolution through its provider, exactly once whatever fails in between."""
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    provider_name = PaymentProviderName(context.job.payload["provider"])
    factory = _services(context).registry.payment_providers.get(provider_name)
    if factory is None:
        # No installed plugin moves this provider's money: the refund waits for staff.
        log.info("no plugin refunds through this provider", provider=provider_name.value)
        return
    failpoints.reached("refund.after_claim")
    async with context.database.session() as session:
        attempt = await begin_refund_attempt(
            session, resolution_id, provider_name, now=context.clock.now()
        )
    if attempt is None:
        return  # settled already, or being handled by a person
    failpoints.reached("refund.after_attempt_recorded")
    if attempt.payment_reference is None:
        await _fail(context, attempt, f"the order has no captured {provider_name.value} payment")
        return
    connection = attempt.connection_id if factory.platform is attempt.platform else None
    async with _provider_for(context, attempt.merchant_id, factory, connection) as provider:
        if isinstance(provider, str):
            reason = provider
            if attempt.attempts > 1:
                # An earlier attempt may have reached the provider: failing now could let a
                # second refund through later. A person checks instead.
                async with context.database.session() as session:
                    await mark_requires_review(
                        session,
                        attempt.merchant_id,
                        attempt.resolution_id,
                        reason,
                        now=context.clock.now(),
                    )
                return
            await _fail(context, attempt, reason)
            return
        await _refund_through(context, provider, attempt, attempt.payment_reference, factory)


async def _refund_through(
    context: JobContext,
    provider: PaymentProvider,
    attempt: RefundAttempt,
    payment_reference: str,
    factory: PaymentProviderFactory,
) -> None:
    resolution_id = attempt.resolution_id
    provider_name = factory.provider
    refund = None
    key_age = context.clock.now() - attempt.key_created_at
    if attempt.attempts > 1 or key_age > factory.idempotency_keys_trusted_for:
        # An earlier attempt may have made the refund without us hearing back.
        refund = await provider.find_refund(
            payment_reference, str(resolution_id), order_reference=attempt.order_reference
        )
    if refund is None:
        if attempt.attempts > MAX_BLIND_ATTEMPTS:
            async with context.database.session() as session:
                await mark_requires_review(
                    session,
                    attempt.merchant_id,
                    resolution_id,
                    f"{attempt.attempts - 1} attempts had no clear outcome and no refund exists;"
                    " check the provider before refunding by hand",
                    now=context.clock.now(),
                )
            return
        try:
            refund = await provider.create_refund(
                RefundRequest(
                    payment_reference=payment_reference,
                    amount_minor=attempt.amount_minor,
                    currency=attempt.currency,
                    idempotency_key=attempt.idempotency_key,
                    metadata=attempt.metadata,
                    order_reference=attempt.order_reference,
                    lines=attempt.lines,
                )
            )
        except ProviderRejected as error:
            await _fail(context, attempt, f"{provider_name.value} refused the refund: {error}")
            return
        except ProviderIdempotencyConflict as error:
            log.error("idempotency conflict", resolution_id=str(resolution_id), error=str(error))
            async with context.database.session() as session:
                await mark_requires_review(
                    session,
                    attempt.merchant_id,
                    resolution_id,
                    f"idempotency conflict: {error}",
                    now=context.clock.now(),
                )
            return
        # ProviderAmbiguous propagates: the job retries with backoff and looks first.
    failpoints.reached("refund.after_provider_answered")
    await _record(context, attempt.merchant_id, provider_name, refund, resolution_id)
    failpoints.reached("refund.before_job_acknowledged")


async def refresh_refund(context: JobContext) -> None:
    """Ask the provider where a refund stands when its webhooks did not say (pending), or
    after an attempt needed review: a refund found there is recorded, nothing is sent."""
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
        order = None if resolution is None else await session.get(Order, resolution.order_id)
    if (
        resolution is None
        or resolution.payment_reference is None
        or resolution.status not in (ResolutionStatus.PROCESSING, ResolutionStatus.REQUIRES_REVIEW)
    ):
        return
    factory = _services(context).registry.payment_providers.get(resolution.provider)
    if factory is None:
        return
    connection = (
        order.connection_id if order is not None and order.platform is factory.platform else None
    )
    async with _provider_for(context, resolution.merchant_id, factory, connection) as provider:
        if isinstance(provider, str):
            return
        refund = await provider.find_refund(
            resolution.payment_reference,
            str(resolution_id),
            order_reference=order.external_id if order else None,
        )
    if refund is not None:
        await _record(context, resolution.merchant_id, resolution.provider, refund, resolution_id)


async def apply_store_credit(context: JobContext) -> None:
    """Write the ledger entry, then mirror it to the provider's customer balance if any."""
    resolution_id = uuid.UUID(context.job.payload["resolutionId"])
    merchant_id = uuid.UUID(context.job.payload["merchantId"])
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
    if resolution is None or resolution.status in DEAD_RESOLUTION_STATUSES:
        return  # a part of a split refund that was called off with the rest of it
    async with context.database.session() as session:
        try:
            await record_resolution_outcome(
                session,
                merchant_id,
                resolution_id,
                succeeded=True,
                actor="system",
                provider_reference="ledger",
                now=context.clock.now(),
            )
        except DomainError as error:
            raise PermanentJobError(f"store credit could not be recorded: {error}") from error
    if resolution.breakdown.get("keepInLedger"):
        return  # store credit spent here comes back here, where it was spendable
    # Spendable in one place: the merchant's platform when it keeps store credit there,
    # otherwise the payment provider's customer balance when the customer has one.
    if not await transfer_store_credit(context, resolution_id):
        await _mirror_to_customer_balance(context, resolution_id, merchant_id)


async def _mirror_to_customer_balance(
    context: JobContext, resolution_id: uuid.UUID, merchant_id: uuid.UUID
) -> None:
    # The ledger is the truth; credit is moved to the first installed provider that keeps
    # customer balances, where the customer has an account there.
    factories = _services(context).registry.payment_providers.values()
    factory = next((found for found in factories if found.holds_customer_balances), None)
    if factory is None:
        return
    async with _provider_for(context, merchant_id, factory) as provider:
        if isinstance(provider, str):
            return
        # The provider is reachable before the credit is held back for it.
        async with context.database.session() as session:
            try:
                mirror = await store_credit_mirror(session, resolution_id, now=context.clock.now())
            except InsufficientCredit as error:
                kept: InsufficientCredit | None = error
            else:
                kept = None
        if kept is not None:
            await _note_credit_kept(context, merchant_id, resolution_id, kept.message)
            return
        if mirror is None or mirror.customer_reference is None or mirror.already_mirrored:
            return
        try:
            reference = await provider.credit_customer_balance(
                mirror.customer_reference,
                mirror.amount_minor,
                mirror.currency,
                mirror.idempotency_key,
                mirror.description,
            )
        except ProviderRejected as error:
            # Not moved: the credit is spendable here again.
            async with context.database.session() as session:
                await release_transfer(session, merchant_id, resolution_id, MIRROR)
            raise PermanentJobError(f"customer balance not credited: {error}") from error
    async with context.database.session() as session:
        await record_credit_mirrored(session, resolution_id, reference, now=context.clock.now())


async def _note_credit_kept(
    context: JobContext, merchant_id: uuid.UUID, resolution_id: uuid.UUID, message: str
) -> None:
    async with context.database.read_session() as session:
        resolution = await session.get(Resolution, resolution_id)
    if resolution is not None:
        await note_on_job_rma(context, merchant_id, resolution.rma_id, "CREDIT_KEPT_HERE", message)


async def auto_resolve(context: JobContext) -> None:
    """Settle an inspected RMA with the customer's preferred resolution, without a person."""
    rma_id = uuid.UUID(context.job.payload["rmaId"])
    merchant_id = uuid.UUID(context.job.payload["merchantId"])
    # Jobs queued before returns came in several receipts name none: the oldest one waiting.
    receipt_id = context.job.payload.get("receiptId")
    async with context.database.read_session() as session:
        rma = await session.get(Rma, rma_id)
    if rma is None or rma.preferred_resolution is None:
        return
    async with context.database.session() as session:
        try:
            await resolve_rma(
                session,
                merchant_id,
                rma_id,
                kind=rma.preferred_resolution,
                actor="system",
                receipt_id=receipt_id,
                request_key=f"auto-resolve:{receipt_id or rma_id}",
                now=context.clock.now(),
            )
        except DomainError as error:
            log.info(
                "automatic resolution declined; staff will resolve",
                rma_id=str(rma_id),
                reason=error.message,
            )


async def reconcile(context: JobContext) -> None:
    """Sweep resolutions stuck mid-way (a dead-lettered job, a missed webhook) back into work."""
    now = context.clock.now()
    cutoff = now - STALE_AFTER
    slot = context.job.payload.get("slot", now.isoformat())
    async with context.database.session() as session, session.begin():
        stuck = (
            await session.exec(
                select(Resolution)
                .where(
                    col(Resolution.kind) == ResolutionKind.REFUND,
                    col(Resolution.status).in_(
                        [
                            ResolutionStatus.SUBMITTING.value,
                            ResolutionStatus.PROCESSING.value,
                            ResolutionStatus.PENDING.value,
                            ResolutionStatus.REQUIRES_REVIEW.value,
                        ]
                    ),
                    # Only what an installed plugin can look up; the rest waits for staff.
                    col(Resolution.provider).in_(
                        [name.value for name in _services(context).registry.payment_providers]
                    ),
                    sa.or_(
                        col(Resolution.updated_at).is_(None), col(Resolution.updated_at) < cutoff
                    ),
                )
                .limit(500)
            )
        ).all()
        # Replacements of exchanges whose placing job died: placed again (the platform looks
        # for one already placed first).
        stuck_exchanges = (
            await session.exec(
                select(Resolution)
                .where(
                    col(Resolution.kind) == ResolutionKind.EXCHANGE,
                    col(Resolution.status).in_(
                        [ResolutionStatus.PENDING.value, ResolutionStatus.SUBMITTING.value]
                    ),
                    sa.or_(
                        col(Resolution.updated_at).is_(None), col(Resolution.updated_at) < cutoff
                    ),
                )
                .limit(500)
            )
        ).all()
        for resolution in stuck_exchanges:
            await enqueue_once(
                session,
                PLACE_EXCHANGE,
                f"reconcile:{resolution.id}:{slot}",
                {"resolutionId": str(resolution.id)},
                now=now,
                merchant_id=resolution.merchant_id,
                lock_key=f"rma:{resolution.rma_id}",
            )
        for resolution in stuck:
            # Pending at the provider, or waiting for review: only look, never send.
            looks_only = (ResolutionStatus.PROCESSING, ResolutionStatus.REQUIRES_REVIEW)
            kind = REFRESH_REFUND if resolution.status in looks_only else EXECUTE_REFUND
            await enqueue_once(
                session,
                kind,
                f"reconcile:{resolution.id}:{slot}",
                {"resolutionId": str(resolution.id), "provider": resolution.provider.value},
                now=now,
                merchant_id=resolution.merchant_id,
                lock_key=f"rma:{resolution.rma_id}",
            )
