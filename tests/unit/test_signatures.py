"""Webhook signature checks: pure functions of bytes, headers, secrets and the time."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from plugins.shopify.webhooks import shopify_signature_valid
from plugins.stripe.webhooks import stripe_signature_valid
from plugins.woocommerce.webhooks import woocommerce_signature_valid

BODY = b'{"id": 1, "url": "https:\\/\\/shop.example.com\\/"}'
NOW = 1_800_000_000


def b64(secret: str, body: bytes = BODY) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def stripe_header(secret: str, timestamp: int, *extra: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    return ",".join([f"t={timestamp}", f"v1={digest}", *extra])


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_a_stripe_timestamp_within_five_minutes_either_way_passes(offset: int) -> None:
    assert stripe_signature_valid(
        BODY, stripe_header("whsec_a", NOW + offset), ["whsec_a"], now=NOW
    )


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_stripe_timestamp_older_or_newer_than_five_minutes_fails(offset: int) -> None:
    header = stripe_header("whsec_a", NOW + offset)
    assert not stripe_signature_valid(BODY, header, ["whsec_a"], now=NOW)


def test_any_of_several_stripe_signatures_and_any_of_the_secrets_may_match() -> None:
    header = stripe_header("whsec_new", NOW, "v1=" + "0" * 64, "v0=ignored")
    assert stripe_signature_valid(BODY, header, ["whsec_old", "whsec_new"], now=NOW)
    assert not stripe_signature_valid(BODY, header, ["whsec_other"], now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=abc,v1=00",
        "v1=00",
        f"t={NOW}",
        "t=\u00b2\u00b3,v1=00",  # superscript digits: isdigit() says yes, int() says no
        "t=\u0661\u0668\u0660\u0660,v1=00",  # Arabic-Indic digits
        "t=" + "9" * 5000 + ",v1=00",  # more digits than int() reads
        "t=" + "9" * 400 + ",v1=00",  # too far in the future to compare as a float
    ],
)
def test_malformed_stripe_headers_fail(header: str | None) -> None:
    assert not stripe_signature_valid(BODY, header, ["whsec_a"], now=NOW)


def test_shopify_checks_the_raw_body_against_each_secret() -> None:
    assert shopify_signature_valid(BODY, b64("old"), ["new", "old"])
    assert not shopify_signature_valid(BODY + b" ", b64("old"), ["new", "old"])
    assert not shopify_signature_valid(BODY, None, ["old"])


def test_woocommerce_decodes_html_entities_in_the_secret_as_wordpress_does() -> None:
    assert woocommerce_signature_valid(BODY, b64("a&b"), ["a&amp;b"])
    assert not woocommerce_signature_valid(BODY, b64("a&amp;b"), ["other"])
    assert not woocommerce_signature_valid(BODY, "", ["a&amp;b"])
