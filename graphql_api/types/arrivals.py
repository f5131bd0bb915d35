"""Parcels that arrived matching no order, as staff see them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core import entities, enums
from graphql_api.errors import UserError
from graphql_api.ids import to_global_id
from graphql_api.types.common import Carrier
from graphql_api.types.returns import Rma

strawberry.enum(enums.ArrivalStatus, description="Where an unmatched arrival stands.")
ArrivalStatus = enums.ArrivalStatus


@strawberry.type(description="Goods that arrived with no RMA and match no order (yet).")
class UnmatchedArrival:
    id: strawberry.ID
    status: ArrivalStatus
    description: str
    sender: str
    carrier: Carrier | None
    tracking_number: str | None
    received_at: datetime
    recorded_by: str
    outcome_note: str = strawberry.field(description="How it was matched or why refused.")
    rma_id: strawberry.ID | None = strawberry.field(
        description="The unauthorized RMA it became, once matched."
    )

    @classmethod
    def from_row(cls, row: entities.UnmatchedArrival) -> UnmatchedArrival:
        return cls(
            id=strawberry.ID(to_global_id("UnmatchedArrival", row.id)),
            status=row.status,
            description=row.description,
            sender=row.sender,
            carrier=row.carrier,
            tracking_number=row.tracking_number,
            received_at=row.created_at,
            recorded_by=row.recorded_by,
            outcome_note=row.outcome_note,
            rma_id=None if row.rma_id is None else strawberry.ID(to_global_id("Rma", row.rma_id)),
        )


@strawberry.input
class UnmatchedArrivalInput:
    description: str = strawberry.field(description="What is in the parcel.")
    sender: str = ""
    carrier: Carrier | None = None
    tracking_number: str = ""


@strawberry.type
class UnmatchedArrivalPayload:
    arrival: UnmatchedArrival | None
    rma: Rma | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
