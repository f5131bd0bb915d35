"""Return policies: every change is a new version, so old RMAs keep the rules they got."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from core.entities import ReturnPolicy
from core.enums import ResolutionKind, ReturnReason
from core.errors import Conflict, InvalidInput
from core.money import MAX_MINOR
from core.usecases.inputs import checked_now, clean_text
from core.usecases.owned_rows import current_policy

_MAX_TAGS = 100


@dataclass(frozen=True, slots=True)
class PolicyChanges:
    """Fields to change; ``None`` keeps the current version's value."""

    return_window_days: int | None = None
    warranty_days: int | None = None
    unopened_only_categories: list[str] | None = None
    final_sale_tags: list[str] | None = None
    restocking_fee_percent: int | None = None
    shipping_refund_reasons: list[str] | None = None
    allowed_resolutions: list[str] | None = None
    store_credit_bonus_percent: int | None = None
    warranty_refunds_shipping: bool | None = None
    warranty_credit_bonus: bool | None = None
    restocking_fee_on_store_credit: bool | None = None
    agent_override_limit_minor: int | None = None
    non_card_refunds_as_store_credit: bool | None = None
    auto_authorize: bool | None = None
    auto_authorize_max_risk: int | None = None
    auto_resolve: bool | None = None
    authorization_valid_days: int | None = None
    troubleshooting_required_reasons: list[str] | None = None
    troubleshooting_steps: list[str] | None = field(default=None)
    special_instructions: str | None = None


_RANGES: dict[str, tuple[int, int]] = {
    # A window of 0 days takes no returns at all, and past a year it is a warranty.
    "return_window_days": (1, 365),
    "warranty_days": (0, 3650),
    "restocking_fee_percent": (0, 100),
    "store_credit_bonus_percent": (0, 100),
    "auto_authorize_max_risk": (0, 100),
    "authorization_valid_days": (1, 365),
    "agent_override_limit_minor": (0, MAX_MINOR),
}


def _clean_list(name: str, values: list[str], allowed: set[str] | None) -> list[str]:
    if len(values) > _MAX_TAGS:
        raise InvalidInput(name, f"{name} has more than {_MAX_TAGS} entries")
    cleaned = []
    for value in values:
        text = clean_text(value, name, limit=200)
        if allowed is not None:
            text = text.upper()
            if text not in allowed:
                raise InvalidInput(name, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        if text and text not in cleaned:
            cleaned.append(text)
    return cleaned


def _validated(changes: PolicyChanges) -> dict[str, object]:
    reasons = {reason.value for reason in ReturnReason}
    allowed_by_list: dict[str, set[str] | None] = {
        "unopened_only_categories": None,
        "final_sale_tags": None,
        "troubleshooting_steps": None,
        "shipping_refund_reasons": reasons,
        "troubleshooting_required_reasons": reasons,
        "allowed_resolutions": {kind.value for kind in ResolutionKind},
    }
    values: dict[str, object] = {}
    for spec in fields(changes):
        value = getattr(changes, spec.name)
        if value is None:
            continue
        if spec.name in _RANGES:
            low, high = _RANGES[spec.name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(spec.name, f"{spec.name} must be between {low} and {high}")
        elif spec.name in allowed_by_list:
            value = _clean_list(spec.name, list(value), allowed_by_list[spec.name])
        elif spec.name == "special_instructions":
            value = clean_text(value, spec.name)
        values[spec.name] = value
    if values.get("allowed_resolutions") == []:
        raise InvalidInput("allowed_resolutions", "at least one resolution must be allowed")
    return values


def _check_warranty(window_days: int, warranty_days: int) -> None:
    """A warranty runs from the same day as the window: a shorter one would end before it."""
    if 0 < warranty_days < window_days:
        raise InvalidInput(
            "warranty_days",
            f"a {warranty_days}-day warranty ends before the {window_days}-day return window; "
            "give 0 (no warranty) or at least the window",
        )


async def update_return_policy(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    changes: PolicyChanges,
    *,
    now: datetime,
) -> ReturnPolicy:
    """Write the next version of the merchant's policy with ``changes`` applied."""
    values = _validated(changes)
    try:
        async with session.begin():
            current = await current_policy(session, merchant_id)
            carried = current.model_dump(exclude={"id", "version", "created_at"})
            carried.update(values)
            _check_warranty(carried["return_window_days"], carried["warranty_days"])
            policy = ReturnPolicy(
                **carried, version=current.version + 1, created_at=checked_now(now)
            )
            session.add(policy)
    except IntegrityError as error:
        # Someone else wrote the same version number first.
        raise Conflict("the policy was changed at the same time; try again") from error
    return policy
