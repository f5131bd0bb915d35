"""Asking for a return: eligibility per line, the policy's decision, the RMA number."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Order, OrderLine, ReturnPolicy, Rma, RmaLine
from core.enums import ItemCondition, ResolutionKind, ReturnReason, RmaStatus
from core.errors import InvalidInput, NotEligible, NotFound, QuantityExceeded, ResolutionNotAllowed
from core.rules.numbers import RANDOM_BITS, rma_number_from_bits
from core.rules.policy import LineEligibility, LineFacts, LineRequest, evaluate_line
from core.rules.pricing import LinePricing, price_line
from core.rules.risk import CustomerHistory, Risk, risk_score
from core.usecases.inputs import (
    as_uuid,
    checked_now,
    clean_text,
    parse_enum,
    require_positive,
    require_unique,
)
from core.usecases.owned_rows import current_policy, load_order
from core.usecases.returned_units import returned_quantities
from core.usecases.timeline import SYSTEM_ACTOR, record_event, transition

NumberSource = Callable[[], int]


def random_number_bits() -> int:
    return secrets.randbits(RANDOM_BITS)


@dataclass(frozen=True, slots=True)
class ReturnLineInput:
    order_line_id: uuid.UUID | str
    quantity: int
    reason: ReturnReason | str
    condition: ItemCondition | str = ItemCondition.UNOPENED
    comment: str = ""
    troubleshooting_completed: bool = False


@dataclass(frozen=True, slots=True)
class LineDecision:
    order_line: OrderLine
    eligibility: LineEligibility
    # For the returnable units: what comes back, and the fee if they come back opened.
    refund_minor: int
    restocking_fee_if_opened_minor: int


def _estimate(
    order_line: OrderLine, eligibility: LineEligibility, already: int, fee_percent: int
) -> tuple[int, int]:
    if eligibility.max_quantity == 0:
        return 0, 0
    priced = price_line(
        LinePricing(
            order_line_id=order_line.id,
            unit_price_minor=order_line.unit_price_minor,
            quantity_ordered=order_line.quantity,
            discount_minor=order_line.discount_minor,
            tax_minor=order_line.tax_minor,
            already_refunded_quantity=already,
            quantity=eligibility.max_quantity,
            reason=ReturnReason.UNWANTED,
            condition=ItemCondition.OPENED,
        ),
        fee_percent,
        unauthorized=False,
    )
    return priced.goods_minor + priced.tax_minor, priced.restocking_fee_minor


def line_facts(order: Order, line: OrderLine, returned: dict[uuid.UUID, int]) -> LineFacts:
    return LineFacts(
        quantity=line.quantity,
        category=line.category,
        tags=tuple(line.tags),
        placed_at=order.placed_at,
        delivered_at=order.delivered_at,
        already_returned=returned.get(line.id, 0),
    )


async def order_eligibility(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    order_id: uuid.UUID | str,
    *,
    customer_id: uuid.UUID | None = None,
    now: datetime,
) -> tuple[Order, ReturnPolicy, list[LineDecision]]:
    """What each line of an order may return today, under the current policy (read only)."""
    order = await load_order(session, merchant_id, order_id)
    if customer_id is not None and order.customer_id != customer_id:
        raise NotFound("Order", order.id, field="orderId")
    policy = await current_policy(session, merchant_id)
    returned = await returned_quantities(session, order.id)
    moment = checked_now(now)
    decisions = []
    for line in order.lines:
        eligibility = evaluate_line(policy, line_facts(order, line, returned), moment)
        refund, fee = _estimate(
            line, eligibility, returned.get(line.id, 0), policy.restocking_fee_percent
        )
        decisions.append(LineDecision(line, eligibility, refund, fee))
    return order, policy, decisions


def _parse_line(line: ReturnLineInput, index: int) -> tuple[uuid.UUID, LineRequest]:
    where = f"lines[{index}]"
    require_positive(line.quantity, f"{where}.quantity")
    reason = parse_enum(
        ReturnReason, line.reason, f"{where}.reason", f"unknown return reason {line.reason!r}"
    )
    condition = parse_enum(
        ItemCondition, line.condition, f"{where}.condition", f"unknown condition {line.condition!r}"
    )
    clean_text(line.comment, f"{where}.comment")
    order_line_id = as_uuid(line.order_line_id, f"{where}.orderLineId")
    return order_line_id, LineRequest(
        line.quantity, reason, condition, line.troubleshooting_completed
    )


async def _customer_history(session: AsyncSession, order: Order, now: datetime) -> CustomerHistory:
    orders = (
        await session.exec(
            select(sa.func.count()).select_from(Order).where(Order.customer_id == order.customer_id)
        )
    ).one()
    year_ago = now - timedelta(days=365)
    counts = (
        await session.exec(
            select(
                sa.func.count(),
                sa.func.count().filter(col(Rma.unauthorized).is_(True)),
                sa.func.count().filter(col(Rma.status) == RmaStatus.REJECTED.value),
            ).where(Rma.customer_id == order.customer_id, Rma.created_at >= year_ago)
        )
    ).one()
    return CustomerHistory(
        orders=int(orders),
        rmas_last_365_days=int(counts[0]),
        unauthorized_returns=int(counts[1]),
        rejected_rmas=int(counts[2]),
    )


async def unique_rma_number(
    session: AsyncSession, merchant_id: uuid.UUID, number_source: NumberSource
) -> str:
    """Draw numbers until one is free for this merchant (a clash is rare but possible)."""
    for _ in range(20):
        number = rma_number_from_bits(number_source())
        taken = (
            await session.exec(
                select(Rma.id).where(Rma.merchant_id == merchant_id, Rma.number == number)
            )
        ).first()
        if taken is None:
            return number
    raise RuntimeError("could not draw a free RMA number in 20 attempts")


def _decide_status(
    policy: ReturnPolicy, decisions: Sequence[LineEligibility], risk: Risk
) -> tuple[RmaStatus, str]:
    # The message is shown to the customer: it never names the risk score or its signals,
    # which stay on the RMA for staff.
    if any(decision.needs_review for decision in decisions):
        return RmaStatus.NEEDS_REVIEW, "a warranty claim needs a person to look at it"
    if risk.score > policy.auto_authorize_max_risk:
        return RmaStatus.NEEDS_REVIEW, "the request will be reviewed by the merchant"
    if policy.auto_authorize:
        return RmaStatus.AUTHORIZED, "eligible under the return policy"
    return RmaStatus.REQUESTED, ""


def authorize_fields(rma: Rma, policy: ReturnPolicy, now: datetime) -> None:
    rma.authorized_at = now
    rma.authorization_expires_at = now + timedelta(days=policy.authorization_valid_days)


async def request_rma(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    *,
    order_id: uuid.UUID | str,
    lines: Sequence[ReturnLineInput],
    actor: str,
    customer_id: uuid.UUID | None = None,
    preferred_resolution: ResolutionKind | str | None = None,
    customer_note: str = "",
    now: datetime,
    number_source: NumberSource = random_number_bits,
) -> Rma:
    """Ask to return lines of an order.

    Every line is checked against the current policy; one refused line refuses the request
    with all the codes. An accepted request stores the policy version and its decision, gets an
    RMA number, and is authorized at once when the policy allows it and the risk is low.
    """
    moment = checked_now(now)
    if not lines:
        raise InvalidInput("lines", "a return needs at least one line")
    if len(lines) > 100:
        raise InvalidInput("lines", "a return has at most 100 lines")
    parsed = [_parse_line(line, index) for index, line in enumerate(lines)]
    require_unique([order_line_id for order_line_id, _ in parsed], "lines")
    note = clean_text(customer_note, "customerNote")
    preferred = None
    if preferred_resolution is not None:
        preferred = parse_enum(
            ResolutionKind,
            preferred_resolution,
            "preferredResolution",
            f"unknown resolution {preferred_resolution!r}",
        )

    async with session.begin():
        # Locking the order serializes requests for it, so two requests cannot both take the
        # last returnable unit.
        order = await load_order(session, merchant_id, order_id, for_update=True)
        if customer_id is not None and order.customer_id != customer_id:
            raise NotFound("Order", order.id, field="orderId")
        policy = await current_policy(session, merchant_id)
        if preferred is not None and preferred.value not in policy.allowed_resolutions:
            raise ResolutionNotAllowed(
                f"the policy does not offer {preferred.value}", field="preferredResolution"
            )
        returned = await returned_quantities(session, order.id)
        by_id = {line.id: line for line in order.lines}
        decisions: list[LineEligibility] = []
        for index, (order_line_id, line_request) in enumerate(parsed):
            order_line = by_id.get(order_line_id)
            if order_line is None:
                raise NotFound("OrderLine", order_line_id, field=f"lines[{index}].orderLineId")
            returnable = order_line.quantity - returned.get(order_line.id, 0)
            if line_request.quantity > returnable:
                raise QuantityExceeded(
                    f"{order_line.title}: {line_request.quantity} asked, {returnable} returnable",
                    field=f"lines[{index}].quantity",
                )
            decision = evaluate_line(
                policy, line_facts(order, order_line, returned), moment, line_request
            )
            if not decision.eligible:
                raise NotEligible(
                    f"{order_line.title} cannot be returned: {', '.join(decision.codes)}",
                    decision.codes,
                    field=f"lines[{index}]",
                )
            decisions.append(decision)

        risk = risk_score(await _customer_history(session, order, moment))
        rma = Rma(
            merchant_id=merchant_id,
            number=await unique_rma_number(session, merchant_id, number_source),
            order_id=order.id,
            customer_id=order.customer_id,
            status=RmaStatus.REQUESTED,
            currency=order.currency,
            policy_id=policy.id,
            policy_version=policy.version,
            decision={
                "policyVersion": policy.version,
                "lines": {
                    str(order_line_id): {"eligible": d.eligible, "codes": list(d.codes)}
                    for (order_line_id, _), d in zip(parsed, decisions, strict=True)
                },
                "risk": {"score": risk.score, "signals": list(risk.signals)},
            },
            preferred_resolution=preferred,
            customer_note=note,
            risk_score=risk.score,
            risk_signals=list(risk.signals),
            created_at=moment,
            updated_at=moment,
        )
        rma.lines = [
            RmaLine(
                merchant_id=merchant_id,
                rma_id=rma.id,
                order_line_id=order_line_id,
                position=position,
                quantity=line_request.quantity,
                reason=line_request.reason,
                condition=line_request.condition,
                comment=clean_text(lines[position].comment, "comment"),
                eligibility_codes=list(decision.codes),
                created_at=moment,
            )
            for position, ((order_line_id, line_request), decision) in enumerate(
                zip(parsed, decisions, strict=True)
            )
        ]
        session.add(rma)
        await record_event(
            session,
            rma,
            actor=actor,
            kind="REQUESTED",
            to_status=RmaStatus.REQUESTED,
            message=note,
            data={"policyVersion": policy.version},
            now=moment,
        )
        status, why = _decide_status(policy, decisions, risk)
        if status is not RmaStatus.REQUESTED:
            if status is RmaStatus.AUTHORIZED:
                authorize_fields(rma, policy, moment)
            await transition(session, rma, status, actor=SYSTEM_ACTOR, now=moment, message=why)
    return rma
