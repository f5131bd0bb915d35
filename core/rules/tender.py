"""Splitting a refund over the payments of an order paid several ways (split tender).

A refund goes back to the payments in reverse order, the last payment first, each taking at
most what it can still give back. The order depends only on the payments' positions, so every
retry of a choice splits the same way. What no payment can take (an order whose payments are
unknown, or were refunded elsewhere) is left for staff to refund by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.enums import REFUNDED_THROUGH_PLATFORM, PaymentProviderName

# Ways of paying that are not a card or a platform's payment: the policy may send their share
# back as store credit instead of to where it came from.
NON_CARD = frozenset({PaymentProviderName.MANUAL, PaymentProviderName.OTHER})


@dataclass(frozen=True, slots=True)
class Tender:
    """One way the order was paid, and how much of it can still be refunded."""

    provider: PaymentProviderName
    reference: str
    position: int  # the order the customer paid in: 0 first
    refundable_minor: int


@dataclass(frozen=True, slots=True)
class TenderShare:
    """What one part of a refund takes back, and through whom.

    ``reference`` is None for the share no payment could take (refunded by hand).
    """

    provider: PaymentProviderName
    reference: str | None
    amount_minor: int


def merge_platform_tenders(tenders: Sequence[Tender]) -> list[Tender]:
    """A platform's payments as one tender, at the place of its last payment, named by its
    largest; the others stay as they are. The platform spreads its part itself."""
    by_provider: dict[PaymentProviderName, list[Tender]] = {}
    kept: list[Tender] = []
    for tender in tenders:
        if tender.provider in REFUNDED_THROUGH_PLATFORM:
            by_provider.setdefault(tender.provider, []).append(tender)
        else:
            kept.append(tender)
    for provider, group in by_provider.items():
        largest = max(group, key=lambda tender: (tender.refundable_minor, tender.reference))
        kept.append(
            Tender(
                provider=provider,
                reference=largest.reference,
                position=max(tender.position for tender in group),
                refundable_minor=sum(tender.refundable_minor for tender in group),
            )
        )
    return kept


def split_refund(amount_minor: int, tenders: Sequence[Tender]) -> list[TenderShare]:
    """Spread ``amount_minor`` over ``tenders``, the last payment first, each capped at what it
    can still refund; what is left over becomes a MANUAL share with no payment. Nothing to
    refund is no share at all.

    Ties in position are broken by reference, so the split never depends on loading order.
    """
    if amount_minor < 0:
        raise ValueError("a refund is never negative")
    shares: list[TenderShare] = []
    left = amount_minor
    ordered = sorted(tenders, key=lambda tender: (tender.position, tender.reference), reverse=True)
    for tender in ordered:
        if left == 0:
            break
        take = min(left, max(tender.refundable_minor, 0))
        if take > 0:
            shares.append(TenderShare(tender.provider, tender.reference, take))
            left -= take
    if left > 0:
        shares.append(TenderShare(PaymentProviderName.MANUAL, None, left))
    return shares
