"""The RMA and everything a frontend draws on its page."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from core import entities
from core.errors import NotFound
from graphql_api.context import Info
from graphql_api.ids import to_global_id
from graphql_api.permissions import StaffRead
from graphql_api.selection import now_or_later
from graphql_api.types.commerce import Customer, Order, OrderLine
from graphql_api.types.common import (
    Carrier,
    Disposition,
    ItemCondition,
    Money,
    Node,
    PageInfo,
    PaymentProvider,
    ReceiptStatus,
    ResolutionKind,
    ResolutionStatus,
    ReturnReason,
    RmaStatus,
    money,
)
from graphql_api.types.customer_text import (
    STAFF_ONLY_EVENTS,
    customer_event_message,
    customer_failure_reason,
)
from graphql_api.types.exchanges import Exchange


@strawberry.type
class Shipment:
    carrier: Carrier
    tracking_number: str
    tracking_url: str | None
    created_at: datetime


@strawberry.type(description="What the warehouse found for one line in one parcel.")
class Inspection:
    quantity: int = strawberry.field(description="The units of the line this parcel held.")
    receipt_id: strawberry.ID = strawberry.field(description="The parcel (RmaReceipt) inspected.")
    condition: ItemCondition
    disposition: Disposition
    note: str
    inspected_at: datetime
    reason_confirmed: bool | None = strawberry.field(
        description="The verdict on the stated reason: confirmed, overturned, or not judged."
    )


@strawberry.type(description="How the RMA is settled, and where the money stands.")
class Resolution(Node):
    kind: ResolutionKind
    provider: PaymentProvider
    status: ResolutionStatus
    amount: Money = strawberry.field(
        description="What the customer gets through this resolution (this part, for a refund "
        "split over several payments), bonus included."
    )
    total: Money = strawberry.field(
        description="What the customer gets back in all, every part of a split refund "
        "together (on part 0; a further part's own amount)."
    )
    restocking_fee: Money
    shipping: Money = strawberry.field(description="Shipping refunded within the amount.")
    bonus: Money = strawberry.field(description="Store-credit bonus within the amount.")
    goodwill: Money = strawberry.field(description="Given by staff on top, within the amount.")
    policy_price: Money = strawberry.field(
        description="What the policy priced before staff changed it (the amount when they "
        "did not; bonus excluded)."
    )
    override_reason: str | None = strawberry.field(
        description="Why staff changed the price (staff only; null when they did not)."
    )
    provider_reference: str | None = strawberry.field(
        description="The provider's id of the refund or credit (staff only; null for customers)."
    )
    failure_reason: str | None = strawberry.field(
        description="Why it did not go through: the provider's words for staff, a stable "
        "sentence for customers."
    )
    receipt_id: strawberry.ID = strawberry.field(description="The parcel (RmaReceipt) it settles.")
    decision: ResolutionKind = strawberry.field(
        description="What staff chose for the parcel. A part may go back another way: the "
        "share of a refund paid with store credit spent here comes back as store credit."
    )
    part: int = strawberry.field(
        description="0 for the resolution itself. A refund split over several payments has "
        "further parts (1, 2, ...), each refunding one payment (or a platform's payments) "
        "exactly once; part 0 carries the fees, shipping and adjustments, `amount` is each "
        "part's own."
    )
    part_of: strawberry.ID | None = strawberry.field(
        description="The resolution (part 0) this is a further part of; null for part 0."
    )
    payment_reference: str | None = strawberry.field(
        description="The payment this part goes back to (staff only; null for customers)."
    )
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: entities.Resolution, *, for_customer: bool = False) -> Resolution:
        """The resolution as staff see it, or as its customer does: a stable, friendly reason
        instead of the provider's text, and no provider reference."""
        currency = row.currency
        return cls(
            id=strawberry.ID(to_global_id("Resolution", row.id)),
            kind=row.kind,
            provider=row.provider,
            status=row.status,
            amount=money(row.amount_minor, currency),
            total=money(
                row.amount_minor
                if row.part
                else int(row.breakdown.get("totalMinor", row.amount_minor - row.bonus_minor))
                + row.bonus_minor,
                currency,
            ),
            restocking_fee=money(row.restocking_fee_minor, currency),
            shipping=money(row.shipping_minor, currency),
            bonus=money(row.bonus_minor, currency),
            goodwill=money(int(row.breakdown.get("goodwillMinor", 0)), currency),
            policy_price=money(
                int(override["quotedMinor"])
                if (override := row.breakdown.get("override"))
                else int(row.breakdown.get("totalMinor", row.amount_minor - row.bonus_minor)),
                currency,
            ),
            override_reason=None
            if for_customer or not override
            else str(override.get("reason", "")),
            provider_reference=None if for_customer else row.provider_reference,
            failure_reason=customer_failure_reason(row) if for_customer else row.failure_reason,
            receipt_id=strawberry.ID(to_global_id("RmaReceipt", row.receipt_id)),
            decision=ResolutionKind(row.breakdown.get("kind", row.kind.value)),
            part=row.part,
            part_of=strawberry.ID(to_global_id("Resolution", row.group_id))
            if row.part and row.group_id
            else None,
            payment_reference=None if for_customer else row.payment_reference,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="One entry of the RMA's timeline.")
class RmaEvent:
    sequence: int
    kind: str
    actor: str
    from_status: RmaStatus | None
    to_status: RmaStatus | None
    message: str
    data: JSON
    created_at: datetime


@strawberry.type
class RmaLine:
    row: strawberry.Private[entities.RmaLine]
    id: strawberry.ID
    quantity: int
    received_quantity: int
    reason: ReturnReason
    condition: ItemCondition = strawberry.field(description="As the customer described it.")
    comment: str
    eligibility_codes: list[str]

    @classmethod
    def from_row(cls, row: entities.RmaLine) -> RmaLine:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("RmaLine", row.id)),
            quantity=row.quantity,
            received_quantity=row.received_quantity,
            reason=row.reason,
            condition=row.condition,
            comment=row.comment,
            eligibility_codes=list(row.eligibility_codes),
        )

    @strawberry.field
    async def order_line(self, info: Info) -> OrderLine | None:
        rma = await info.context.loaders.rma.load(self.row.rma_id)
        if rma is None:
            return None
        lines = await info.context.loaders.order_lines.load(rma.order_id)
        for line in lines:
            if line.id == self.row.order_line_id:
                return OrderLine.from_row(line, rma.currency)
        return None

    @strawberry.field(description="The latest inspection of this line's units.")
    async def inspection(self, info: Info) -> Inspection | None:
        found = await self.inspections(info)
        return found[-1] if found else None

    @strawberry.field(description="One inspection per parcel that held units of this line.")
    async def inspections(self, info: Info) -> list[Inspection]:
        return [
            Inspection(
                quantity=found.quantity,
                receipt_id=strawberry.ID(to_global_id("RmaReceipt", found.receipt_id)),
                condition=found.condition,
                disposition=found.disposition,
                note=found.note,
                inspected_at=found.created_at,
                reason_confirmed=found.reason_confirmed,
            )
            for found in await info.context.loaders.inspections.load(self.row.rma_id)
            if found.rma_line_id == self.row.id
        ]


@strawberry.type(description="Units of one RMA line in a parcel.")
class RmaReceiptLine:
    rma_line_id: strawberry.ID
    quantity: int


@strawberry.type(
    description="Goods that arrived together (one parcel, or several before an inspection): "
    "inspected together and resolved on their own, so a return may come back in several."
)
class RmaReceipt:
    row: strawberry.Private[entities.Receipt]
    id: strawberry.ID
    sequence: int = strawberry.field(description="1 for the first parcel, 2 for the next...")
    status: ReceiptStatus
    received_at: datetime
    inspected_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def from_row(cls, row: entities.Receipt) -> RmaReceipt:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("RmaReceipt", row.id)),
            sequence=row.sequence,
            status=row.status,
            received_at=row.received_at,
            inspected_at=row.inspected_at,
            resolved_at=row.resolved_at,
        )

    @strawberry.field
    async def lines(self, info: Info) -> list[RmaReceiptLine]:
        return [
            RmaReceiptLine(
                rma_line_id=strawberry.ID(to_global_id("RmaLine", line.rma_line_id)),
                quantity=line.quantity,
            )
            for line in await info.context.loaders.receipt_lines.load(self.row.id)
        ]

    @strawberry.field(description="The resolution settling this parcel (the latest tried).")
    async def resolution(self, info: Info) -> Resolution | None:
        rows = [
            row
            for row in await info.context.loaders.resolutions.load(self.row.rma_id)
            if row.receipt_id == self.row.id
        ]
        customer = info.context.customer_id is not None
        decisions = [row for row in rows if not row.part]
        return Resolution.from_row(decisions[-1], for_customer=customer) if decisions else None


@strawberry.type(description="What the return policy decided when the RMA was requested.")
class PolicyDecision:
    policy_version: int | None
    lines: JSON = strawberry.field(description="Per order line id: eligible and codes.")


@strawberry.type
class Rma(Node):
    row: strawberry.Private[entities.Rma]
    number: str = strawberry.field(description="Human-friendly and unguessable: RMA-7K3F-9Q2D.")
    status: RmaStatus
    currency: str
    unauthorized: bool = strawberry.field(description="Goods arrived with no authorization.")
    preferred_resolution: ResolutionKind | None
    customer_note: str
    created_at: datetime
    updated_at: datetime | None
    authorized_at: datetime | None
    authorization_expires_at: datetime | None
    received_at: datetime | None
    inspected_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rest_expires_at: datetime | None = strawberry.field(
        description="Units not received yet are expected until then (null when none are)."
    )

    @classmethod
    def from_row(cls, row: entities.Rma) -> Rma:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Rma", row.id)),
            number=row.number,
            status=row.status,
            currency=row.currency,
            unauthorized=row.unauthorized,
            preferred_resolution=row.preferred_resolution,
            customer_note=row.customer_note,
            created_at=row.created_at,
            updated_at=row.updated_at,
            authorized_at=row.authorized_at,
            authorization_expires_at=row.authorization_expires_at,
            received_at=row.received_at,
            inspected_at=row.inspected_at,
            resolved_at=row.resolved_at,
            closed_at=row.closed_at,
            rest_expires_at=None if row.rest_ended_at else row.rest_expires_at,
        )

    @strawberry.field
    def decision(self) -> PolicyDecision:
        return PolicyDecision(
            policy_version=self.row.policy_version, lines=self.row.decision.get("lines", {})
        )

    @strawberry.field(permission_classes=[StaffRead], description="0 (no concern) to 100.")
    def risk_score(self) -> int:
        return self.row.risk_score

    @strawberry.field(permission_classes=[StaffRead])
    def risk_signals(self) -> list[str]:
        return list(self.row.risk_signals)

    # The next three answer at once when the page loaded their rows already (see selection.py).
    @strawberry.field
    def lines(self, info: Info) -> list[RmaLine]:
        return now_or_later(info.context.loaders.rma_lines, self.row.id, _rma_lines)  # type: ignore[no-any-return]

    @strawberry.field(
        description="The order returned against. Null for a customer once the order belongs to "
        "someone else (a storefront corrected its e-mail): they see only their own orders."
    )
    def order(self, info: Info) -> Order | None:
        return now_or_later(info.context.loaders.order, self.row.order_id, _order)  # type: ignore[no-any-return]

    @strawberry.field
    def customer(self, info: Info) -> Customer:
        return now_or_later(  # type: ignore[no-any-return]
            info.context.loaders.customer, self.row.customer_id, self._customer
        )

    def _customer(self, row: entities.Customer | None) -> Customer:
        if row is None:  # the loaders show a customer only their own RMAs, so never here
            raise NotFound("Customer", self.row.customer_id)
        return Customer.from_row(row)

    @strawberry.field
    async def shipments(self, info: Info) -> list[Shipment]:
        return [
            Shipment(
                carrier=row.carrier,
                tracking_number=row.tracking_number,
                tracking_url=row.tracking_url,
                created_at=row.created_at,
            )
            for row in await info.context.loaders.shipments.load(self.row.id)
        ]

    @strawberry.field(
        description="Replacements given in exchange, oldest first, until fulfilled or cancelled "
        "and after."
    )
    async def exchanges(self, info: Info) -> list[Exchange]:
        customer = info.context.customer_id is not None
        return [
            Exchange.from_row(row, for_customer=customer)
            for row in await info.context.loaders.exchanges.load(self.row.id)
        ]

    @strawberry.field(description="The parcels received so far, first one first.")
    async def receipts(self, info: Info) -> list[RmaReceipt]:
        return [
            RmaReceipt.from_row(row)
            for row in await info.context.loaders.receipts.load(self.row.id)
        ]

    @strawberry.field(
        description="Units asked for that have not arrived and are still expected (0 once all "
        "came, or the rest was cancelled or expired)."
    )
    def units_expected(self, info: Info) -> int:
        if self.row.rest_ended_at is not None:
            return 0
        return now_or_later(info.context.loaders.rma_lines, self.row.id, _units_expected)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Every resolution tried, oldest first, with the parts of split refunds."
    )
    async def resolutions(self, info: Info) -> list[Resolution]:
        rows = await info.context.loaders.resolutions.load(self.row.id)
        customer = info.context.customer_id is not None
        return [Resolution.from_row(row, for_customer=customer) for row in rows]

    @strawberry.field(
        description="The latest resolution, if any (part 0 of a refund split over payments)."
    )
    async def resolution(self, info: Info) -> Resolution | None:
        rows = await info.context.loaders.resolutions.load(self.row.id)
        customer = info.context.customer_id is not None
        decisions = [row for row in rows if not row.part]
        return Resolution.from_row(decisions[-1], for_customer=customer) if decisions else None

    @strawberry.field(
        description="The timeline, in order. Customers see who acted by role only, and no data."
    )
    async def events(self, info: Info) -> list[RmaEvent]:
        customer = info.context.customer_id is not None
        return [
            RmaEvent(
                sequence=row.sequence,
                kind=row.kind,
                actor=row.actor.partition(":")[0] if customer else row.actor,
                from_status=row.from_status,
                to_status=row.to_status,
                message=customer_event_message(row) if customer else row.message,
                data=JSON({} if customer else row.data),
                created_at=row.created_at,
            )
            for row in await info.context.loaders.rma_events.load(self.row.id)
            if not (customer and row.kind in STAFF_ONLY_EVENTS)
        ]

    @strawberry.field(description="From the policy version that decided this RMA.")
    async def special_instructions(self, info: Info) -> str:
        if self.row.policy_id is None:
            return ""
        policy = await info.context.loaders.policy.load(self.row.policy_id)
        return policy.special_instructions if policy else ""


def _rma_lines(rows: list[entities.RmaLine]) -> list[RmaLine]:
    return [RmaLine.from_row(row) for row in rows]


def _order(row: entities.Order | None) -> Order | None:
    return None if row is None else Order.from_row(row)


def _units_expected(lines: list[entities.RmaLine]) -> int:
    return sum(line.quantity - line.received_quantity for line in lines)


@strawberry.type
class RmaEdge:
    cursor: str
    node: Rma


@strawberry.type
class RmaConnection:
    edges: list[RmaEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Rma]:
        return [edge.node for edge in self.edges]
