"""Signature checks for each platform: pure functions of bytes, headers, secrets and time.

Every comparison is constant-time, and every check tries each of the connection's secrets, so a
delivery signed with the previous secret still passes during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
from collections.abc import Sequence

STRIPE_TOLERANCE_SECONDS = 300


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def shopify_signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body."""
    if not header:
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(base64.b64encode(_hmac_sha256(secret.encode(), body)), given)
        for secret in secrets
    )


def woocommerce_signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 with the HTML-decoded secret."""
    if not header:
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(
            base64.b64encode(_hmac_sha256(html.unescape(secret).encode(), body)), given
        )
        for secret in secrets
    )


def stripe_signature_valid(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: int = STRIPE_TOLERANCE_SECONDS,
) -> bool:
    """``Stripe-Signature: t=...,v1=...``: hex HMAC-SHA256 of ``"{t}.{body}"``.

    Unlike stripe-python, a timestamp too far in the future is refused as well as a stale one.
    """
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value.encode())
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = _hmac_sha256(secret.encode(), signed).hex().encode()
        if any(hmac.compare_digest(expected, signature) for signature in signatures):
            return True
    return False
