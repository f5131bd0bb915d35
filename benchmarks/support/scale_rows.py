"""The rows of a database full of returns: customers, their orders and lines, and one RMA with its
lines per order, drawn from a seeded random generator so that a seed and a "now" always give the
same rows.

Pure generation, no database: ``seeder`` writes these rows. Every row is a tuple in the column
order of ``COLUMNS[table]``; values are what the app itself would hold (UUIDs, timezone-aware
UTC datetimes, enum values as strings, JSON columns as Python lists and dicts).

The RMAs spread over the ``SPAN`` before "now" and each one went as far along its life as its
age allows: an RMA asked for an hour ago is still REQUESTED, one from last year is CLOSED (or
was rejected, cancelled or expired on the way). What is left out: receipts, inspections,
resolutions, timeline events and payments; the list pages and the analytics read the rows here.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.enums import ItemCondition, Platform, ResolutionKind, ReturnReason, RmaStatus
from core.rules.numbers import RANDOM_BITS, rma_number_from_bits

SPAN = timedelta(days=730)
# The default policy's (``ReturnPolicy.authorization_valid_days``).
AUTHORIZATION_VALID = timedelta(days=14)
CURRENCY = "USD"
EMAIL_DOMAIN = "example.com"

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("id", "merchant_id", "created_at", "email", "name"),
    "order": (
        "id",
        "merchant_id",
        "created_at",
        "customer_id",
        "platform",
        "external_id",
        "order_number",
        "currency",
        "placed_at",
        "delivered_at",
        "shipping_minor",
        "refunded_elsewhere_minor",
        "updated_at",
    ),
    "order_line": (
        "id",
        "merchant_id",
        "created_at",
        "order_id",
        "external_id",
        "position",
        "sku",
        "title",
        "quantity",
        "unit_price_minor",
        "discount_minor",
        "tax_minor",
        "category",
        "tags",
    ),
    "rma": (
        "id",
        "merchant_id",
        "created_at",
        "number",
        "order_id",
        "customer_id",
        "status",
        "currency",
        "policy_id",
        "policy_version",
        "decision",
        "unauthorized",
        "preferred_resolution",
        "customer_note",
        "risk_score",
        "risk_signals",
        "authorized_at",
        "authorization_expires_at",
        "received_at",
        "inspected_at",
        "resolved_at",
        "closed_at",
        "rest_ended_at",
        "updated_at",
    ),
    "rma_line": (
        "id",
        "merchant_id",
        "created_at",
        "rma_id",
        "order_line_id",
        "position",
        "quantity",
        "reason",
        "condition",
        "comment",
        "eligibility_codes",
        "received_quantity",
    ),
}
# Parents first: the foreign keys of each table point to tables before it.
TABLES = ("customer", "order", "order_line", "rma", "rma_line")

CATALOGUE = [
    # (sku, title, category, unit price in cents)
    ("TEE-01", "Organic cotton tee", "apparel", 2500),
    ("JEAN-02", "Slim jeans", "apparel", 7900),
    ("SNK-03", "Trail sneakers", "footwear", 12900),
    ("HDP-04", "Wireless headphones", "electronics", 19900),
    ("KBD-05", "Mechanical keyboard", "electronics", 14900),
    ("TB-08", "Electric toothbrush", "personal care", 6900),
    ("MUG-09", "Stoneware mug", "home", 1800),
    ("LMP-10", "Desk lamp", "home", 5900),
    ("SCF-11", "Wool scarf", "apparel", 3200),
    ("WCH-12", "Field watch", "accessories", 9900),
]
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gwen", "Hiro", "Ines", "Jon"]
LAST_NAMES = ["Meyer", "Okafor", "Santos", "Novak", "Tanaka", "Dubois", "Khan", "Larsen"]


def weighted(choices: list[Any], weights: list[int]) -> tuple[Any, ...]:
    """Each choice repeated by its weight: a uniform pick from it is a weighted pick, and much
    cheaper than ``random.choices`` a million times."""
    return tuple(
        choice for choice, weight in zip(choices, weights, strict=True) for _ in range(weight)
    )


REASONS = weighted([reason.value for reason in ReturnReason], [6, 8, 6, 14, 14, 10, 20, 5, 3])
CONDITIONS = weighted([condition.value for condition in ItemCondition], [50, 30, 15, 5])
RESOLUTIONS = weighted([None, *(kind.value for kind in ResolutionKind)], [20, 50, 20, 10])
# How an RMA's life ends early, drawn once per RMA: the rest go all the way to CLOSED.
OUTCOMES = weighted(["full", "rejected", "cancelled", "expired"], [86, 5, 5, 4])
# The default policy's ``auto_authorize_max_risk``: riskier requests wait for staff.
REVIEWED_ABOVE_RISK = 50


def customer_email(index: int) -> str:
    """The e-mail of customer ``index`` (0-based): lower-case, as the service stores them."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{first}.{last}.{index}@{EMAIL_DOMAIN}".lower()


def default_customers(rmas: int) -> int:
    """About five RMAs per customer, at least one customer."""
    return max(1, rmas // 5)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to generate: ``rmas`` RMAs (one order each) for ``customers`` customers of one
    merchant, ending at ``now``, drawn from ``seed``."""

    merchant_id: uuid.UUID
    policy_id: uuid.UUID | None
    rmas: int
    customers: int
    seed: int
    now: datetime
    batch_rmas: int = 10_000


@dataclass(slots=True)
class Batch:
    """Rows of each table, parents first; ``rmas`` is how many RMAs the batch holds."""

    rows: dict[str, list[tuple[object, ...]]] = field(
        default_factory=lambda: {table: [] for table in TABLES}
    )
    rmas: int = 0


class RowSource:
    """Draws the rows of a ``Plan``; the same plan gives the same rows.

    Each batch of RMAs has a generator of its own, seeded from the plan's seed and the batch's
    place, so batches can be drawn in any order, in several processes, with the same result.
    RMA numbers come from a permutation of the RMA's index: unique without keeping a set of
    those drawn, and as random-looking as the service's own.
    """

    def __init__(self, plan: Plan, customer_ids: list[uuid.UUID] | None = None) -> None:
        self.plan = plan
        self.rng = random.Random(f"{plan.seed}:customers")
        self.customer_ids: list[uuid.UUID] = customer_ids or []
        self.number_key = random.Random(f"{plan.seed}:numbers").getrandbits(RANDOM_BITS)

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    @property
    def batch_count(self) -> int:
        """Batches of RMAs (after the customers')."""
        return -(-self.plan.rmas // self.plan.batch_rmas)

    def batches(self) -> Iterator[Batch]:
        """The customers first (a batch of their own), then ``batch_rmas`` RMAs per batch."""
        yield self.customers()
        for number in range(self.batch_count):
            yield self.rma_batch(number)

    def customers(self) -> Batch:
        """The customers' batch; the RMA batches need it drawn first (or its ids given)."""
        batch = Batch()
        plan = self.plan
        self.customer_ids = []
        for index in range(plan.customers):
            customer_id = self.new_id()
            self.customer_ids.append(customer_id)
            name = customer_email(index).split("@")[0].rsplit(".", 1)[0].replace(".", " ").title()
            created = plan.now - SPAN - timedelta(days=30 + self.rng.random() * 365)
            batch.rows["customer"].append(
                (customer_id, plan.merchant_id, created, customer_email(index), name)
            )
        return batch

    def rma_batch(self, number: int) -> Batch:
        """Batch ``number`` (0-based) of RMAs, with their orders and lines."""
        plan = self.plan
        self.rng = random.Random(f"{plan.seed}:batch:{number}")
        first = number * plan.batch_rmas
        count = min(plan.batch_rmas, plan.rmas - first)
        batch = Batch(rmas=count)
        for index in range(first, first + count):
            self.add_rma(batch, index)
        return batch

    def rma_number(self, index: int) -> str:
        """RMA ``index``'s number, in the service's format: a bijection of the index (odd
        multipliers and xor-shifts are invertible modulo 2**35), so no two are equal."""
        mask = (1 << RANDOM_BITS) - 1
        bits = (index * 0x5DEECE66D) & mask
        bits ^= bits >> 17
        bits = (bits * 0x2545F4914F) & mask
        bits ^= bits >> 13
        return rma_number_from_bits(bits ^ self.number_key)

    def add_rma(self, batch: Batch, index: int) -> None:
        rng, plan = self.rng, self.plan
        merchant_id = plan.merchant_id
        customer_id = self.customer_ids[rng.randrange(len(self.customer_ids))]
        created = plan.now - SPAN * rng.random()
        placed = created - timedelta(days=3 + 27 * rng.random())
        delivered = placed + timedelta(days=1 + 5 * rng.random())
        order_id = self.new_id()
        batch.rows["order"].append(
            (
                order_id,
                merchant_id,
                placed,
                customer_id,
                Platform.STOREFRONT.value,
                f"scale-{index:08d}",
                f"#{100_000 + index}",
                CURRENCY,
                placed,
                min(delivered, created),
                rng.choice((0, 0, 495, 995)),
                0,
                placed,
            )
        )
        order_lines = []
        for position in range(rng.choice((1, 1, 2, 2, 3))):
            sku, title, category, price = CATALOGUE[rng.randrange(len(CATALOGUE))]
            quantity = rng.choice((1, 1, 1, 2, 3))
            discount = rng.choice((0, 0, 0, price * quantity // 10))
            tax = (price * quantity - discount) * 8 // 100
            line_id = self.new_id()
            order_lines.append((line_id, quantity))
            batch.rows["order_line"].append(
                (
                    line_id,
                    merchant_id,
                    placed,
                    order_id,
                    str(position + 1),
                    position,
                    sku,
                    title,
                    quantity,
                    price,
                    discount,
                    tax,
                    category,
                    [],
                )
            )
        returned = order_lines[: rng.randint(1, len(order_lines))]
        risk = rng.choice((0, 0, 0, 10, 20, 35, 80))
        life = self.life(created, needs_review=risk > REVIEWED_ABOVE_RISK)
        rma_id = self.new_id()
        batch.rows["rma"].append(
            (
                rma_id,
                merchant_id,
                created,
                self.rma_number(index),
                order_id,
                customer_id,
                life.status,
                CURRENCY,
                plan.policy_id,
                1 if plan.policy_id else None,
                {
                    "policyVersion": 1,
                    "lines": {
                        str(line_id): {"eligible": True, "codes": []} for line_id, _ in returned
                    },
                    "risk": {"score": risk, "signals": []},
                },
                False,
                rng.choice(RESOLUTIONS),
                "",
                risk,
                [],
                life.authorized_at,
                life.authorization_expires_at,
                life.received_at,
                life.inspected_at,
                life.resolved_at,
                life.closed_at,
                life.rest_ended_at,
                life.updated_at,
            )
        )
        for position, (line_id, ordered) in enumerate(returned):
            quantity = rng.randint(1, ordered)
            batch.rows["rma_line"].append(
                (
                    self.new_id(),
                    merchant_id,
                    created,
                    rma_id,
                    line_id,
                    position,
                    quantity,
                    rng.choice(REASONS),
                    rng.choice(CONDITIONS),
                    "",
                    [],
                    quantity if life.received_at is not None else 0,
                )
            )

    def life(self, created: datetime, *, needs_review: bool) -> Life:
        """How far an RMA asked for at ``created`` got by ``now``: its status and the times of
        the steps it took. A risky one waits for a person, and longer."""
        rng, now = self.rng, self.plan.now
        outcome = rng.choice(OUTCOMES)
        first = RmaStatus.NEEDS_REVIEW if needs_review else RmaStatus.REQUESTED
        life = Life(first.value, updated_at=created)
        reviewed = created + timedelta(hours=(4 if needs_review else 1) + 47 * rng.random())
        if reviewed > now:
            return life
        if outcome == "rejected":
            return life.ended(RmaStatus.REJECTED, reviewed)
        life.step(RmaStatus.AUTHORIZED, reviewed)
        life.authorized_at = reviewed
        life.authorization_expires_at = reviewed + AUTHORIZATION_VALID
        if outcome == "expired":
            expires = life.authorization_expires_at
            return life if expires > now else life.ended(RmaStatus.EXPIRED, expires)
        shipped = reviewed + timedelta(days=2 * rng.random())
        if shipped > now:
            return life
        if outcome == "cancelled":
            return life.ended(RmaStatus.CANCELLED, shipped)
        life.step(RmaStatus.IN_TRANSIT, shipped)
        steps = [
            (RmaStatus.RECEIVED, timedelta(days=2 + 6 * rng.random())),
            (RmaStatus.INSPECTED, timedelta(days=0.2 + 2 * rng.random())),
            (RmaStatus.RESOLVING, timedelta(hours=1 + 23 * rng.random())),
            (RmaStatus.RESOLVED, timedelta(minutes=1 + 60 * rng.random())),
            (RmaStatus.CLOSED, timedelta(days=1 + 6 * rng.random())),
        ]
        moment = shipped
        for status, after in steps:
            moment += after
            if moment > now:
                break
            life.step(status, moment)
        return life


@dataclass(slots=True)
class Life:
    """An RMA's status and the times its steps set (``None`` for steps not taken)."""

    status: str
    updated_at: datetime
    authorized_at: datetime | None = None
    authorization_expires_at: datetime | None = None
    received_at: datetime | None = None
    inspected_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    rest_ended_at: datetime | None = None

    def step(self, status: RmaStatus, moment: datetime) -> None:
        self.status = status.value
        self.updated_at = moment
        if status is RmaStatus.RECEIVED:
            # Every unit came back in one parcel: none is expected any more.
            self.received_at = self.rest_ended_at = moment
        elif status is RmaStatus.INSPECTED:
            self.inspected_at = moment
        elif status is RmaStatus.RESOLVED:
            self.resolved_at = moment
        elif status is RmaStatus.CLOSED:
            self.closed_at = moment

    def ended(self, status: RmaStatus, moment: datetime) -> Life:
        """Ended early (rejected, cancelled, expired): nothing more is expected."""
        self.status = status.value
        self.updated_at = self.rest_ended_at = moment
        return self
