"""Money as integer minor units with an ISO-4217 currency.

Every amount in the service is an ``int`` of the currency's minor unit (cents for USD, yen for
JPY, fils for KWD). Platforms send decimal strings; :func:`parse_decimal` is the one place that
turns them into minor units, knowing each currency's exponent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.core import UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, list_currencies

from core.errors import InvalidInput

# Amounts are 32-bit integers of minor units in storage and in GraphQL: $21 million, or
# ¥2.1 billion. Larger amounts are refused rather than wrapped.
MAX_MINOR = 2**31 - 1


@lru_cache(maxsize=512)
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def normalize_currency(code: str) -> str:
    """Return the upper-case ISO-4217 code, or raise :class:`InvalidInput` for an unknown one."""
    normalized = code.strip().upper()
    if normalized not in _known_currencies():
        raise InvalidInput("currency", f"unknown currency code {code!r}")
    return normalized


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(normalize_currency(currency)))


def parse_decimal(amount: str | int | Decimal, currency: str) -> int:
    """Convert a platform's decimal amount ("19.99") into minor units of ``currency``.

    More digits than the currency has are rounded half-up; platforms only send them for
    computed tax shares, where that is how they round too.
    """
    exponent = currency_exponent(currency)
    try:
        value = Decimal(str(amount))
    except InvalidOperation as error:
        raise InvalidInput("amount", f"{amount!r} is not a decimal amount") from error
    if not value.is_finite():
        raise InvalidInput("amount", f"{amount!r} is not a decimal amount")
    try:
        minor = (value * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except ArithmeticError as error:  # InvalidOperation, Overflow: far beyond any real amount
        raise InvalidInput("amount", f"{amount!r} is out of range") from error
    return int(minor)


def to_decimal_string(amount_minor: int, currency: str) -> str:
    """The inverse of :func:`parse_decimal`: minor units back to a plain decimal string."""
    exponent = currency_exponent(currency)
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency. Adding two currencies is an error."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("Money.amount_minor must be an int of minor units")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput("currency", f"cannot combine {self.currency} with {other.currency}")

    def formatted(self, locale: str = "en_US") -> str:
        """Human display, e.g. ``$19.99``, ``¥1,200``, ``KWD 1.250``."""
        value = Decimal(self.amount_minor).scaleb(-currency_exponent(self.currency))
        try:
            return str(format_currency(value, self.currency, locale=locale))
        except UnknownLocaleError:
            return str(format_currency(value, self.currency, locale="en_US"))
