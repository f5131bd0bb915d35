"""RMA numbers: ``RMA-XXXX-XXXX``, Crockford base32 with a Luhn mod 32 check symbol."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DomainError, InvalidRmaNumber
from core.rules.numbers import (
    ALPHABET,
    RANDOM_BITS,
    check_symbol,
    is_valid_rma_number,
    parse_rma_number,
    rma_number_from_bits,
)

CANONICAL = re.compile(r"^RMA-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
MAX_BITS = 2**RANDOM_BITS - 1
random_bits = st.integers(min_value=0, max_value=MAX_BITS)


def _symbols(number: str) -> str:
    """The eight symbols of a canonical number, without prefix and dashes."""
    return number[4:8] + number[9:]


def _bits_starting_with(prefix: str) -> int:
    """35 bits whose number's payload begins with the given Crockford symbols."""
    bits = 0
    for position, symbol in enumerate(prefix):
        bits |= ALPHABET.index(symbol) << (5 * (6 - position))
    return bits | 0b10101


def test_the_alphabet_is_crockford_base32_without_i_l_o_u() -> None:
    assert len(ALPHABET) == 32
    assert len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)
    assert RANDOM_BITS == 35


def test_zero_bits_give_a_well_formed_number() -> None:
    assert rma_number_from_bits(0) == "RMA-0000-0000"


def test_a_known_number_keeps_its_check_symbol() -> None:
    # 0b00001_00010_00011_00100_00101_00110_00111: the payload is "1234567".
    bits = int("00001000100001100100001010011000111", 2)
    number = rma_number_from_bits(bits)
    assert number.startswith("RMA-1234-567")
    assert number[-1] == check_symbol("1234567")


def test_the_largest_bits_give_a_well_formed_number() -> None:
    number = rma_number_from_bits(MAX_BITS)
    assert number.startswith("RMA-ZZZZ-ZZZ")
    assert parse_rma_number(number) == number


@settings(max_examples=200)
@given(random_bits)
def test_a_generated_number_is_canonical_and_parses_back_to_itself(bits: int) -> None:
    number = rma_number_from_bits(bits)
    assert CANONICAL.match(number), number
    assert parse_rma_number(number) == number
    assert is_valid_rma_number(number)


@settings(max_examples=100)
@given(random_bits)
def test_lower_case_is_accepted(bits: int) -> None:
    number = rma_number_from_bits(bits)
    assert parse_rma_number(number.lower()) == number


@settings(max_examples=100)
@given(random_bits)
def test_the_prefix_may_be_left_out(bits: int) -> None:
    number = rma_number_from_bits(bits)
    assert parse_rma_number(number[4:]) == number
    assert parse_rma_number(_symbols(number)) == number


@settings(max_examples=100)
@given(random_bits)
def test_the_dashes_may_be_left_out(bits: int) -> None:
    number = rma_number_from_bits(bits)
    assert parse_rma_number(number.replace("-", "")) == number
    assert parse_rma_number(f"  {number.replace('-', ' ')}  ") == number
    assert parse_rma_number(number.replace("-", "_")) == number


def test_a_number_whose_symbols_begin_with_rma_parses_without_its_prefix() -> None:
    number = rma_number_from_bits(_bits_starting_with("RMA5"))
    assert number.startswith("RMA-RMA5-")
    symbols = _symbols(number)
    for typed in (
        number,
        number.lower(),
        f"{symbols[:4]}-{symbols[4:]}",
        symbols,
        symbols.lower(),
        f"RMA{symbols}",
    ):
        assert parse_rma_number(typed) == number, typed


@settings(max_examples=100)
@given(random_bits)
def test_i_and_l_are_read_as_one_and_o_as_zero(bits: int) -> None:
    number = rma_number_from_bits(bits)
    misread = number[:4] + _symbols(number).replace("1", "I").replace("0", "O")
    assert parse_rma_number(misread) == number
    misread = number[:4] + _symbols(number).replace("1", "l").replace("0", "o")
    assert parse_rma_number(misread) == number


def test_a_number_typed_with_o_and_l_instead_of_digits_is_understood() -> None:
    number = rma_number_from_bits(_bits_starting_with("1010"))
    assert number.startswith("RMA-1010-")
    assert parse_rma_number("RMA-LOIO-" + number[-4:]) == number


@settings(max_examples=60, deadline=None)
@given(random_bits)
def test_every_single_mistyped_symbol_is_caught(bits: int) -> None:
    number = rma_number_from_bits(bits)
    symbols = _symbols(number)
    for position, original in enumerate(symbols):
        for replacement in ALPHABET:
            if replacement == original:
                continue
            typo = symbols[:position] + replacement + symbols[position + 1 :]
            with pytest.raises(InvalidRmaNumber):
                parse_rma_number(typo)
            assert not is_valid_rma_number(typo)


def test_every_single_mistyped_symbol_of_a_fixed_number_is_caught() -> None:
    number = rma_number_from_bits(0b10110_01001_11100_00011_10000_01111_00101)
    symbols = _symbols(number)
    refused = 0
    for position in range(len(symbols)):
        for replacement in ALPHABET:
            if replacement == symbols[position]:
                continue
            typo = f"RMA-{symbols[:position]}{replacement}{symbols[position + 1 :]}"
            assert not is_valid_rma_number(typo), typo
            refused += 1
    assert refused == 8 * 31


@settings(max_examples=100)
@given(random_bits)
def test_swapping_two_neighbours_is_caught_unless_their_values_add_up_to_31(bits: int) -> None:
    # Luhn mod N misses only the swap of two symbols whose values add up to N - 1.
    symbols = _symbols(rma_number_from_bits(bits))
    for position in range(len(symbols) - 1):
        first, second = symbols[position], symbols[position + 1]
        if first == second or ALPHABET.index(first) + ALPHABET.index(second) == 31:
            continue
        swapped = symbols[:position] + second + first + symbols[position + 2 :]
        assert not is_valid_rma_number(swapped), swapped


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=MAX_BITS), st.integers(min_value=0, max_value=MAX_BITS))
def test_different_bits_give_different_numbers(first: int, second: int) -> None:
    if first != second:
        assert rma_number_from_bits(first) != rma_number_from_bits(second)
    else:
        assert rma_number_from_bits(first) == rma_number_from_bits(second)


def test_a_thousand_consecutive_bit_values_give_a_thousand_distinct_numbers() -> None:
    numbers = {rma_number_from_bits(bits) for bits in range(1000)}
    assert len(numbers) == 1000


def test_numbers_carry_all_35_bits() -> None:
    # Every bit flips the number: nothing is lost between the bits and the symbols.
    base = rma_number_from_bits(0)
    flipped = {rma_number_from_bits(1 << bit) for bit in range(RANDOM_BITS)}
    assert base not in flipped
    assert len(flipped) == RANDOM_BITS


@pytest.mark.parametrize("bits", [-1, 2**RANDOM_BITS, 2**RANDOM_BITS + 1, 2**64, -(2**35)], ids=str)
def test_bits_outside_35_bits_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="35 bits"):
        rma_number_from_bits(bits)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "RMA",
        "RMA-",
        "RMA--",
        "RMA-0000",
        "RMA-0000-000",
        "0000000",
        "RMA-0000-00000",
        "000000000",
        "RMA-0000-0000-0",
        "RMARMA-0000-0000",
        "RMA-U000-0000",
        "RMA-0000-000U",
        "RMA-00#0-0000",
        "RMA-0000-00.0",
        "RMA+0000+0000",
        "RMA/0000/0000",
        "RMA-0000-00*0",
        "RMA-ÄÖÜ0-0000",
        "RMA-0000-0000\x00",
        "XYZ-0000-0000",
    ],
)
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidRmaNumber) as caught:
        parse_rma_number(text)
    assert caught.value.code == "INVALID_RMA_NUMBER"
    assert caught.value.field == "number"
    assert repr(text) in caught.value.message
    assert isinstance(caught.value, DomainError)
    assert not is_valid_rma_number(text)


def test_a_valid_number_with_a_wrong_check_symbol_is_refused() -> None:
    number = rma_number_from_bits(123_456_789)
    wrong = ALPHABET[(ALPHABET.index(number[-1]) + 1) % 32]
    with pytest.raises(InvalidRmaNumber):
        parse_rma_number(number[:-1] + wrong)


@settings(max_examples=100)
@given(st.text(max_size=20))
def test_parsing_arbitrary_text_either_gives_a_canonical_number_or_refuses_it(text: str) -> None:
    try:
        number = parse_rma_number(text)
    except InvalidRmaNumber:
        assert not is_valid_rma_number(text)
    else:
        assert CANONICAL.match(number)
        assert parse_rma_number(number) == number


def test_the_check_symbol_makes_the_luhn_sum_a_multiple_of_32() -> None:
    for payload in ("0000000", "1234567", "ZZZZZZZ", "7K3F9Q2"):
        total = 0
        for index, symbol in enumerate(reversed(payload + check_symbol(payload))):
            addend = ALPHABET.index(symbol) * (2 if index % 2 else 1)
            total += addend // 32 + addend % 32
        assert total % 32 == 0, payload
