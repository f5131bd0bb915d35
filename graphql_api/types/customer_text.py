"""What a customer reads about their return where the service, not a person, wrote the text.

Failure reasons and timeline messages written by jobs carry provider messages, charge ids and
configuration problems ("the merchant has no stripe connection"): useful to staff, none of a
customer's business. Customers get a stable, friendly sentence per status or event instead;
the words of people (a staff note, the customer's own) are shown as written.
"""

from __future__ import annotations

from core import entities
from core.enums import ResolutionStatus, RmaStatus

# Events only staff may see: they are about reconciling money, not about the return.
STAFF_ONLY_EVENTS = frozenset({"PROVIDER_DISAGREES", "RESOLUTION_OVERRIDDEN", "CREDIT_KEPT_HERE"})

_PEOPLE = ("staff", "customer")

_FAILURE_TEXT = {
    ResolutionStatus.FAILED: "The refund could not be completed. The shop will settle your "
    "return another way.",
    ResolutionStatus.CANCELED: "The refund was canceled. The shop will settle your return "
    "another way.",
    ResolutionStatus.REQUIRES_REVIEW: "The shop is checking this refund; nothing is needed "
    "from you.",
}

_EVENT_TEXT = {
    "RESOLUTION_CHOSEN": "Your refund or store credit is being prepared.",
    "REFUND_PENDING": "Your refund has been sent and is on its way.",
    "RESOLUTION_NEEDS_REVIEW": "The shop is checking your refund; nothing is needed from you.",
    "RESOLUTION_RETRIED": "The shop is sending your refund again.",
    "STORE_CREDIT_MIRRORED": "Your store credit is ready to spend.",
}

_STATUS_TEXT = {
    RmaStatus.RESOLVED: "Your refund or store credit has been issued.",
    RmaStatus.INSPECTED: "The refund did not go through; the shop will settle your return "
    "another way.",
    RmaStatus.EXPIRED: "The authorization expired before the parcel was sent.",
    RmaStatus.RESOLVING: "Your refund or store credit is being prepared.",
}


def customer_failure_reason(resolution: entities.Resolution) -> str | None:
    """A stable reason for a resolution that did not (yet) go through; None otherwise."""
    return _FAILURE_TEXT.get(resolution.status)


def customer_event_message(event: entities.RmaEvent) -> str:
    """The timeline message a customer reads for this event."""
    if event.kind in _EVENT_TEXT:
        return _EVENT_TEXT[event.kind]
    if event.actor.partition(":")[0] in _PEOPLE:
        return event.message  # a person's own words: a reason for a refusal, a note
    if event.kind == "STATUS_CHANGED" and event.to_status is not None:
        return _STATUS_TEXT.get(event.to_status, "")
    return ""
