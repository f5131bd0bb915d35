"""A topic handler's way to say: this delivery is genuine but not ours to apply."""

from __future__ import annotations


class DeliveryIgnored(Exception):
    """Raised by a topic handler: the delivery is marked IGNORED with this reason, not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
