"""Money as integer minor units: parsing platform decimals, printing them back, adding safely."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DomainError, InvalidInput
from core.money import (
    Money,
    currency_exponent,
    normalize_currency,
    parse_decimal,
    to_decimal_string,
)

# Realistic amounts: anything a 64-bit column can hold, in either sign.
amounts = st.integers(min_value=-(2**63), max_value=2**63 - 1)
currencies = st.sampled_from(["USD", "EUR", "GBP", "JPY", "KWD", "BHD", "CHF", "CLP"])


# --- currencies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("USD", "USD"), ("usd", "USD"), ("Eur", "EUR"), ("  jpy ", "JPY"), ("kwd", "KWD")],
)
def test_currency_codes_are_upper_cased_and_trimmed(typed: str, expected: str) -> None:
    assert normalize_currency(typed) == expected


@pytest.mark.parametrize("code", ["", " ", "US", "USDD", "ZZZ", "dollars", "$", "U$D", "€"])
def test_an_unknown_currency_is_refused(code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_currency(code)
    assert caught.value.field == "currency"
    assert caught.value.code == "INVALID_INPUT"
    assert isinstance(caught.value, DomainError)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("usd", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3)],
)
def test_each_currency_knows_its_minor_unit(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


def test_the_exponent_of_an_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidInput):
        currency_exponent("ZZZ")


# --- parse_decimal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("19.9", "USD", 1990),
        ("19", "USD", 1900),
        ("0.01", "USD", 1),
        ("0", "USD", 0),
        ("0.00", "USD", 0),
        ("-19.99", "USD", -1999),
        ("1200", "JPY", 1200),
        ("1.250", "KWD", 1250),
        ("1.25", "KWD", 1250),
        ("0.001", "KWD", 1),
        ("19.99", "usd", 1999),
        ("92233720368547758.07", "USD", 2**63 - 1),
        (" 19.99 ", "USD", 1999),
    ],
)
def test_platform_decimal_strings_become_minor_units(
    amount: str, currency: str, minor: int
) -> None:
    assert parse_decimal(amount, currency) == minor


def test_integers_and_decimals_are_accepted_as_well_as_strings() -> None:
    assert parse_decimal(5, "USD") == 500
    assert parse_decimal(1200, "JPY") == 1200
    assert parse_decimal(Decimal("19.99"), "USD") == 1999
    assert parse_decimal(Decimal("1.250"), "KWD") == 1250


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("0.005", "USD", 1),
        ("0.0049", "USD", 0),
        ("0.004", "USD", 0),
        ("19.995", "USD", 2000),
        ("19.994", "USD", 1999),
        ("0.015", "USD", 2),
        ("0.025", "USD", 3),
        ("-0.005", "USD", -1),
        ("-0.004", "USD", 0),
        ("0.5", "JPY", 1),
        ("1.5", "JPY", 2),
        ("2.5", "JPY", 3),
        ("1.49", "JPY", 1),
        ("1.2505", "KWD", 1251),
        ("1.2504", "KWD", 1250),
    ],
)
def test_extra_digits_are_rounded_half_up(amount: str, currency: str, minor: int) -> None:
    assert parse_decimal(amount, currency) == minor


@pytest.mark.parametrize(
    "amount",
    [
        "",
        " ",
        "abc",
        "1,00",
        "1.2.3",
        "$19.99",
        "19.99 USD",
        "NaN",
        "nan",
        "sNaN",
        "inf",
        "Infinity",
        "-Infinity",
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        None,
        True,
    ],
    ids=repr,
)
def test_garbage_nan_and_infinity_are_refused(amount: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_decimal(amount, "USD")  # type: ignore[arg-type]
    assert caught.value.field == "amount"


@pytest.mark.parametrize("amount", ["1e30", "1" * 40, "-1e30", "1e999999999", "9" * 100 + ".5"])
def test_an_absurdly_large_amount_is_refused_as_input_not_a_crash(amount: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_decimal(amount, "USD")
    assert caught.value.field == "amount"


def test_a_tiny_exponent_rounds_to_zero() -> None:
    assert parse_decimal("1e-999999999", "USD") == 0


def test_parsing_an_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_decimal("1.00", "ZZZ")
    assert caught.value.field == "currency"


# --- to_decimal_string -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1999, "USD", "19.99"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (-5, "USD", "-0.05"),
        (-1999, "USD", "-19.99"),
        (100000, "USD", "1000.00"),
        (1200, "JPY", "1200"),
        (0, "JPY", "0"),
        (1250, "KWD", "1.250"),
        (1, "KWD", "0.001"),
        (0, "KWD", "0.000"),
        (1999, "usd", "19.99"),
    ],
)
def test_minor_units_print_as_plain_decimals(minor: int, currency: str, text: str) -> None:
    assert to_decimal_string(minor, currency) == text


@settings(max_examples=150)
@given(amounts, currencies)
def test_printing_then_parsing_gives_the_same_minor_units(minor: int, currency: str) -> None:
    assert parse_decimal(to_decimal_string(minor, currency), currency) == minor


@settings(max_examples=100)
@given(amounts, currencies)
def test_printed_amounts_have_exactly_the_currencys_digits(minor: int, currency: str) -> None:
    text = to_decimal_string(minor, currency)
    exponent = currency_exponent(currency)
    if exponent == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == exponent
    assert "E" not in text.upper()


@settings(max_examples=100)
@given(
    st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)
)
def test_a_two_digit_decimal_survives_parsing_and_printing(value: Decimal) -> None:
    text = f"{value:.2f}"
    assert to_decimal_string(parse_decimal(text, "USD"), "USD") == text.replace("-0.00", "0.00")


# --- Money -----------------------------------------------------------------------------------


def test_amounts_in_the_same_currency_add_and_subtract() -> None:
    assert Money(1999, "USD") + Money(1, "USD") == Money(2000, "USD")
    assert Money(1999, "USD") - Money(2000, "USD") == Money(-1, "USD")
    assert Money.zero("JPY") + Money(1200, "JPY") == Money(1200, "JPY")


@settings(max_examples=100)
@given(amounts, amounts, currencies)
def test_adding_then_subtracting_gives_back_the_first_amount(a: int, b: int, currency: str) -> None:
    first, second = Money(a, currency), Money(b, currency)
    assert (first + second).amount_minor == a + b
    assert (first + second) - second == first


def test_zero_is_zero_in_the_currency() -> None:
    assert Money.zero("KWD") == Money(0, "KWD")


@pytest.mark.parametrize("operation", ["add", "sub"])
def test_amounts_in_different_currencies_cannot_be_combined(operation: str) -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(InvalidInput) as caught:
        _ = usd + eur if operation == "add" else usd - eur
    assert caught.value.field == "currency"
    assert "USD" in caught.value.message
    assert "EUR" in caught.value.message


@pytest.mark.parametrize("amount", [19.99, 1.0, Decimal("19.99"), "1999", True, None], ids=repr)
def test_an_amount_that_is_not_an_int_of_minor_units_is_a_programming_error(
    amount: object,
) -> None:
    with pytest.raises(TypeError, match="minor units"):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_money_is_immutable() -> None:
    money = Money(100, "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount_minor = 200  # type: ignore[misc]


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1999, "USD"), "$19.99"),
        (Money(5, "USD"), "$0.05"),
        (Money(0, "USD"), "$0.00"),
        (Money(123456, "USD"), "$1,234.56"),
        (Money(-1999, "USD"), "-$19.99"),
        (Money(1200, "JPY"), "¥1,200"),
        (Money(1, "JPY"), "¥1"),
        (Money(1250, "KWD"), "KWD1.250"),
        (Money(1999, "EUR"), "€19.99"),
    ],
)
def test_amounts_are_displayed_with_symbol_and_the_currencys_digits(
    money: Money, text: str
) -> None:
    assert money.formatted() == text


def test_display_follows_the_locale() -> None:
    assert Money(123456, "EUR").formatted("de_DE") == "1.234,56\xa0€"


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert Money(1999, "USD").formatted("xx_YY") == "$19.99"
