"""The job that processes a stored webhook delivery: its topic's handler parses it, core applies.

Handlers come from the plugins (by platform and topic). What they return is applied here
through core's use cases: a provider's refund report settles its resolution, a note or an
"ignored" is kept on the delivery. Unknown topics are acknowledged and marked ignored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence

import structlog

from core.entities import WebhookDelivery
from core.enums import Platform, ResolutionStatus, WebhookState
from core.jobs.worker import Handler, JobContext, PermanentJobError
from core.ports.payments import RefundReport
from core.ports.webhooks import (
    AccessRevoked,
    AccountErasureRequested,
    CustomerDataRequested,
    CustomerRedactionRequested,
    Ignored,
    Note,
    OrderChanged,
    PlatformReturnEnded,
    TopicContext,
    TopicHandler,
    TopicResult,
)
from core.usecases.connections import set_connection_enabled
from core.usecases.platform_returns import record_platform_return_ended
from core.usecases.platform_sync import queue_order_sync
from core.usecases.privacy import erase_shop, export_customer_data, redact_customer
from core.usecases.provider_reports import (
    REFUND_STATUS_MEANS,
    ReportDoesNotMatch,
    record_provider_refund,
)

log = structlog.get_logger()

TopicTable = Mapping[Platform, Mapping[str, TopicHandler]]


def delivery_processor(topics: TopicTable) -> Handler:
    """The job handler for ``webhooks.process_delivery`` over a table of topic handlers."""

    async def process(context: JobContext) -> None:
        delivery_id = uuid.UUID(context.job.payload["deliveryId"])
        async with context.database.read_session() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise PermanentJobError(f"delivery {delivery_id} does not exist")
        handler = topics.get(delivery.platform, {}).get(delivery.topic)
        if handler is None:
            await _mark(context, delivery_id, WebhookState.IGNORED, "no handler for this topic")
            return
        try:
            payload = json.loads(delivery.body)
            result = await handler(_topic_context(context, delivery), payload)
        except (ValueError, KeyError, TypeError) as error:
            # A body we cannot read will not read better next time.
            await _mark(context, delivery_id, WebhookState.FAILED, f"unreadable payload: {error}")
            raise PermanentJobError(f"unreadable payload: {error}") from error
        try:
            state, note = await _apply(context, delivery, result)
        except Exception as error:
            final = context.job.attempts >= context.job.max_attempts
            await _mark(
                context,
                delivery_id,
                WebhookState.FAILED if final else WebhookState.RECEIVED,
                f"{type(error).__name__}: {error}",
            )
            raise
        await _mark(context, delivery_id, state, note)

    return process


def _topic_context(context: JobContext, delivery: WebhookDelivery) -> TopicContext:
    return TopicContext(
        delivery_id=delivery.id,
        merchant_id=delivery.merchant_id,
        connection_id=delivery.connection_id,
        topic=delivery.topic,
        headers=dict(delivery.headers),
        now=context.clock.now(),
    )


async def _apply(
    context: JobContext,
    delivery: WebhookDelivery,
    results: TopicResult | Sequence[TopicResult],
) -> tuple[WebhookState, str | None]:
    """Apply each result; the delivery is IGNORED only when every result was."""
    if not isinstance(results, Sequence):
        results = [results]
    outcomes = [await _apply_one(context, delivery, result) for result in results]
    notes = "; ".join(note for _state, note in outcomes if note) or None
    if outcomes and all(state is WebhookState.IGNORED for state, _note in outcomes):
        return WebhookState.IGNORED, notes
    return WebhookState.PROCESSED, notes


async def _apply_one(
    context: JobContext, delivery: WebhookDelivery, result: TopicResult
) -> tuple[WebhookState, str | None]:
    if isinstance(result, Note):
        return WebhookState.PROCESSED, result.text
    if isinstance(result, Ignored):
        return WebhookState.IGNORED, result.reason
    if isinstance(result, OrderChanged):
        async with context.database.session() as session:
            await queue_order_sync(
                session,
                delivery.connection_id,
                delivery.merchant_id,
                result.order_reference,
                now=context.clock.now(),
            )
        return WebhookState.PROCESSED, None
    if isinstance(result, CustomerDataRequested | CustomerRedactionRequested):
        return await _apply_privacy(context, delivery, result)
    if isinstance(result, AccountErasureRequested):
        async with context.database.session() as session:
            done = await erase_shop(session, delivery.connection_id, now=context.clock.now())
        return WebhookState.PROCESSED, done
    if isinstance(result, PlatformReturnEnded):
        async with context.database.session() as session:
            done = await record_platform_return_ended(
                session,
                delivery.merchant_id,
                result.return_reference,
                result.outcome,
                now=context.clock.now(),
            )
        return WebhookState.PROCESSED, done
    if isinstance(result, AccessRevoked):
        async with context.database.session() as session:
            connection = await set_connection_enabled(
                session,
                delivery.connection_id,
                enabled=False,
                now=context.clock.now(),
                unless_enabled_since=result.triggered_at,
            )
        if connection.disabled_at is None:
            return WebhookState.IGNORED, "from before the connection was last installed"
        return WebhookState.PROCESSED, f"connection disabled: {result.reason}"
    return await _apply_refund_report(context, delivery, result)


async def _apply_privacy(
    context: JobContext,
    delivery: WebhookDelivery,
    result: CustomerDataRequested | CustomerRedactionRequested,
) -> tuple[WebhookState, str | None]:
    async with context.database.session() as session:
        if isinstance(result, CustomerDataRequested):
            export = await export_customer_data(
                session,
                delivery.merchant_id,
                email=result.email,
                external_id=result.customer_reference,
                request_reference=result.request_reference,
                now=context.clock.now(),
            )
            return WebhookState.PROCESSED, f"data export {export.id} ready for ADMINs"
        redacted = await redact_customer(
            session,
            delivery.merchant_id,
            email=result.email,
            external_id=result.customer_reference,
            now=context.clock.now(),
        )
    return WebhookState.PROCESSED, f"{redacted} customer record(s) redacted"


async def _apply_refund_report(
    context: JobContext, delivery: WebhookDelivery, report: RefundReport
) -> tuple[WebhookState, str | None]:
    """Events may arrive twice or out of order; the resolution's status only moves forward."""
    try:
        async with context.database.session() as session:
            resolution = await record_provider_refund(
                session,
                delivery.merchant_id,
                report,
                actor=report.provider.value,
                now=context.clock.now(),
            )
    except ReportDoesNotMatch as mismatch:
        log.info("webhook delivery ignored", delivery_id=str(delivery.id), why=mismatch.message)
        return WebhookState.IGNORED, mismatch.message
    if resolution is None:
        return WebhookState.PROCESSED, f"no resolution matches refund {report.provider_reference}"
    reported = REFUND_STATUS_MEANS[report.status]
    if resolution.status is not reported and reported is not ResolutionStatus.PROCESSING:
        return WebhookState.PROCESSED, (
            f"{report.provider.value} reports {report.status.value} but the resolution is "
            f"{resolution.status.value}; noted on the RMA's timeline"
        )
    return WebhookState.PROCESSED, None


async def _mark(
    context: JobContext, delivery_id: uuid.UUID, state: WebhookState, note: str | None
) -> None:
    async with context.database.session() as session, session.begin():
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return
        delivery.state = state
        delivery.error = (note or None) and note[:2000]
        delivery.processed_at = context.clock.now() if state is not WebhookState.RECEIVED else None
        session.add(delivery)
