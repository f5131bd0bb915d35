"""RMA numbers: ``RMA-7K3F-9Q2D``.

Seven random Crockford base32 symbols (35 bits, so numbers cannot be found by counting) and one
check symbol computed with the Luhn mod N algorithm over the same alphabet, which catches every
single mistyped symbol and most swaps of two neighbours. Crockford's alphabet leaves out I, L, O
and U; when reading a number typed by a person, I and L are read as 1 and O as 0.
"""

from __future__ import annotations

import re

from core.errors import InvalidRmaNumber

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
RANDOM_SYMBOLS = 7
RANDOM_BITS = RANDOM_SYMBOLS * 5
PREFIX = "RMA"
_SEPARATORS = re.compile(r"[\s\-_]")


def check_symbol(payload: str) -> str:
    """The Luhn mod 32 check symbol of a string of Crockford symbols."""
    base = len(ALPHABET)
    factor = 2
    total = 0
    for symbol in reversed(payload):
        addend = factor * _VALUE[symbol]
        factor = 1 if factor == 2 else 2
        total += addend // base + addend % base
    return ALPHABET[(base - total % base) % base]


def rma_number_from_bits(random_bits: int) -> str:
    """Build a number from 35 random bits; the caller supplies them (``secrets.randbits``)."""
    if not 0 <= random_bits < 2**RANDOM_BITS:
        raise ValueError("random_bits must fit in 35 bits")
    payload = "".join(
        ALPHABET[(random_bits >> (5 * shift)) & 31] for shift in reversed(range(RANDOM_SYMBOLS))
    )
    symbols = payload + check_symbol(payload)
    return f"{PREFIX}-{symbols[:4]}-{symbols[4:]}"


def parse_rma_number(text: str) -> str:
    """Return the canonical form of a typed RMA number or raise :class:`InvalidRmaNumber`.

    Case, separators and the ``RMA`` prefix are optional; a wrong check symbol is refused.
    """
    compact = _SEPARATORS.sub("", text.strip().upper())
    # Only an 11-symbol input carries the prefix: a bare number may itself begin with "RMA".
    if len(compact) == len(PREFIX) + RANDOM_SYMBOLS + 1 and compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    compact = compact.translate(_READ_AS)
    if len(compact) != RANDOM_SYMBOLS + 1 or any(symbol not in _VALUE for symbol in compact):
        raise InvalidRmaNumber(text)
    payload, check = compact[:-1], compact[-1]
    if check_symbol(payload) != check:
        raise InvalidRmaNumber(text)
    return f"{PREFIX}-{compact[:4]}-{compact[4:]}"


def is_valid_rma_number(text: str) -> bool:
    """Whether :func:`parse_rma_number` accepts ``text``."""
    try:
        parse_rma_number(text)
    except InvalidRmaNumber:
        return False
    return True
