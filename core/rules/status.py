"""The RMA status machine, as data."""

from __future__ import annotations

from collections.abc import Iterable

from core.enums import ReceiptStatus, RmaStatus
from core.errors import InvalidTransition

S = RmaStatus

ALLOWED_TRANSITIONS: dict[RmaStatus, frozenset[RmaStatus]] = {
    S.REQUESTED: frozenset({S.AUTHORIZED, S.NEEDS_REVIEW, S.REJECTED, S.CANCELLED}),
    S.NEEDS_REVIEW: frozenset({S.AUTHORIZED, S.REJECTED, S.CANCELLED}),
    # RECEIVED straight from AUTHORIZED is the walk-in return, with no tracking.
    # Back to NEEDS_REVIEW when the merchant's staff closed or cancelled the mirrored return
    # on the platform before the goods arrived: a person decides what happens.
    S.AUTHORIZED: frozenset({S.IN_TRANSIT, S.RECEIVED, S.CANCELLED, S.EXPIRED, S.NEEDS_REVIEW}),
    S.IN_TRANSIT: frozenset({S.RECEIVED, S.NEEDS_REVIEW}),
    # REJECTED from RECEIVED or INSPECTED: staff refuse goods that arrived (sent back to the
    # customer, or disposed of with their consent). RESOLVING or RESOLVED from there when the
    # refused parcel was not the first: an earlier one is being or was resolved.
    S.RECEIVED: frozenset({S.INSPECTED, S.REJECTED, S.RESOLVING, S.RESOLVED}),
    # Back to RECEIVED when the next parcel of a return sent in several arrives.
    S.INSPECTED: frozenset({S.RESOLVING, S.REJECTED, S.RECEIVED, S.RESOLVED}),
    # Back to INSPECTED when the provider failed, so that another resolution may be chosen.
    S.RESOLVING: frozenset({S.RESOLVED, S.INSPECTED, S.RECEIVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.RECEIVED}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}

TERMINAL_STATUSES = frozenset(
    status for status, targets in ALLOWED_TRANSITIONS.items() if not targets
)

# Statuses in which the customer's units count as returned (or on their way back) when the
# policy works out how many units of a line are still returnable.
OPEN_OR_DONE_STATUSES = frozenset(RmaStatus) - {S.REJECTED, S.CANCELLED, S.EXPIRED}


# An RMA's goods may come back in several receipts, each inspected and resolved on its own;
# the RMA shows the least advanced one (the warehouse's or staff's next step comes first).
_RECEIPT_PRECEDENCE = (
    (ReceiptStatus.RECEIVED, S.RECEIVED),
    (ReceiptStatus.INSPECTED, S.INSPECTED),
    (ReceiptStatus.RESOLVING, S.RESOLVING),
    (ReceiptStatus.RESOLVED, S.RESOLVED),
    (ReceiptStatus.REFUSED, S.REJECTED),
)


def status_of_receipts(statuses: Iterable[ReceiptStatus]) -> RmaStatus | None:
    """The status an RMA shows for its receipts' statuses (None before anything arrived).

    REJECTED only when every receipt was refused; RESOLVED as soon as every receipt is either
    resolved or refused and one was resolved.
    """
    present = set(statuses)
    for receipt_status, rma_status in _RECEIPT_PRECEDENCE:
        if receipt_status in present:
            return rma_status
    return None


def can_transition(current: RmaStatus, target: RmaStatus) -> bool:
    """Whether the machine allows ``current`` to move to ``target``."""
    return target in ALLOWED_TRANSITIONS[current]


def check_transition(current: RmaStatus, target: RmaStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current`` may move to ``target``."""
    if not can_transition(current, target):
        raise InvalidTransition(current.value, target.value)
