"""Choosing how an RMA is settled, recording the outcome, and closing it.

Choosing creates the :class:`Resolution` row, with its own idempotency key, in the same
transaction that moves the RMA to RESOLVING. Moving the money happens afterwards, outside any
transaction, and reports back through :func:`record_resolution_outcome`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import (
    Inspection,
    Order,
    OrderPayment,
    Receipt,
    Resolution,
    ReturnPolicy,
    Rma,
    StoreCreditEntry,
)
from core.enums import (
    BALANCE_KINDS,
    CONFIRMED_BY_STAFF,
    DEAD_RESOLUTION_STATUSES,
    ORDER_PLATFORMS,
    REFUND_PROVIDERS,
    PaymentProviderName,
    ReceiptStatus,
    ResolutionKind,
    ResolutionStatus,
    RmaStatus,
)
from core.errors import (
    Conflict,
    InvalidInput,
    NotEligible,
    QuantityExceeded,
    RefundExceedsPaid,
    ResolutionNotAllowed,
)
from core.outbox.kinds import (
    APPLY_STORE_CREDIT,
    EXECUTE_REFUND,
    PLACE_EXCHANGE,
    RECORD_PLATFORM_REFUND,
)
from core.outbox.queue import enqueue
from core.rules.policy import (
    BLOCKING_CODES,
    MERCHANT_FAULT_REASONS,
    EligibilityCode,
    is_final_sale,
    priced_reason,
)
from core.rules.pricing import LinePricing, RefundQuote, quote_refund, store_credit_bonus
from core.usecases.exchanges import (
    CheckedExchange,
    ExchangeRequest,
    call_off_exchanges,
    check_exchange,
    new_exchange,
    record_placed_by_hand,
)
from core.usecases.inputs import as_uuid, checked_now, clean_text, parse_enum
from core.usecases.overrides import Adjustments, adjusted_quote, check_adjustments
from core.usecases.owned_rows import get_owned, load_order, lock_rma, policy_of
from core.usecases.priced import Priced, priced_units, shipping_refunded_minor
from core.usecases.receipts import follow_receipts, pick_receipt, receipts_of
from core.usecases.refund_parts import PlannedPart, moved_money, parts_of, plan_refund_parts
from core.usecases.timeline import record_event, transition

FINAL_RESOLUTION_STATUSES = frozenset({ResolutionStatus.SUCCEEDED}) | DEAD_RESOLUTION_STATUSES


@dataclass(frozen=True, slots=True)
class ChosenResolution:
    rma: Rma
    resolution: Resolution


def refund_payment(order: Order, provider: PaymentProviderName) -> OrderPayment | None:
    """The payment a refund through ``provider`` goes back to: its largest capture."""
    payments = [p for p in order.payments if p.provider is provider and p.captured_minor > 0]
    return max(payments, key=lambda payment: payment.captured_minor, default=None)


def refund_provider(order: Order) -> PaymentProviderName:
    """Who moves a refund's money: the order's payment provider, or staff by hand."""
    providers = {payment.provider for payment in order.payments if payment.captured_minor > 0}
    for provider in REFUND_PROVIDERS:
        if provider in providers:
            return provider
    return PaymentProviderName.MANUAL


def refundable_minor(order: Order) -> int:
    """What the customer paid and can still get back from us: the captured payments (or the
    order's total when none are known), less what the platform refunded without us."""
    captured = sum(payment.captured_minor for payment in order.payments)
    paid = captured if order.payments else order.total_minor
    return max(paid - order.refunded_elsewhere_minor, 0)


def is_warranty_claim(rma: Rma) -> bool:
    """Whether the request came after the window, under warranty (its stored decision)."""
    lines = (rma.decision or {}).get("lines") or {}
    return any("WARRANTY_ONLY" in (line.get("codes") or []) for line in lines.values())


def _refuse_if_policy_refused(rma: Rma) -> None:
    """Goods that arrived unauthorized are recorded whatever the policy says; a line it
    refused is never refunded or credited."""
    lines = (rma.decision or {}).get("lines") or {}
    codes = sorted(
        {
            str(code)
            for line in lines.values()
            if not line.get("eligible", True)
            for code in line.get("codes") or []
            if code in BLOCKING_CODES
        }
    )
    if codes:
        raise NotEligible(
            f"the return policy refuses these goods ({', '.join(codes)}): send them back or "
            "dispose of them with refuseGoods",
            codes,
            field="id",
        )


async def _quote(
    session: AsyncSession, rma: Rma, order: Order, kind: ResolutionKind, receipt: Receipt
) -> RefundQuote:
    policy = await policy_of(session, rma)
    _refuse_if_policy_refused(rma)
    warranty = is_warranty_claim(rma)
    fee_percent = (
        0
        # An exchange keeps the sale, as store credit does: the same fee rule applies.
        if kind in (ResolutionKind.STORE_CREDIT, ResolutionKind.EXCHANGE)
        and not policy.restocking_fee_on_store_credit
        else policy.restocking_fee_percent
    )
    inspections = {
        inspection.rma_line_id: inspection
        for inspection in (
            await session.exec(select(Inspection).where(Inspection.receipt_id == receipt.id))
        ).all()
    }
    priced_before = await priced_units(session, order.id)
    order_lines = {line.id: line for line in order.lines}
    in_receipt = {line.rma_line_id: line.quantity for line in receipt.lines}
    pricing = []
    for line in rma.lines:
        if line.id not in in_receipt:
            continue
        order_line = order_lines[line.order_line_id]
        inspection = inspections.get(line.id)
        confirmed = inspection.reason_confirmed if inspection else None
        if (
            confirmed is False
            and line.reason in MERCHANT_FAULT_REASONS
            and is_final_sale(policy, order_line.tags)
        ):
            # Final sale was set aside only for the merchant's mistake, which it was not.
            raise NotEligible(
                f"{order_line.title} is final sale and the {line.reason.value} claim was "
                "overturned at inspection: refuse the return instead",
                [EligibilityCode.FINAL_SALE.value],
                field="id",
            )
        before = priced_before.get(order_line.id, Priced())
        if before.units + in_receipt[line.id] > order_line.quantity:
            raise QuantityExceeded(
                f"{order_line.title}: {before.units} of {order_line.quantity} unit(s) are "
                f"refunded or being refunded already; {in_receipt[line.id]} more is too many",
                field="id",
            )
        pricing.append(
            LinePricing(
                order_line_id=line.order_line_id,
                unit_price_minor=order_line.unit_price_minor,
                quantity_ordered=order_line.quantity,
                discount_minor=order_line.discount_minor,
                tax_minor=order_line.tax_minor,
                already_refunded_quantity=before.units,
                already_refunded_goods_minor=before.goods_minor,
                already_refunded_tax_minor=before.tax_minor,
                quantity=in_receipt[line.id],
                reason=priced_reason(line.reason, confirmed),
                condition=inspection.condition if inspection else line.condition,
            )
        )
    shipping_refunded = await shipping_refunded_minor(session, order.id)
    return quote_refund(
        order.currency,
        pricing,
        restocking_fee_percent=fee_percent,
        unauthorized=rma.unauthorized,
        order_goods_minor=order.goods_minor,
        order_shipping_minor=order.shipping_minor,
        shipping_already_refunded_minor=shipping_refunded,
        # A warranty claim gets shipping back only when the policy says so.
        shipping_refund_reasons=(
            []
            if warranty and not policy.warranty_refunds_shipping
            else policy.shipping_refund_reasons
        ),
    )


async def _live_total(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Money already promised back on this order (bonus credit is the merchant's gift)."""
    total = (
        await session.exec(
            select(
                sa.func.coalesce(sa.func.sum(Resolution.amount_minor - Resolution.bonus_minor), 0)
            ).where(
                Resolution.order_id == order_id,
                col(Resolution.status).not_in([s.value for s in DEAD_RESOLUTION_STATUSES]),
            )
        )
    ).one()
    return int(total)


async def resolve_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    kind: ResolutionKind | str,
    actor: str,
    request_key: str | None = None,
    receipt_id: uuid.UUID | str | None = None,
    adjustments: Adjustments | None = None,
    beyond_agent_limit: bool = False,
    exchange: ExchangeRequest | None = None,
    now: datetime,
) -> ChosenResolution:
    """Choose a refund, store credit or an exchange for an inspected receipt of an RMA and
    price it (an exchange names its replacement in ``exchange``, see
    :mod:`core.usecases.exchanges`).

    Without ``receipt_id``, the oldest receipt waiting for a resolution is resolved. Staff may
    change the price with ``adjustments`` (see :mod:`core.usecases.overrides`);
    ``beyond_agent_limit`` says the caller may raise it past the policy's AGENT limit. A
    repeated call with the same ``request_key`` returns the resolution the first call made.
    """
    chosen = parse_enum(ResolutionKind, kind, "resolution", f"unknown resolution {kind!r}")
    checked = None if adjustments is None else check_adjustments(adjustments)
    replacement = _checked_replacement(chosen, exchange)
    wanted = None if receipt_id is None else as_uuid(receipt_id, "receiptId")
    key = clean_text(request_key, "idempotencyKey", limit=255) or None
    moment = checked_now(now)
    try:
        async with session.begin():
            rma = await lock_rma(session, merchant_id, rma_id)
            if key is not None:
                earlier = (
                    await session.exec(
                        select(Resolution).where(
                            Resolution.merchant_id == merchant_id, Resolution.request_key == key
                        )
                    )
                ).first()
                if earlier is not None:
                    if (
                        earlier.rma_id != rma.id
                        or earlier.breakdown.get("kind", earlier.kind.value) != chosen.value
                        or wanted not in (None, earlier.receipt_id)
                    ):
                        raise Conflict(
                            "this idempotency key was used for another request",
                            field="idempotencyKey",
                        )
                    return ChosenResolution(rma, earlier)
            receipts = await receipts_of(session, rma.id)
            receipt = pick_receipt(
                receipts, wanted, ReceiptStatus.INSPECTED, target=RmaStatus.RESOLVING
            )
            policy = await policy_of(session, rma)
            if chosen.value not in policy.allowed_resolutions:
                raise ResolutionNotAllowed(
                    f"the return policy does not offer {chosen.value}", field="resolution"
                )
            # The order's lock serializes resolutions of its RMAs, so the guard below sees them all.
            order = await load_order(session, merchant_id, rma.order_id, for_update=True)
            quote = await _quote(session, rma, order, chosen, receipt)
            bonus_percent = 0
            if chosen is ResolutionKind.STORE_CREDIT and (
                not is_warranty_claim(rma) or policy.warranty_credit_bonus
            ):
                bonus_percent = policy.store_credit_bonus_percent
            override = None
            if checked is not None:
                quote, override = await adjusted_quote(
                    session,
                    rma,
                    order,
                    quote,
                    checked,
                    bonus_percent=bonus_percent,
                    beyond_agent_limit=beyond_agent_limit,
                    actor=actor,
                )
            bonus = store_credit_bonus(quote.total_minor, bonus_percent)
            already = await _live_total(session, order.id)
            if already + quote.total_minor > refundable_minor(order):
                raise RefundExceedsPaid(
                    f"{quote.total_minor} more would exceed the {refundable_minor(order)} paid "
                    f"({already} already refunded or promised)",
                    field="resolution",
                )
            receipt.status = ReceiptStatus.RESOLVING
            receipt.updated_at = moment
            session.add(receipt)
            await follow_receipts(session, rma, receipts, actor=actor, now=moment)
            parts = await _planned_parts(
                session,
                order,
                policy,
                chosen,
                quote.total_minor + bonus,
                replacement_minor=replacement.value_minor if replacement else 0,
            )
            first = parts[0]
            provider = first.provider
            resolution_id = uuid.uuid4()
            resolution = Resolution(
                id=resolution_id,
                merchant_id=merchant_id,
                rma_id=rma.id,
                receipt_id=receipt.id,
                order_id=order.id,
                part=0,
                group_id=resolution_id,
                kind=first.kind,
                provider=provider,
                status=ResolutionStatus.PENDING,
                amount_minor=first.amount_minor,
                currency=order.currency,
                restocking_fee_minor=quote.restocking_fee_minor,
                shipping_minor=quote.shipping_minor,
                bonus_minor=bonus,
                idempotency_key=f"rma-resolution-{resolution_id}",
                payment_reference=first.payment_reference,
                request_key=key,
                breakdown={
                    "lines": [
                        {
                            "orderLineId": str(line.order_line_id),
                            "quantity": line.quantity,
                            "goodsMinor": line.goods_minor,
                            "taxMinor": line.tax_minor,
                            "restockingFeeMinor": line.restocking_fee_minor,
                            "adjustmentMinor": line.adjustment_minor,
                            "refundTaxMinor": line.refunded_tax_minor,
                            "refundMinor": line.refund_minor,
                        }
                        for line in quote.lines
                    ],
                    "shippingMinor": quote.shipping_minor,
                    "goodwillMinor": quote.goodwill_minor,
                    "bonusMinor": bonus,
                    "totalMinor": quote.total_minor,
                    # What staff chose: part 0 may be another kind (credit spent here going
                    # back to the ledger comes first in a refund of an order paid with it).
                    "kind": chosen.value,
                    **({"override": override} if override else {}),
                    **_part_notes(parts, first),
                },
                created_at=moment,
                updated_at=moment,
            )
            session.add(resolution)
            _enqueue_money_movement(session, resolution, now=moment)
            for number, planned in enumerate(parts[1:], start=1):
                part = _money_part(resolution, planned, number, now=moment)
                session.add(part)
                _enqueue_money_movement(session, part, now=moment)
            if replacement is not None:
                await session.flush()  # the exchange names its resolution
                session.add(new_exchange(resolution, replacement, quote.total_minor, now=moment))
            if override is not None:
                await record_event(
                    session,
                    rma,
                    actor=actor,
                    kind="RESOLUTION_OVERRIDDEN",
                    now=moment,
                    message=f"{override['quotedMinor']} -> {override['adjustedMinor']} "
                    f"{order.currency}: {override['reason']}",
                    data={"resolutionId": str(resolution_id), **override},
                )
            await record_event(
                session,
                rma,
                actor=actor,
                kind="RESOLUTION_CHOSEN",
                now=moment,
                message=f"{chosen.value} of {quote.total_minor + bonus} {order.currency} via "
                + " + ".join(
                    f"{planned.provider.value} {planned.amount_minor}"
                    if len(parts) > 1
                    else planned.provider.value
                    for planned in parts
                ),
                data={
                    "resolutionId": str(resolution_id),
                    "receipt": receipt.sequence,
                    "kind": chosen.value,
                    "provider": provider.value,
                    "amountMinor": quote.total_minor + bonus,
                    "parts": [
                        {"provider": planned.provider.value, "amountMinor": planned.amount_minor}
                        for planned in parts
                    ],
                    "restockingFeeMinor": quote.restocking_fee_minor,
                    "shippingMinor": quote.shipping_minor,
                    "bonusMinor": bonus,
                    "currency": order.currency,
                },
            )
    except IntegrityError as error:
        if key is not None and "request_key" in str(error.orig):
            # Another RMA took the same key at the same moment (PostgreSQL lets both read
            # before either writes; SQLite serializes them and answers below in the block).
            raise Conflict(
                "this idempotency key was used for another request", field="idempotencyKey"
            ) from error
        raise
    return ChosenResolution(rma, resolution)


def _checked_replacement(
    chosen: ResolutionKind, exchange: ExchangeRequest | None
) -> CheckedExchange | None:
    if chosen is ResolutionKind.EXCHANGE:
        if exchange is None:
            raise InvalidInput("exchange", "an exchange names its replacement")
        return check_exchange(exchange)
    if exchange is not None:
        raise InvalidInput("exchange", "only an exchange names a replacement")
    return None


async def _planned_parts(
    session: AsyncSession,
    order: Order,
    policy: ReturnPolicy,
    chosen: ResolutionKind,
    amount_minor: int,
    *,
    replacement_minor: int = 0,
) -> list[PlannedPart]:
    """Store credit is one part in the ledger; a refund goes back over the order's payments;
    an exchange is a part worth what the replacement takes of the returned value, and the rest
    is refunded like any refund.

    A refund of nothing goes, as one part, to whoever would have refunded it.
    """
    if chosen is ResolutionKind.STORE_CREDIT:
        return [PlannedPart(chosen, PaymentProviderName.LEDGER, None, amount_minor)]
    if chosen is ResolutionKind.EXCHANGE:
        # No provider moves money for the replacement itself: it is placed, not paid.
        kept = min(amount_minor, replacement_minor)
        rest = amount_minor - kept
        exchange_part = PlannedPart(chosen, PaymentProviderName.LEDGER, None, kept)
        if not rest:
            return [exchange_part]
        if ResolutionKind.REFUND.value not in policy.allowed_resolutions:
            # A policy that gives no money back gives the difference as store credit.
            credit = PlannedPart(
                ResolutionKind.STORE_CREDIT, PaymentProviderName.LEDGER, None, rest
            )
            return [exchange_part, credit]
        return [exchange_part, *await plan_refund_parts(session, order, policy, rest)]
    parts = await plan_refund_parts(session, order, policy, amount_minor) if amount_minor else []
    if parts:
        return parts
    provider = refund_provider(order)
    payment = refund_payment(order, provider)
    return [PlannedPart(chosen, provider, payment.reference if payment else None, 0)]


def _part_notes(parts: list[PlannedPart], planned: PlannedPart) -> dict[str, object]:
    """What a part's breakdown says about the split (nothing for a resolution in one part)."""
    notes: dict[str, object] = {}
    if len(parts) > 1:
        notes["parts"] = len(parts)
    if planned.keep_in_ledger:
        notes["keepInLedger"] = True
    return notes


def _money_part(
    first: Resolution, planned: PlannedPart, number: int, *, now: datetime
) -> Resolution:
    """One more part of a split refund: money only (part 0 carries the decision)."""
    part_id = uuid.uuid4()
    return Resolution(
        id=part_id,
        merchant_id=first.merchant_id,
        rma_id=first.rma_id,
        receipt_id=first.receipt_id,
        order_id=first.order_id,
        part=number,
        group_id=first.id,
        kind=planned.kind,
        provider=planned.provider,
        status=ResolutionStatus.PENDING,
        amount_minor=planned.amount_minor,
        currency=first.currency,
        idempotency_key=f"rma-resolution-{part_id}",
        payment_reference=planned.payment_reference,
        breakdown={
            "partOf": str(first.id),
            "kind": first.breakdown.get("kind", first.kind.value),
            **({"keepInLedger": True} if planned.keep_in_ledger else {}),
        },
        created_at=now,
        updated_at=now,
    )


async def complete_manual_refund(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    resolution_id: uuid.UUID | str,
    *,
    reference: str,
    actor: str,
    now: datetime,
) -> ChosenResolution:
    """Staff confirm that they refunded by hand; the RMA is RESOLVED. Repeating it is a no-op."""
    cleaned = clean_text(reference, "reference", limit=255)
    if not cleaned:
        raise InvalidInput("reference", "say where the money went (a transaction reference)")
    moment = checked_now(now)
    async with session.begin():
        resolution = await get_owned(
            session, Resolution, merchant_id, resolution_id, field="resolutionId"
        )
        rma = await lock_rma(session, merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        # A part of a split refund that failed after the others paid out may be refunded
        # another way (the customer's card is gone); staff say so here.
        held = resolution.status is ResolutionStatus.REQUIRES_REVIEW
        stuck_part = held and len(await parts_of(session, resolution)) > 1
        # A replacement the job could not place: staff placed it by hand (the reference names
        # the order) and the exchange waits for fulfilment like any other.
        placed_by_hand = held and resolution.kind is ResolutionKind.EXCHANGE
        if placed_by_hand:
            await record_placed_by_hand(session, resolution.id, cleaned, now=moment)
        elif resolution.kind is not ResolutionKind.REFUND or not (
            resolution.provider in CONFIRMED_BY_STAFF or stuck_part
        ):
            raise Conflict(
                f"this resolution is settled by {resolution.provider.value}, not by hand",
                field="resolutionId",
            )
        if resolution.status is ResolutionStatus.SUCCEEDED:
            return ChosenResolution(rma, resolution)
        if resolution.status in FINAL_RESOLUTION_STATUSES:
            raise Conflict(f"the resolution is {resolution.status.value}", field="resolutionId")
        await settle_resolution(
            session,
            rma,
            resolution,
            ResolutionStatus.SUCCEEDED,
            actor=actor,
            now=moment,
            provider_reference=cleaned,
            reason="",
        )
    return ChosenResolution(rma, resolution)


def _enqueue_money_movement(
    session: AsyncSession, resolution: Resolution, *, now: datetime
) -> None:
    """In the same transaction as the choice: the job that moves the money, when a machine can.

    Manual refunds wait for staff instead.
    """
    payload = {
        "resolutionId": str(resolution.id),
        "merchantId": str(resolution.merchant_id),
        "provider": resolution.provider.value,
    }
    lock = f"rma:{resolution.rma_id}"
    if resolution.kind is ResolutionKind.EXCHANGE:
        enqueue(
            session,
            PLACE_EXCHANGE,
            payload,
            now=now,
            merchant_id=resolution.merchant_id,
            lock_key=lock,
        )
    elif resolution.kind is ResolutionKind.STORE_CREDIT:
        enqueue(
            session,
            APPLY_STORE_CREDIT,
            payload,
            now=now,
            merchant_id=resolution.merchant_id,
            lock_key=lock,
        )
    elif resolution.provider not in CONFIRMED_BY_STAFF:
        # The installed plugin for this provider moves the money (the job finds it).
        enqueue(
            session,
            EXECUTE_REFUND,
            payload,
            now=now,
            merchant_id=resolution.merchant_id,
            lock_key=lock,
        )


async def record_resolution_outcome(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    resolution_id: uuid.UUID | str,
    *,
    succeeded: bool,
    actor: str,
    provider_reference: str | None = None,
    failure_reason: str = "",
    now: datetime,
) -> ChosenResolution:
    """Settle a resolution: RESOLVED when the money moved, back to INSPECTED when it failed.

    A store-credit success writes the ledger entry (once: the entry is unique per resolution).
    Recording an outcome for a settled resolution again is a no-op when it agrees.
    """
    reason = clean_text(failure_reason, "failureReason")
    if not succeeded and not reason:
        raise InvalidInput("failureReason", "say why the resolution failed")
    moment = checked_now(now)
    async with session.begin():
        resolution = await get_owned(
            session, Resolution, merchant_id, resolution_id, field="resolutionId"
        )
        rma = await lock_rma(session, merchant_id, resolution.rma_id)
        await session.refresh(resolution, with_for_update=True)
        wanted = ResolutionStatus.SUCCEEDED if succeeded else ResolutionStatus.FAILED
        if resolution.status in FINAL_RESOLUTION_STATUSES:
            if resolution.status is wanted:
                return ChosenResolution(rma, resolution)
            raise Conflict(
                f"the resolution is already {resolution.status.value}", field="resolutionId"
            )
        await settle_resolution(
            session,
            rma,
            resolution,
            wanted,
            actor=actor,
            now=moment,
            provider_reference=provider_reference,
            reason=reason,
        )
    return ChosenResolution(rma, resolution)


async def settle_resolution(
    session: AsyncSession,
    rma: Rma,
    resolution: Resolution,
    status: ResolutionStatus,
    *,
    actor: str,
    now: datetime,
    provider_reference: str | None,
    reason: str,
) -> None:
    """Give a live resolution its final status and move the RMA accordingly.

    The caller holds the RMA's lock, then the resolution's (always in that order). A part of a
    split refund settles its receipt only with the whole group (see
    :mod:`core.usecases.refund_parts`).
    """
    group = await parts_of(session, resolution)
    others = [part for part in group if part.id != resolution.id]
    succeeded = status is ResolutionStatus.SUCCEEDED
    if not succeeded and any(moved_money(part) for part in others):
        await _hold_part_for_review(session, rma, resolution, reason, actor=actor, now=now)
        return
    if not succeeded:
        for part in others:
            if part.status not in DEAD_RESOLUTION_STATUSES:
                part.status = ResolutionStatus.CANCELED
                part.failure_reason = "another part of the refund failed before this one moved"
                part.updated_at = now
                session.add(part)
        # A replacement the resolution was to give is called off with it.
        await call_off_exchanges(session, [part.id for part in group], reason, now=now)
    resolution.status = status
    resolution.provider_reference = provider_reference or resolution.provider_reference
    resolution.failure_reason = None if succeeded else reason or None
    resolution.updated_at = now
    session.add(resolution)
    if succeeded:
        await _money_moved(session, rma, resolution, now=now)
        if any(part.status is not ResolutionStatus.SUCCEEDED for part in others):
            await record_event(
                session,
                rma,
                actor=actor,
                kind="REFUND_PART_SETTLED",
                now=now,
                message=f"part {resolution.part + 1} of {len(group)}: "
                f"{resolution.amount_minor} {resolution.currency} through "
                f"{resolution.provider.value}",
                data=_money_of(resolution),
            )
            return
    total = sum(part.amount_minor for part in group)
    money = {**_money_of(resolution), "amountMinor": total}
    if others:
        money["resolutionId"] = str(resolution.group_id)
    receipt = await session.get(Receipt, resolution.receipt_id)
    assert receipt is not None, "a resolution's receipt is deleted only with its RMA"
    receipt.status = (
        ReceiptStatus.RESOLVED if status is ResolutionStatus.SUCCEEDED else ReceiptStatus.INSPECTED
    )
    receipt.updated_at = now
    session.add(receipt)
    receipts = await receipts_of(session, rma.id)
    # What staff chose, whatever way its first part went back.
    chosen = group[0].breakdown.get("kind", group[0].kind.value)
    message = (
        f"{chosen} of {total} {resolution.currency} done"
        if succeeded
        else f"{resolution.kind.value} {status.value.lower()}: {reason}"
    )
    if succeeded:
        receipt.resolved_at = now
        rma.resolved_at = now
    # RESOLVED (or back to INSPECTED after a failure) unless another receipt of the RMA is
    # still further behind; the timeline shows the outcome either way.
    moved = await follow_receipts(
        session, rma, receipts, actor=actor, now=now, message=message, data=money
    )
    if not moved:
        await record_event(
            session,
            rma,
            actor=actor,
            kind="RESOLUTION_SETTLED",
            now=now,
            message=f"parcel {receipt.sequence}: {message}",
            data=money,
        )


def _money_of(resolution: Resolution) -> dict[str, object]:
    return {
        "resolutionId": str(resolution.id),
        "amountMinor": resolution.amount_minor,
        "currency": resolution.currency,
        "providerReference": resolution.provider_reference,
        "status": resolution.status.value,
    }


async def _money_moved(
    session: AsyncSession, rma: Rma, resolution: Resolution, *, now: datetime
) -> None:
    """What follows from one resolution (or part) succeeding: store credit in the ledger
    (once: the entry is unique per resolution), and the platform's order told."""
    if resolution.kind is ResolutionKind.STORE_CREDIT:
        session.add(
            StoreCreditEntry(
                merchant_id=rma.merchant_id,
                customer_id=rma.customer_id,
                resolution_id=resolution.id,
                amount_minor=resolution.amount_minor,
                currency=resolution.currency,
                note=f"RMA {rma.number}",
                created_at=now,
            )
        )
    order = await session.get(Order, resolution.order_id)
    if order is not None and order.platform in ORDER_PLATFORMS:
        # The platform's order is told what happened (and restocks with it, where the
        # platform does it that way); a job, so a platform that is down delays nothing.
        enqueue(
            session,
            RECORD_PLATFORM_REFUND,
            {"resolutionId": str(resolution.id)},
            now=now,
            merchant_id=rma.merchant_id,
            lock_key=f"order:{order.id}",
        )


async def _hold_part_for_review(
    session: AsyncSession,
    rma: Rma,
    resolution: Resolution,
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> None:
    """A part failed after another part of its refund may have paid out: undoing the group
    is no longer possible, so a person finishes it (retry, or refund it another way). A part
    held already stays as it is (a repeated report changes nothing)."""
    if resolution.status is ResolutionStatus.REQUIRES_REVIEW:
        return
    resolution.status = ResolutionStatus.REQUIRES_REVIEW
    resolution.failure_reason = (reason or "the provider refused this part")[:2000]
    resolution.updated_at = now
    session.add(resolution)
    await record_event(
        session,
        rma,
        actor=actor,
        kind="RESOLUTION_NEEDS_REVIEW",
        now=now,
        message=f"part {resolution.part + 1} of a split refund failed after another part "
        f"paid out: {resolution.failure_reason}",
        data={"resolutionId": str(resolution.id)},
    )


async def close_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    rma_id: uuid.UUID | str,
    *,
    actor: str,
    note: str = "",
    now: datetime,
) -> Rma:
    """Close a resolved RMA; nothing more happens to it (units still expected stop being)."""
    message = clean_text(note, "note")
    moment = checked_now(now)
    async with session.begin():
        rma = await lock_rma(session, merchant_id, rma_id)
        await transition(session, rma, RmaStatus.CLOSED, actor=actor, now=moment, message=message)
        rma.closed_at = moment
    return rma


async def store_credit_balance(
    session: AsyncSession, merchant_id: uuid.UUID, customer_id: uuid.UUID | str
) -> dict[str, int]:
    """A customer's store credit per currency, spendable here: the sum of their ledger
    entries, less what was transferred to a platform (spending there is history only)."""
    customer = as_uuid(customer_id, "customerId")
    rows = (
        await session.exec(
            select(StoreCreditEntry.currency, sa.func.sum(StoreCreditEntry.amount_minor))
            .where(
                StoreCreditEntry.merchant_id == merchant_id,
                StoreCreditEntry.customer_id == customer,
                col(StoreCreditEntry.kind).in_([kind.value for kind in BALANCE_KINDS]),
            )
            .group_by(col(StoreCreditEntry.currency))
        )
    ).all()
    if not rows:
        # An unknown customer and one with no credit must not be told apart by other merchants.
        return {}
    return {currency: int(total) for currency, total in rows}
