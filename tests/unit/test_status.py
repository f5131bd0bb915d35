"""The RMA status machine: every pair of statuses is either an allowed move or an error."""

from __future__ import annotations

import itertools

import pytest

from core.enums import ReceiptStatus, RmaStatus
from core.errors import DomainError, InvalidTransition
from core.rules.status import (
    ALLOWED_TRANSITIONS,
    OPEN_OR_DONE_STATUSES,
    TERMINAL_STATUSES,
    can_transition,
    check_transition,
    status_of_receipts,
)

S = RmaStatus

# The machine as the product describes it, written out independently of the module.
EXPECTED_EDGES: dict[RmaStatus, set[RmaStatus]] = {
    S.REQUESTED: {S.AUTHORIZED, S.NEEDS_REVIEW, S.REJECTED, S.CANCELLED},
    S.NEEDS_REVIEW: {S.AUTHORIZED, S.REJECTED, S.CANCELLED},
    S.AUTHORIZED: {S.IN_TRANSIT, S.RECEIVED, S.CANCELLED, S.EXPIRED, S.NEEDS_REVIEW},
    S.IN_TRANSIT: {S.RECEIVED, S.NEEDS_REVIEW},
    # A return in several parcels: the RMA shows its least advanced receipt, so the next
    # parcel takes it back to RECEIVED, and refusing a later parcel leaves the earlier one's.
    S.RECEIVED: {S.INSPECTED, S.REJECTED, S.RESOLVING, S.RESOLVED},
    S.INSPECTED: {S.RESOLVING, S.REJECTED, S.RECEIVED, S.RESOLVED},
    S.RESOLVING: {S.RESOLVED, S.INSPECTED, S.RECEIVED},
    S.RESOLVED: {S.CLOSED, S.RECEIVED},
    S.CLOSED: set(),
    S.REJECTED: set(),
    S.CANCELLED: set(),
    S.EXPIRED: set(),
}

ALL_PAIRS = list(itertools.product(RmaStatus, RmaStatus))
LEGAL_PAIRS = [
    (current, target) for current, target in ALL_PAIRS if target in EXPECTED_EDGES[current]
]
ILLEGAL_PAIRS = [
    (current, target) for current, target in ALL_PAIRS if target not in EXPECTED_EDGES[current]
]


def _pair_id(pair: tuple[RmaStatus, RmaStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_every_status_has_an_entry_in_the_machine() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(RmaStatus)


def test_the_machine_has_exactly_the_documented_edges() -> None:
    assert {status: set(targets) for status, targets in ALLOWED_TRANSITIONS.items()} == (
        EXPECTED_EDGES
    )


def test_the_pairs_cover_every_combination_of_statuses() -> None:
    assert len(LEGAL_PAIRS) + len(ILLEGAL_PAIRS) == len(RmaStatus) ** 2
    assert len(LEGAL_PAIRS) == 27


@pytest.mark.parametrize("pair", LEGAL_PAIRS, ids=_pair_id)
def test_allowed_move_passes(pair: tuple[RmaStatus, RmaStatus]) -> None:
    current, target = pair
    assert can_transition(current, target)
    check_transition(current, target)  # does not raise


@pytest.mark.parametrize("pair", ILLEGAL_PAIRS, ids=_pair_id)
def test_illegal_move_is_refused_with_both_statuses_named(
    pair: tuple[RmaStatus, RmaStatus],
) -> None:
    current, target = pair
    assert not can_transition(current, target)
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, target)
    error = caught.value
    assert error.current == current.value
    assert error.target == target.value
    assert error.code == "INVALID_TRANSITION"
    assert error.field == "status"
    assert current.value in error.message
    assert target.value in error.message
    assert isinstance(error, DomainError)


@pytest.mark.parametrize("status", list(RmaStatus), ids=str)
def test_no_status_moves_to_itself(status: RmaStatus) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(status, status)


def test_terminal_statuses_are_rejected_cancelled_expired_and_closed() -> None:
    assert {S.REJECTED, S.CANCELLED, S.EXPIRED, S.CLOSED} == TERMINAL_STATUSES


@pytest.mark.parametrize("terminal", [S.REJECTED, S.CANCELLED, S.EXPIRED, S.CLOSED], ids=str)
def test_a_terminal_status_has_no_way_out(terminal: RmaStatus) -> None:
    assert ALLOWED_TRANSITIONS[terminal] == frozenset()
    for target in RmaStatus:
        with pytest.raises(InvalidTransition):
            check_transition(terminal, target)


def test_a_request_can_be_authorized_sent_for_review_rejected_or_cancelled() -> None:
    for target in (S.AUTHORIZED, S.NEEDS_REVIEW, S.REJECTED, S.CANCELLED):
        check_transition(S.REQUESTED, target)


def test_a_request_cannot_skip_straight_to_receiving() -> None:
    for target in (S.IN_TRANSIT, S.RECEIVED, S.INSPECTED, S.RESOLVED, S.CLOSED, S.EXPIRED):
        with pytest.raises(InvalidTransition):
            check_transition(S.REQUESTED, target)


def test_a_reviewed_request_can_be_authorized_rejected_or_cancelled() -> None:
    for target in (S.AUTHORIZED, S.REJECTED, S.CANCELLED):
        check_transition(S.NEEDS_REVIEW, target)


def test_a_reviewed_request_does_not_go_back_to_requested() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(S.NEEDS_REVIEW, S.REQUESTED)


def test_an_authorized_return_ships_is_walked_in_is_cancelled_or_expires() -> None:
    for target in (S.IN_TRANSIT, S.RECEIVED, S.CANCELLED, S.EXPIRED):
        check_transition(S.AUTHORIZED, target)


def test_an_authorized_return_cannot_be_rejected_any_more() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(S.AUTHORIZED, S.REJECTED)


def test_a_parcel_in_transit_can_only_be_received_or_sent_to_review() -> None:
    # Review: the merchant's staff cancelled its mirrored return on the platform.
    assert ALLOWED_TRANSITIONS[S.IN_TRANSIT] == frozenset({S.RECEIVED, S.NEEDS_REVIEW})
    for target in (S.CANCELLED, S.EXPIRED, S.AUTHORIZED):
        with pytest.raises(InvalidTransition):
            check_transition(S.IN_TRANSIT, target)


def test_a_received_return_is_inspected_next_or_its_goods_refused() -> None:
    # RESOLVING or RESOLVED when the refused parcel followed one being or already resolved.
    assert ALLOWED_TRANSITIONS[S.RECEIVED] == frozenset(
        {S.INSPECTED, S.REJECTED, S.RESOLVING, S.RESOLVED}
    )


def test_an_inspected_return_moves_on_to_resolving_or_its_goods_refused() -> None:
    # RECEIVED when the next parcel arrives first; RESOLVED when a later parcel is refused.
    assert ALLOWED_TRANSITIONS[S.INSPECTED] == frozenset(
        {S.RESOLVING, S.REJECTED, S.RECEIVED, S.RESOLVED}
    )


def test_a_failed_resolution_goes_back_to_inspected_to_choose_again() -> None:
    assert ALLOWED_TRANSITIONS[S.RESOLVING] == frozenset({S.RESOLVED, S.INSPECTED, S.RECEIVED})
    check_transition(S.RESOLVING, S.INSPECTED)


def test_a_resolved_return_is_closed_or_receives_its_next_parcel() -> None:
    assert ALLOWED_TRANSITIONS[S.RESOLVED] == frozenset({S.CLOSED, S.RECEIVED})


def test_the_happy_path_from_request_to_close_is_allowed() -> None:
    path = [
        S.REQUESTED,
        S.AUTHORIZED,
        S.IN_TRANSIT,
        S.RECEIVED,
        S.INSPECTED,
        S.RESOLVING,
        S.RESOLVED,
        S.CLOSED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)


def test_every_status_is_reachable_from_requested() -> None:
    seen = {S.REQUESTED}
    frontier = [S.REQUESTED]
    while frontier:
        current = frontier.pop()
        for target in ALLOWED_TRANSITIONS[current]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(RmaStatus)


def test_every_non_terminal_status_can_reach_a_terminal_status() -> None:
    for start in set(RmaStatus) - TERMINAL_STATUSES:
        seen = {start}
        frontier = [start]
        while frontier:
            for target in ALLOWED_TRANSITIONS[frontier.pop()]:
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert seen & TERMINAL_STATUSES, start


def test_rejected_cancelled_and_expired_returns_do_not_count_as_open_or_done() -> None:
    assert frozenset(RmaStatus) - {S.REJECTED, S.CANCELLED, S.EXPIRED} == OPEN_OR_DONE_STATUSES
    assert S.CLOSED in OPEN_OR_DONE_STATUSES
    assert S.REQUESTED in OPEN_OR_DONE_STATUSES


R = ReceiptStatus


@pytest.mark.parametrize(
    ("receipts", "expected"),
    [
        ([], None),
        ([R.RECEIVED], S.RECEIVED),
        ([R.RESOLVED, R.RECEIVED], S.RECEIVED),
        ([R.RESOLVING, R.INSPECTED], S.INSPECTED),
        ([R.RESOLVED, R.RESOLVING], S.RESOLVING),
        ([R.RESOLVED, R.REFUSED], S.RESOLVED),
        ([R.REFUSED, R.REFUSED], S.REJECTED),
        ([R.REFUSED, R.INSPECTED], S.INSPECTED),
    ],
)
def test_an_rma_shows_its_least_advanced_receipt(
    receipts: list[ReceiptStatus], expected: RmaStatus | None
) -> None:
    assert status_of_receipts(receipts) == expected


def test_every_status_receipts_add_up_to_is_reachable_from_every_other() -> None:
    """Whatever happens to one receipt, the RMA's move is one the machine allows."""
    reachable = {status_of_receipts([r]) for r in ReceiptStatus}
    for current in reachable:
        for target in reachable - {current}:
            if current is S.REJECTED or (current, target) in {
                (S.RESOLVED, S.INSPECTED),
                (S.RESOLVED, S.RESOLVING),
                (S.RESOLVED, S.REJECTED),
                (S.RESOLVING, S.REJECTED),
            }:
                continue  # never happens: a receipt only moves forward from the RMA's state
            assert current is not None and target is not None
            assert can_transition(current, target), (current, target)
