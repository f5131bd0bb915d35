"""Demo data: one merchant with a policy, customers, orders, and RMAs in every status.

Everything goes through the real use cases, so the demo data is exactly what the service would
have made itself.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core.database import Database
from core.entities import Merchant, Order, Rma
from core.enums import (
    ApiKeyRole,
    Disposition,
    ItemCondition,
    PaymentProviderName,
    ResolutionKind,
    ReturnReason,
    RmaStatus,
)
from core.errors import Conflict, DomainError
from core.rules.policy import MERCHANT_FAULT_REASONS
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import (
    ReceivedLine,
    UnauthorizedLine,
    receive_rma,
    receive_unauthorized,
    record_shipment,
)
from core.usecases.merchants import create_api_key, create_merchant
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.policies import PolicyChanges, update_return_policy
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import close_rma, record_resolution_outcome, resolve_rma
from core.usecases.review import (
    authorize_rma,
    cancel_rma,
    expire_authorizations,
    refuse_goods,
    reject_rma,
)

Progress = Callable[[int], None]

CATALOGUE = [
    # (sku, title, category, unit price in cents, tags)
    ("TEE-01", "Organic cotton tee", "apparel", 2500, []),
    ("JEAN-02", "Slim jeans", "apparel", 7900, []),
    ("SNK-03", "Trail sneakers", "footwear", 12900, []),
    ("HDP-04", "Wireless headphones", "electronics", 19900, []),
    ("KBD-05", "Mechanical keyboard", "electronics", 14900, []),
    ("SW-06", "Photo editor licence", "software", 8900, []),
    ("SW-07", "Antivirus, 1 year", "software", 4900, []),
    ("TB-08", "Electric toothbrush", "personal care", 6900, []),
    ("MUG-09", "Stoneware mug", "home", 1800, []),
    ("LMP-10", "Desk lamp", "home", 5900, []),
    ("SCF-11", "Clearance scarf", "apparel", 1200, ["final-sale"]),
    ("WCH-12", "Outlet watch", "accessories", 9900, ["final-sale", "outlet"]),
]
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gwen", "Hiro", "Ines", "Jon"]
LAST_NAMES = ["Meyer", "Okafor", "Santos", "Novak", "Tanaka", "Dubois", "Khan", "Larsen"]
STAFF = "staff:demo"
CUSTOMER = "customer:demo"


@dataclass(frozen=True, slots=True)
class DemoResult:
    merchant_id: uuid.UUID
    api_key: str
    orders: int
    rmas_by_status: dict[str, int]


class DatabaseNotEmpty(Conflict):
    """The demo only seeds an empty database, so that it never mixes with real data."""


async def _ensure_empty(database: Database) -> None:
    async with database.read_session() as session:
        if (await session.exec(select(sa.func.count()).select_from(Merchant))).one():
            raise DatabaseNotEmpty("the database already has merchants; demo seeds an empty one")


def _order_input(
    rng: random.Random, index: int, customer: CustomerInput, now: datetime
) -> OrderInput:
    placed = now - timedelta(days=rng.uniform(0.5, 120))
    items = rng.sample(CATALOGUE, rng.choice([1, 1, 2, 2, 3]))
    lines = []
    for position, (sku, title, category, price, tags) in enumerate(items):
        quantity = rng.choice([1, 1, 1, 2, 3])
        discount = (price * quantity // 10) if rng.random() < 0.2 else 0
        lines.append(
            OrderLineInput(
                external_id=f"{index}-{position}",
                sku=sku,
                title=title,
                category=category,
                quantity=quantity,
                unit_price_minor=price,
                discount_minor=discount,
                tax_minor=(price * quantity - discount) * 8 // 100,
                tags=tuple(tags),
            )
        )
    shipping = rng.choice([0, 0, 495, 995])
    total = sum(
        item.unit_price_minor * item.quantity - item.discount_minor + item.tax_minor
        for item in lines
    )
    delivered = placed + timedelta(days=rng.uniform(1, 6))
    return OrderInput(
        platform="storefront",
        external_id=f"demo-{index:05d}",
        order_number=f"#{1000 + index}",
        currency="USD",
        placed_at=placed,
        delivered_at=delivered if delivered < now else None,
        customer=customer,
        lines=lines,
        shipping_minor=shipping,
        payments=[
            PaymentInput(PaymentProviderName.STRIPE, f"pi_demo{index:06d}", total + shipping, "USD")
        ],
    )


# How far each demo RMA is walked through the lifecycle; the list is cycled over.
TARGETS = [
    RmaStatus.REQUESTED,
    RmaStatus.AUTHORIZED,
    RmaStatus.IN_TRANSIT,
    RmaStatus.RECEIVED,
    RmaStatus.INSPECTED,
    RmaStatus.RESOLVING,
    RmaStatus.RESOLVED,
    RmaStatus.CLOSED,
    RmaStatus.CLOSED,
    RmaStatus.CLOSED,
    RmaStatus.REJECTED,
    RmaStatus.CANCELLED,
    RmaStatus.EXPIRED,
    RmaStatus.NEEDS_REVIEW,
]
DEMO_POLICY = PolicyChanges(
    return_window_days=30,
    warranty_days=365,
    unopened_only_categories=["software", "personal care"],
    final_sale_tags=["final-sale"],
    restocking_fee_percent=10,
    store_credit_bonus_percent=10,
    allowed_resolutions=["REFUND", "STORE_CREDIT"],
    auto_authorize=False,
    authorization_valid_days=14,
    troubleshooting_required_reasons=["DEFECTIVE"],
    troubleshooting_steps=["Charge the device for two hours", "Hold the power button for 10 s"],
    special_instructions="Pack items in their original box and write the RMA number outside.",
)


class _Walker:
    """Moves demo RMAs along the lifecycle through the use cases, one transaction per step."""

    def __init__(self, database: Database, merchant_id: uuid.UUID, rng: random.Random) -> None:
        self.database = database
        self.merchant_id = merchant_id
        self.rng = rng

    async def run(self, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self.database.session() as session:
            return await step(session, self.merchant_id, *args, **kwargs)

    async def walk(self, rma: Rma, target: RmaStatus, at: datetime, now: datetime) -> None:
        """Move a requested RMA along the happy path until it reaches ``target``."""
        clock = _StepTimes(at, now)
        if target is RmaStatus.REJECTED:
            await self.run(reject_rma, rma.id, actor=STAFF, reason="Worn and washed", now=clock())
        if target in (RmaStatus.REJECTED, RmaStatus.NEEDS_REVIEW, RmaStatus.REQUESTED):
            return
        await self.run(authorize_rma, rma.id, actor=STAFF, now=clock())
        if target is RmaStatus.CANCELLED:
            await self.run(cancel_rma, rma.id, actor=CUSTOMER, reason="Keeping it", now=clock())
        if target in (RmaStatus.CANCELLED, RmaStatus.AUTHORIZED, RmaStatus.EXPIRED):
            return
        if target is not RmaStatus.RECEIVED or self.rng.random() < 0.5:
            await self.run(
                record_shipment,
                rma.id,
                carrier=self.rng.choice(["UPS", "FEDEX", "USPS", "DHL", "POSTNL"]),
                tracking_number=f"DEMO{self.rng.randrange(10**11, 10**12)}",
                actor=CUSTOMER,
                now=clock(),
            )
        if target is RmaStatus.IN_TRANSIT:
            return
        await self.run(
            receive_rma,
            rma.id,
            lines=[ReceivedLine(item.id, item.quantity) for item in rma.lines],
            actor=STAFF,
            now=clock(),
        )
        if target is not RmaStatus.RECEIVED:
            await self.settle(rma, target, clock)

    async def settle(self, rma: Rma, target: RmaStatus, clock: _StepTimes) -> None:
        """Inspect a received RMA and take it as far as ``target`` on the money side."""
        dispositions = [
            Disposition.RESTOCK,
            Disposition.RESTOCK,
            Disposition.REFURBISH,
            Disposition.SCRAP,
            Disposition.RETURN_TO_VENDOR,
        ]
        await self.run(
            inspect_rma,
            rma.id,
            lines=[
                InspectedLine(
                    item.id,
                    item.condition,
                    self.rng.choice(dispositions),
                    # The demo's inspector finds every merchant-fault claim genuine.
                    reason_confirmed=True if item.reason in MERCHANT_FAULT_REASONS else None,
                )
                for item in rma.lines
            ],
            actor=STAFF,
            now=clock(),
        )
        if target is RmaStatus.INSPECTED:
            return
        kind = rma.preferred_resolution or ResolutionKind.REFUND
        chosen = await self.run(resolve_rma, rma.id, kind=kind, actor=STAFF, now=clock())
        if target is RmaStatus.RESOLVING:
            return
        await self.run(
            record_resolution_outcome,
            chosen.resolution.id,
            succeeded=True,
            actor="system",
            provider_reference=f"re_demo{self.rng.randrange(10**10)}",
            now=clock(),
        )
        if target is RmaStatus.CLOSED:
            await self.run(close_rma, rma.id, actor=STAFF, now=clock())


class _StepTimes:
    """Hands out the times of successive steps: a day or two apart, never in the future."""

    def __init__(self, start: datetime, now: datetime) -> None:
        self.current = start
        self.now = now

    def __call__(self) -> datetime:
        self.current = min(self.current + timedelta(hours=20), self.now)
        return self.current


def _request_time(
    target: RmaStatus, order: Order, now: datetime, rng: random.Random
) -> datetime | None:
    """When the demo customer asks, so that the policy's clock gives the wanted status."""
    start = order.delivered_at or order.placed_at
    if target is RmaStatus.NEEDS_REVIEW:
        # A defect reported after the window: a warranty claim, which staff must review.
        return now - timedelta(hours=6) if start < now - timedelta(days=35) else None
    if target is RmaStatus.EXPIRED:
        moment = start + timedelta(days=rng.uniform(1, 10))
        return moment if moment < now - timedelta(days=30) else None
    if target in (RmaStatus.AUTHORIZED, RmaStatus.REQUESTED, RmaStatus.IN_TRANSIT):
        moment = now - timedelta(days=rng.uniform(0.2, 4))
        return moment if start < moment < start + timedelta(days=28) else None
    moment = start + timedelta(days=rng.uniform(1, 20))
    return moment if moment < now - timedelta(days=8) else None


async def seed_demo(
    database: Database,
    *,
    customers: int = 200,
    orders: int = 1000,
    rmas: int = 140,
    seed: int = 7,
    progress: Progress | None = None,
    now: datetime,
) -> DemoResult:
    """Fill an empty database with a demo merchant and print-ready data; returns its API key.

    Every date is relative to ``now``, so the demo shows the same situations on any day.
    """
    await _ensure_empty(database)
    advance = progress or (lambda _steps: None)
    moment = now
    rng = random.Random(seed)

    async with database.session() as session:
        merchant = await create_merchant(session, name="Northwind Outfitters", now=moment)
    async with database.session() as session:
        await update_return_policy(session, merchant.id, DEMO_POLICY, now=moment)
    async with database.session() as session:
        issued = await create_api_key(
            session, merchant_id=merchant.id, role=ApiKeyRole.ADMIN, label="demo", now=moment
        )

    people = [
        CustomerInput(
            email=f"{first.lower()}.{last.lower()}{index}@example.com",
            name=f"{first} {last}",
            external_id=f"cus-{index}",
        )
        for index, (first, last) in enumerate(
            (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)) for _ in range(customers)
        )
    ]
    stored: list[Order] = []
    for index in range(orders):
        async with database.session() as session:
            stored.append(
                await upsert_order(
                    session,
                    merchant.id,
                    _order_input(rng, index, rng.choice(people), moment),
                    now=moment,
                )
            )
        advance(1)

    walker = _Walker(database, merchant.id, rng)
    for index in range(rmas):
        target = TARGETS[index % len(TARGETS)]
        await _one_rma(walker, stored, target, moment, rng)
        advance(1)
    await _unauthorized_returns(walker, stored, moment, rng)
    await _returns_in_two_parcels(walker, stored, moment, rng)
    async with database.session() as session:
        await expire_authorizations(session, now=moment)

    async with database.read_session() as session:
        counts = (
            await session.exec(
                select(Rma.status, sa.func.count())
                .where(Rma.merchant_id == merchant.id)
                .group_by(Rma.status)
            )
        ).all()
    return DemoResult(
        merchant_id=merchant.id,
        api_key=issued.plaintext,
        orders=len(stored),
        rmas_by_status={str(status): int(count) for status, count in counts},
    )


async def _one_rma(
    walker: _Walker, orders: list[Order], target: RmaStatus, now: datetime, rng: random.Random
) -> None:
    """Request a return on some order that fits the target, then walk it there."""
    for _attempt in range(200):
        order = rng.choice(orders)
        at = _request_time(target, order, now, rng)
        if at is None:
            continue
        line = rng.choice(order.lines)
        defect = target is RmaStatus.NEEDS_REVIEW or rng.random() < 0.15
        reason = (
            ReturnReason.DEFECTIVE
            if defect
            else rng.choice(
                [
                    ReturnReason.SIZE_TOO_SMALL,
                    ReturnReason.SIZE_TOO_LARGE,
                    ReturnReason.COLOR,
                    ReturnReason.STYLE,
                    ReturnReason.UNWANTED,
                    ReturnReason.NOT_AS_DESCRIBED,
                ]
            )
        )
        condition = ItemCondition.OPENED if rng.random() < 0.3 else ItemCondition.UNOPENED
        try:
            rma = await walker.run(
                request_rma,
                order_id=order.id,
                actor=CUSTOMER,
                now=at,
                lines=[
                    ReturnLineInput(
                        line.id,
                        rng.randint(1, line.quantity),
                        reason,
                        condition,
                        troubleshooting_completed=True,
                    )
                ],
                preferred_resolution=rng.choice(["REFUND", "REFUND", "STORE_CREDIT"]),
            )
        except DomainError:
            continue  # not returnable under the policy (final sale, opened software, ...)
        await walker.walk(rma, target, at, now)
        return


async def _returns_in_two_parcels(
    walker: _Walker, orders: list[Order], now: datetime, rng: random.Random
) -> None:
    """Two returns of two units sent in two parcels: the first parcel refunded on its own,
    the second one just arrived for one, still on its way for the other."""
    made = 0
    for order in rng.sample(orders, 80):
        line = next((line for line in order.lines if line.quantity >= 2), None)
        # Recent, so that the second parcel is still expected when the demo is served.
        at = now - timedelta(days=3)
        start = order.delivered_at or order.placed_at
        if line is None or not start < at < start + timedelta(days=25):
            continue
        try:
            rma = await walker.run(
                request_rma,
                order_id=order.id,
                actor=CUSTOMER,
                now=at,
                lines=[ReturnLineInput(line.id, 2, ReturnReason.SIZE_TOO_LARGE, "UNOPENED")],
                preferred_resolution="REFUND",
            )
        except DomainError:
            continue
        clock = _StepTimes(at, now)
        await walker.run(authorize_rma, rma.id, actor=STAFF, now=clock())
        first = ReceivedLine(rma.lines[0].id, 1)
        await walker.run(receive_rma, rma.id, lines=[first], actor=STAFF, now=clock())
        await walker.settle(rma, RmaStatus.RESOLVED, clock)
        if made == 0:
            await walker.run(receive_rma, rma.id, lines=[first], actor=STAFF, now=clock())
        made += 1
        if made == 2:
            return


async def _unauthorized_returns(
    walker: _Walker, orders: list[Order], now: datetime, rng: random.Random
) -> None:
    """A few parcels that arrived with no RMA: recorded at RECEIVED, some settled."""
    made = 0
    for order in rng.sample(orders, 40):
        if made == 6:
            return
        line = order.lines[0]
        try:
            rma = await walker.run(
                receive_unauthorized,
                order_id=order.id,
                actor=STAFF,
                now=now - timedelta(days=3),
                lines=[UnauthorizedLine(line.id, 1, ItemCondition.OPENED, ReturnReason.UNWANTED)],
            )
        except DomainError:
            continue
        made += 1
        accepted = all(line["eligible"] for line in rma.decision.get("lines", {}).values())
        if not accepted:
            # Past the window: the policy refuses them, and they go back to the customer.
            await walker.run(
                refuse_goods,
                rma.id,
                reason="arrived after the return window",
                outcome="SEND_BACK",
                carrier="UPS",
                tracking_number="1Z999AA10123456784",
                actor=STAFF,
                now=now - timedelta(days=2),
            )
        elif made % 2 == 0:
            await walker.settle(rma, RmaStatus.CLOSED, _StepTimes(now - timedelta(days=3), now))
