"""A merchant connected to the fake Stripe, with paid orders and inspected returns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.entities import Customer, Order, Rma
from core.enums import PaymentProviderName
from core.plugins import Registry
from core.secrets import Vault
from core.settings import DEVELOPMENT_ENCRYPTION_KEY, Settings
from core.usecases.connections import connect_platform
from core.usecases.inspection import InspectedLine, inspect_rma
from core.usecases.logistics import ReceivedLine, receive_rma
from core.usecases.orders import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    PaymentInput,
    upsert_order,
)
from core.usecases.requests import ReturnLineInput, request_rma
from core.usecases.resolutions import ChosenResolution, resolve_rma
from graphql_api.composition import build_registry
from plugins.stripe.plugin import StripePlugin
from plugins.stripe.settings import StripeSettings
from plugins.stripe.webhooks import StripeWebhookSource
from testkit.fakes import FakeAccount, FakeStripe
from tests import factories as f
from tests.conftest import BACKENDS
from tests.integration.running_jobs import (
    RunsJobs,
    module_database_url,
)

WEBHOOK_SECRET = "whsec_money_world"


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="module", params=BACKENDS)
def money_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module alone, so that its workers see only its jobs."""
    yield from module_database_url(request.param, tmp_path_factory, "money")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def money_db(money_url: str) -> AsyncIterator[Database]:
    database = Database(money_url, pool_size=8)
    yield database
    await database.dispose()


@dataclass
class World(RunsJobs):
    db: Database
    fake: FakeStripe
    account: FakeAccount
    merchant_id: uuid.UUID
    settings: Settings
    connection_id: uuid.UUID
    registry: Registry

    async def paid_order(
        self, amount_minor: int = 5000, captured_minor: int | None = None, lines: int = 1
    ) -> Order:
        per_line = amount_minor // lines
        payment_intent, _charge = self.fake.create_payment(
            self.account, captured_minor if captured_minor is not None else per_line * lines, "usd"
        )
        async with self.db.session() as session:
            return await upsert_order(
                session,
                self.merchant_id,
                OrderInput(
                    platform="storefront",
                    external_id=uuid.uuid4().hex,
                    order_number=f"#{uuid.uuid4().hex[:6]}",
                    currency="USD",
                    placed_at=f.NOW,
                    delivered_at=f.NOW,
                    customer=CustomerInput(email=f"{uuid.uuid4().hex[:8]}@example.com"),
                    lines=[
                        OrderLineInput(f"L{index}", f"Item {index}", 1, per_line)
                        for index in range(lines)
                    ],
                    payments=[
                        PaymentInput(
                            PaymentProviderName.STRIPE,
                            payment_intent,
                            captured_minor if captured_minor is not None else per_line * lines,
                            "USD",
                        )
                    ],
                ),
                now=SYSTEM_CLOCK.now(),
            )

    async def email_of(self, order: Order) -> str:
        async with self.db.read_session() as session:
            customer = await session.get(Customer, order.customer_id)
        assert customer is not None
        return customer.email

    async def inspected(self, order: Order | None = None) -> Rma:
        return await f.inspected_rma(self.db, self.merchant_id, order or await self.paid_order())

    async def choose_refund(self, order: Order | None = None) -> ChosenResolution:
        """An inspected RMA on a Stripe-paid order, with a refund chosen (its job queued)."""
        rma = await self.inspected(order)
        async with self.db.session() as session:
            return await resolve_rma(
                session, self.merchant_id, rma.id, kind="REFUND", actor="s", now=SYSTEM_CLOCK.now()
            )

    async def inspected_one_line(self, order: Order, order_line_id: uuid.UUID) -> Rma:
        """An inspected RMA for one unit of one line of ``order``."""
        async with self.db.session() as session:
            rma = await request_rma(
                session,
                self.merchant_id,
                order_id=order.id,
                actor="customer",
                now=f.NOW,
                lines=[
                    ReturnLineInput(
                        order_line_id, 1, "DEFECTIVE", "OPENED", troubleshooting_completed=True
                    )
                ],
            )
        async with self.db.session() as session:
            rma = await receive_rma(
                session,
                self.merchant_id,
                rma.id,
                actor="staff",
                lines=[ReceivedLine(rma.lines[0].id, 1)],
                now=SYSTEM_CLOCK.now(),
            )
        async with self.db.session() as session:
            return await inspect_rma(
                session,
                self.merchant_id,
                rma.id,
                actor="staff",
                lines=[InspectedLine(rma.lines[0].id, "OPENED", "SCRAP")],
                now=SYSTEM_CLOCK.now(),
            )


async def make_world(db: Database, fake: FakeStripe, **policy: object) -> World:
    url = db.url
    account = fake.add_account()
    policy = {"return_window_days": 365, "auto_authorize_max_risk": 100, **policy}
    merchant = await f.merchant(db, **policy)
    async with db.session() as session:
        connection = await connect_platform(
            session,
            Vault(DEVELOPMENT_ENCRYPTION_KEY),
            StripeWebhookSource(),
            merchant_id=merchant.id,
            account=account.id,
            credentials={"secret_key": account.secret_key},
            webhook_secret=WEBHOOK_SECRET,
            now=SYSTEM_CLOCK.now(),
        )
    settings = Settings(database_url=url)
    # Stripe's calls go to the fake, as RMA_STRIPE_API_BASE would send them.
    registry = build_registry([StripePlugin(StripeSettings(api_base=fake.base_url))])
    return World(db, fake, account, merchant.id, settings, connection.id, registry)
