"""Carrier tracking pages and the tracking numbers customers type."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.enums import Carrier
from core.errors import InvalidInput
from core.rules.tracking import normalize_tracking_number, tracking_url

UPS_NUMBER = "1Z999AA10123456784"

KNOWN_CARRIERS = {
    Carrier.UPS: "www.ups.com",
    Carrier.FEDEX: "www.fedex.com",
    Carrier.USPS: "tools.usps.com",
    Carrier.DHL: "www.dhl.com",
    Carrier.POSTNL: "jouw.postnl.nl",
}


@pytest.mark.parametrize(("carrier", "host"), KNOWN_CARRIERS.items(), ids=str)
def test_each_known_carrier_links_to_its_own_https_tracking_page_with_the_number(
    carrier: Carrier, host: str
) -> None:
    url = tracking_url(carrier, UPS_NUMBER)
    assert url is not None
    assert UPS_NUMBER in url
    parsed = urlparse(url)
    assert parsed.scheme == "https"
    assert parsed.netloc == host


def test_every_carrier_but_other_has_a_tracking_page() -> None:
    for carrier in Carrier:
        if carrier is Carrier.OTHER:
            assert tracking_url(carrier, UPS_NUMBER) is None
        else:
            assert tracking_url(carrier, UPS_NUMBER) is not None


def test_an_unknown_carrier_has_no_tracking_page() -> None:
    assert tracking_url(Carrier.OTHER, UPS_NUMBER) is None


def test_the_ups_page_takes_the_number_as_tracknum() -> None:
    assert tracking_url(Carrier.UPS, UPS_NUMBER) == (
        f"https://www.ups.com/track?tracknum={UPS_NUMBER}"
    )


def test_the_postnl_page_takes_the_number_in_the_path() -> None:
    assert tracking_url(Carrier.POSTNL, "3SABCD1234567") == (
        "https://jouw.postnl.nl/track-and-trace/3SABCD1234567"
    )


@pytest.mark.parametrize("carrier", list(KNOWN_CARRIERS), ids=str)
def test_characters_that_would_break_the_link_are_escaped(carrier: Carrier) -> None:
    url = tracking_url(carrier, "AB&C/D?E#F G")
    assert url is not None
    assert "AB%26C%2FD%3FE%23F%20G" in url
    assert "#" not in url
    assert " " not in url


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        (UPS_NUMBER, UPS_NUMBER),
        ("1z999aa10123456784", UPS_NUMBER),
        ("1Z 999 AA1 0123 4567 84", UPS_NUMBER),
        ("1Z-999-AA1-0123-4567-84", UPS_NUMBER),
        ("  1z 999-aa1 01234567 84  ", UPS_NUMBER),
        ("9400 1000 0000 0000 0000 00", "9400100000000000000000"),
        ("abcd", "ABCD"),
        ("A" * 64, "A" * 64),
        ("12-34", "1234"),
    ],
)
def test_tracking_numbers_lose_spaces_and_dashes_and_are_upper_cased(
    typed: str, normalized: str
) -> None:
    assert normalize_tracking_number(typed) == normalized


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "ABC",
        "A" * 65,
        "1Z" + "9" * 63,
        "----",
        "- - -",
        "1 2 3",
        "AB-C",
        "1Z999AA1_0123",
        "1Z999.AA1",
        "1Z999/AA1",
        "1Z999#AA1",
        "1Z999\tAA1",
        "1Z999\nAA1",
        "ÄBCDE",
        "\uff11\uff12\uff13\uff14\uff15",  # full-width digits
        "1Z999AA1;DROP",
    ],
    ids=repr,
)
def test_too_short_too_long_or_odd_tracking_numbers_are_refused(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_tracking_number(typed)
    assert caught.value.field == "trackingNumber"
    assert caught.value.code == "INVALID_INPUT"


@settings(max_examples=100)
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz- "))
def test_a_normalized_number_is_4_to_64_upper_case_letters_and_digits_or_refused(
    typed: str,
) -> None:
    try:
        normalized = normalize_tracking_number(typed)
    except InvalidInput:
        return
    assert 4 <= len(normalized) <= 64
    assert normalized.isalnum()
    assert normalized == normalized.upper()
    assert normalize_tracking_number(normalized) == normalized
