"""Customers read stable, friendly text about their refund; staff read what really happened."""

from __future__ import annotations

import json

from core.clock import SYSTEM_CLOCK
from core.database import Database
from core.enums import PaymentProviderName, ResolutionKind, ResolutionStatus
from core.ports.payments import RefundReport, RefundStatus
from core.usecases.provider_reports import record_provider_refund
from core.usecases.resolutions import record_resolution_outcome, resolve_rma
from tests import factories as f
from tests.api.conftest import Api, gid, make_shop
from tests.api.test_permissions import start_session

INTERNAL = "card_declined for ch_3NxSentinel: the merchant has no stripe connection"
READ = """query($id: ID) { rma(id: $id) { status
  resolution { status failureReason providerReference }
  resolutions { failureReason providerReference }
  events { kind actor message } } }"""


async def test_a_failed_refund_shows_customers_a_stable_reason_and_staff_the_real_one(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id, email="cleo@example.com")
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind=ResolutionKind.REFUND, actor="staff:x", now=f.NOW
        )
    async with db.session() as session:
        await record_resolution_outcome(
            session,
            shop.id,
            chosen.resolution.id,
            succeeded=False,
            actor="system",
            provider_reference="re_SentinelRef",
            failure_reason=INTERNAL,
            now=f.NOW,
        )
    token = await start_session(api, shop, order, "cleo@example.com")

    customer = await api.gql(READ, {"id": gid("Rma", rma.id)}, token=token)
    staff = await api.gql(READ, {"id": gid("Rma", rma.id)}, token=shop.readonly)

    text = json.dumps(customer)
    for internal in ("ch_3NxSentinel", "stripe connection", "card_declined", "re_SentinelRef"):
        assert internal not in text
    resolution = customer["rma"]["resolution"]
    assert resolution["status"] == "FAILED"
    assert resolution["failureReason"].startswith("The refund could not be completed")
    assert resolution["providerReference"] is None
    assert staff["rma"]["resolution"]["failureReason"] == INTERNAL
    assert staff["rma"]["resolution"]["providerReference"] == "re_SentinelRef"
    assert INTERNAL in json.dumps(staff["rma"]["events"])


async def test_a_refund_settled_by_a_provider_report_has_no_failure_reason(
    api: Api, db: Database
) -> None:
    shop = await make_shop(db)
    order = await f.order(db, shop.id)
    rma = await f.inspected_rma(db, shop.id, order)
    async with db.session() as session:
        chosen = await resolve_rma(
            session, shop.id, rma.id, kind=ResolutionKind.REFUND, actor="staff:x", now=f.NOW
        )
    for status in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        async with db.session() as session:
            report = RefundReport(
                provider=PaymentProviderName.STRIPE,
                provider_reference="re_settles",
                status=status,
                resolution_id=str(chosen.resolution.id),
            )
            settled = await record_provider_refund(
                session, shop.id, report, actor="stripe", now=SYSTEM_CLOCK.now()
            )
    assert settled is not None
    assert settled.status is ResolutionStatus.SUCCEEDED
    assert settled.failure_reason is None

    staff = await api.gql(READ, {"id": gid("Rma", rma.id)}, token=shop.readonly)
    assert staff["rma"]["status"] == "RESOLVED"
    assert staff["rma"]["resolution"]["failureReason"] is None
