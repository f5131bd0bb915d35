"""What a return is worth, in integer minor units.

Rounding rule (one rule for every share): the amount for units ``j+1..j+k`` of a line of ``n``
units whose total is ``T`` is ``floor(T*(j+k)/n) - floor(T*j/n)``. Returning every unit of a line,
in one RMA or in several, therefore refunds exactly ``T``: partial returns never drift by a cent.
The line total ``T`` is the discount-aware net price (unit price times quantity minus the line's
discount) and, separately, the line's tax. Percentages (restocking fee, store-credit bonus) are
rounded down to the minor unit, so a fee never rounds against the customer. An RMA's total is the
sum of its line refunds plus its shipping refund, so the lines always add up to the total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.enums import ItemCondition, ReturnReason
from core.rules.policy import restocking_fee_applies


def unit_share(total_minor: int, units: int, already: int, taking: int) -> int:
    """The share of ``total_minor`` carried by units ``already+1..already+taking`` of ``units``."""
    if units <= 0:
        raise ValueError("a line has at least one unit")
    if already < 0 or taking < 0 or already + taking > units:
        raise ValueError("units out of range")
    return (total_minor * (already + taking)) // units - (total_minor * already) // units


def percent_of(amount_minor: int, percent: int) -> int:
    """``percent`` % of an amount, rounded down to the minor unit."""
    return (amount_minor * percent) // 100


@dataclass(frozen=True, slots=True)
class LinePricing:
    """One order line as sold, and what this return takes of it."""

    order_line_id: object
    unit_price_minor: int
    quantity_ordered: int
    discount_minor: int
    tax_minor: int
    already_refunded_quantity: int
    quantity: int
    reason: ReturnReason
    condition: ItemCondition
    # What the units already refunded came to, when known. Then this return takes the line's
    # total for all of them and this one, less that: a refund that failed and is priced again
    # after later units were refunded still adds up to the line total, never a cent over.
    already_refunded_goods_minor: int | None = None
    already_refunded_tax_minor: int | None = None


@dataclass(frozen=True, slots=True)
class LineRefund:
    order_line_id: object
    quantity: int
    goods_minor: int
    tax_minor: int
    restocking_fee_minor: int
    # Staff's change to the price (a partial refund is negative); 0 as the policy priced it.
    adjustment_minor: int = 0

    @property
    def refund_minor(self) -> int:
        return self.goods_minor + self.tax_minor - self.restocking_fee_minor + self.adjustment_minor

    @property
    def refunded_tax_minor(self) -> int:
        """The tax within the refund: all of it, unless staff refunded less than the units'
        price, then its share of what they did refund (a fee comes off the goods)."""
        price = self.goods_minor + self.tax_minor
        if self.adjustment_minor >= 0 or price == 0:
            return self.tax_minor
        return (self.tax_minor * self.refund_minor) // price


@dataclass(frozen=True, slots=True)
class RefundQuote:
    currency: str
    lines: tuple[LineRefund, ...]
    shipping_minor: int
    goodwill_minor: int = 0  # given by staff on top, tied to no line

    @property
    def restocking_fee_minor(self) -> int:
        return sum(line.restocking_fee_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return (
            sum(line.refund_minor for line in self.lines)
            + self.shipping_minor
            + self.goodwill_minor
        )


@dataclass(frozen=True, slots=True)
class QuoteAdjustments:
    """Staff's changes to a quote before any money moves."""

    waive_restocking_fee: bool = False
    shipping_minor: int | None = None  # the shipping to refund instead of the policy's share
    # Per order line: what its units are refunded, instead of the policy's price (at most
    # the units' own goods and tax).
    line_refunds: Mapping[object, int] = field(default_factory=dict)
    goodwill_minor: int = 0


def adjust_quote(quote: RefundQuote, adjustments: QuoteAdjustments) -> RefundQuote:
    """The quote as staff changed it; the policy's own figures stay visible line by line."""
    lines = []
    for line in quote.lines:
        if adjustments.waive_restocking_fee:
            line = replace(line, restocking_fee_minor=0)
        wanted = adjustments.line_refunds.get(line.order_line_id)
        if wanted is not None:
            line = replace(line, adjustment_minor=wanted - line.refund_minor)
        lines.append(line)
    return replace(
        quote,
        lines=tuple(lines),
        shipping_minor=(
            quote.shipping_minor
            if adjustments.shipping_minor is None
            else adjustments.shipping_minor
        ),
        goodwill_minor=quote.goodwill_minor + adjustments.goodwill_minor,
    )


def _next_share(total_minor: int, line: LinePricing, already_minor: int | None) -> int:
    if already_minor is None:
        return unit_share(
            total_minor, line.quantity_ordered, line.already_refunded_quantity, line.quantity
        )
    taken = unit_share(
        total_minor, line.quantity_ordered, 0, line.already_refunded_quantity + line.quantity
    )
    return max(taken - already_minor, 0)


def price_line(line: LinePricing, restocking_fee_percent: int, *, unauthorized: bool) -> LineRefund:
    """The refund for one line of a return, with its restocking fee shown separately."""
    net_total = line.unit_price_minor * line.quantity_ordered - line.discount_minor
    goods = _next_share(net_total, line, line.already_refunded_goods_minor)
    tax = _next_share(line.tax_minor, line, line.already_refunded_tax_minor)
    fee = 0
    if restocking_fee_applies(
        restocking_fee_percent, line.reason, line.condition, unauthorized=unauthorized
    ):
        fee = percent_of(goods, restocking_fee_percent)
    return LineRefund(line.order_line_id, line.quantity, goods, tax, fee)


def quote_refund(
    currency: str,
    lines: Sequence[LinePricing],
    *,
    restocking_fee_percent: int,
    unauthorized: bool,
    order_goods_minor: int,
    order_shipping_minor: int,
    shipping_already_refunded_minor: int,
    shipping_refund_reasons: Sequence[str],
) -> RefundQuote:
    """Price a whole return.

    Shipping comes back in proportion to the goods returned for a reason the policy names (by
    default the merchant's mistakes), and never more than the order's shipping not yet refunded.
    """
    priced = tuple(
        price_line(line, restocking_fee_percent, unauthorized=unauthorized) for line in lines
    )
    qualifying_goods = sum(
        refund.goods_minor
        for refund, line in zip(priced, lines, strict=True)
        if line.reason.value in shipping_refund_reasons
    )
    shipping = 0
    if qualifying_goods and order_goods_minor > 0:
        shipping = (order_shipping_minor * qualifying_goods) // order_goods_minor
        shipping = min(shipping, max(order_shipping_minor - shipping_already_refunded_minor, 0))
    return RefundQuote(currency, priced, shipping)


def store_credit_bonus(refund_total_minor: int, bonus_percent: int) -> int:
    """The extra credit a customer gets for choosing store credit over a refund."""
    return percent_of(refund_total_minor, bonus_percent)
