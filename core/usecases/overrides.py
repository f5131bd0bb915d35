"""Staff adjusting a resolution's price before money moves: waive the restocking fee, refund
the shipping, refund part of a line, give a goodwill amount; always with a reason.

An AGENT may raise the price by up to the policy's ``agent_override_limit_minor``; beyond it,
an ADMIN decides. Lowering it needs no one. Whatever the change, the order's refunds never add
up to more than was captured (checked under the order's lock by the caller).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import Merchant, Order, Rma
from core.errors import InvalidInput, NotFound, OverrideNeedsAdmin
from core.money import MAX_MINOR
from core.rules.pricing import QuoteAdjustments, RefundQuote, adjust_quote, store_credit_bonus
from core.usecases.inputs import as_uuid, clean_text, require_unique
from core.usecases.owned_rows import current_policy
from core.usecases.priced import shipping_refunded_minor


@dataclass(frozen=True, slots=True)
class LineRefundOverride:
    rma_line_id: uuid.UUID | str
    refund_minor: int  # what the line's units in this parcel are refunded


@dataclass(frozen=True, slots=True)
class Adjustments:
    reason: str
    waive_restocking_fee: bool = False
    refund_shipping: bool = False  # all the order's shipping not refunded yet
    goodwill_minor: int = 0
    lines: Sequence[LineRefundOverride] = ()


@dataclass(frozen=True, slots=True)
class CheckedAdjustments:
    reason: str
    waive_restocking_fee: bool
    refund_shipping: bool
    goodwill_minor: int
    lines: dict[uuid.UUID, int]  # RMA line -> refund


def _amount(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise InvalidInput(field, f"{field} must be whole minor units from 0 to {MAX_MINOR}")
    return value


def check_adjustments(adjustments: Adjustments) -> CheckedAdjustments:
    """The adjustments with every value checked, before any transaction."""
    reason = clean_text(adjustments.reason, "adjustments.reason")
    if not reason:
        raise InvalidInput("adjustments.reason", "say why the price is changed")
    ids = [
        as_uuid(line.rma_line_id, f"adjustments.lines[{index}].rmaLineId")
        for index, line in enumerate(adjustments.lines)
    ]
    require_unique(ids, "adjustments.lines")
    return CheckedAdjustments(
        reason=reason,
        waive_restocking_fee=bool(adjustments.waive_restocking_fee),
        refund_shipping=bool(adjustments.refund_shipping),
        goodwill_minor=_amount(adjustments.goodwill_minor, "adjustments.goodwillMinor"),
        lines={
            line_id: _amount(line.refund_minor, f"adjustments.lines[{index}].refundMinor")
            for index, (line_id, line) in enumerate(zip(ids, adjustments.lines, strict=True))
        },
    )


async def adjusted_quote(
    session: AsyncSession,
    rma: Rma,
    order: Order,
    quote: RefundQuote,
    adjustments: CheckedAdjustments,
    *,
    bonus_percent: int,
    beyond_agent_limit: bool,
    actor: str,
) -> tuple[RefundQuote, dict[str, Any]]:
    """Within the caller's transaction: the quote as staff changed it, and the record of the
    change kept with the resolution. ``bonus_percent``: the store-credit bonus the
    resolution earns, which grows with the price."""
    order_lines = {line.id: line.order_line_id for line in rma.lines}
    priced = {line.order_line_id: line for line in quote.lines}
    refunds: dict[object, int] = {}
    for index, (rma_line_id, amount) in enumerate(adjustments.lines.items()):
        line = priced.get(order_lines.get(rma_line_id))
        if line is None:
            raise NotFound(
                "RmaLine in this parcel", rma_line_id, field=f"adjustments.lines[{index}].rmaLineId"
            )
        if amount > line.goods_minor + line.tax_minor:
            raise InvalidInput(
                f"adjustments.lines[{index}].refundMinor",
                f"at most {line.goods_minor + line.tax_minor}, what these units cost",
            )
        refunds[line.order_line_id] = amount
    shipping = None
    if adjustments.refund_shipping:
        shipping = max(order.shipping_minor - await shipping_refunded_minor(session, order.id), 0)
    changed = adjust_quote(
        quote,
        QuoteAdjustments(
            waive_restocking_fee=adjustments.waive_restocking_fee,
            shipping_minor=shipping,
            line_refunds=refunds,
            goodwill_minor=adjustments.goodwill_minor,
        ),
    )
    if changed.total_minor == 0:
        raise InvalidInput(
            "adjustments", "nothing would be paid back: refuse the goods instead, or keep some"
        )
    raised = (
        changed.total_minor
        + store_credit_bonus(changed.total_minor, bonus_percent)
        - quote.total_minor
        - store_credit_bonus(quote.total_minor, bonus_percent)
    )
    if raised > 0 and not beyond_agent_limit:
        # The merchant's current limit, in its own currency: an order in another currency
        # has none an AGENT may use.
        policy = await current_policy(session, rma.merchant_id)
        merchant = await session.get(Merchant, rma.merchant_id)
        same_currency = merchant is not None and merchant.default_currency == order.currency
        limit = policy.agent_override_limit_minor if same_currency else 0
        if raised > limit:
            raise OverrideNeedsAdmin(
                f"{raised} {order.currency} above the policy's price is more than the "
                f"{limit} an AGENT may give: an ADMIN decides",
                field="adjustments",
            )
    record = {
        "reason": adjustments.reason,
        "by": actor,
        "quotedMinor": quote.total_minor,
        "adjustedMinor": changed.total_minor,
        "waivedFeeMinor": quote.restocking_fee_minor - changed.restocking_fee_minor,
        "shippingMinor": changed.shipping_minor,
        "goodwillMinor": changed.goodwill_minor,
        "lines": {str(line_id): amount for line_id, amount in adjustments.lines.items()},
    }
    return changed, record
