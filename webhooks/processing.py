"""The job that processes a stored delivery: dispatch by platform and topic, record the outcome."""

from __future__ import annotations

import json
import uuid

import structlog

from core.entities import WebhookDelivery
from core.enums import WebhookState
from core.jobs.worker import Handler, JobContext, PermanentJobError
from webhooks.ignored import DeliveryIgnored
from webhooks.topics import TopicTable

log = structlog.get_logger()


def delivery_processor(topics: TopicTable) -> Handler:
    """The job handler for ``webhooks.process_delivery`` over a table of topic handlers."""

    async def process(context: JobContext) -> None:
        delivery_id = uuid.UUID(context.job.payload["deliveryId"])
        database = context.database
        async with database.read_session() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise PermanentJobError(f"delivery {delivery_id} does not exist")
        handler = topics.get(delivery.platform, {}).get(delivery.topic)
        if handler is None:
            await _mark(context, delivery_id, WebhookState.IGNORED, "no handler for this topic")
            return
        try:
            payload = json.loads(delivery.body)
            note = await handler(database, delivery, payload, context.clock.now())
        except DeliveryIgnored as ignored:
            log.info(
                "webhook delivery ignored", delivery_id=str(delivery_id), reason=ignored.reason
            )
            await _mark(context, delivery_id, WebhookState.IGNORED, ignored.reason)
            return
        except (ValueError, KeyError, TypeError) as error:
            # A body we cannot read will not read better next time.
            await _mark(context, delivery_id, WebhookState.FAILED, f"unreadable payload: {error}")
            raise PermanentJobError(f"unreadable payload: {error}") from error
        except Exception as error:
            final = context.job.attempts >= context.job.max_attempts
            await _mark(
                context,
                delivery_id,
                WebhookState.FAILED if final else WebhookState.RECEIVED,
                f"{type(error).__name__}: {error}",
            )
            raise
        await _mark(context, delivery_id, WebhookState.PROCESSED, note)

    return process


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
