"""Public tracking pages of the carriers customers ship returns with."""

from __future__ import annotations

import re
from urllib.parse import quote

from core.enums import Carrier
from core.errors import InvalidInput

_TRACKING_PAGES: dict[Carrier, str] = {
    Carrier.UPS: "https://www.ups.com/track?tracknum={number}",
    Carrier.FEDEX: "https://www.fedex.com/fedextrack/?trknbr={number}",
    Carrier.USPS: "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    Carrier.DHL: "https://www.dhl.com/global-en/home/tracking/tracking-express.html?tracking-id={number}",
    Carrier.POSTNL: "https://jouw.postnl.nl/track-and-trace/{number}",
}

_TRACKING_NUMBER = re.compile(r"^[A-Za-z0-9\- ]{4,64}$")


def normalize_tracking_number(tracking_number: str) -> str:
    """Strip, upper-case and check a tracking number (4 to 64 letters, digits, spaces, dashes)."""
    cleaned = tracking_number.strip()
    normalized = re.sub(r"[\s\-]", "", cleaned).upper()
    # The length check on the compact form refuses "----" or "1 2 3", which hold no real number.
    if not _TRACKING_NUMBER.match(cleaned) or len(normalized) < 4:
        raise InvalidInput(
            "trackingNumber", "a tracking number has 4 to 64 letters, digits, spaces or dashes"
        )
    return normalized


def tracking_url(carrier: Carrier, tracking_number: str) -> str | None:
    """The carrier's public tracking page for the number, or ``None`` for an unknown carrier."""
    page = _TRACKING_PAGES.get(carrier)
    if page is None:
        return None
    return page.format(number=quote(tracking_number, safe=""))
