"""Checking what callers pass in: ids, text, times, quantities. A bad value is a typed
InvalidInput naming its field; nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from core.errors import InvalidInput, NotFound

E = TypeVar("E", bound=StrEnum)

MAX_TEXT = 2000


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """Accept a UUID or its text; anything else is an unknown id, not a crash."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as error:
        raise NotFound(field, value, field=field) from error


def clean_text(value: str | None, field: str, *, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidInput(field, f"{field} is longer than {limit} characters")
    if "\x00" in text:
        raise InvalidInput(field, f"{field} contains a NUL character")
    return text


# The oldest and newest times the service stores; anything outside is a typo, not a date.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def require_time(value: datetime, field: str) -> datetime:
    """A timezone-aware time within the years the service stores, converted to UTC."""
    if value.tzinfo is None:
        raise InvalidInput(field, f"{field} needs a timezone (e.g. 2026-11-01T12:00:00Z)")
    try:
        moment = value.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput(field, f"{field} is out of range") from error
    if not EARLIEST <= moment < LATEST:
        raise InvalidInput(field, f"{field} is out of range")
    return moment


def checked_now(now: datetime) -> datetime:
    """The caller's "now" (read once from its clock), refused when it has no timezone."""
    if now.tzinfo is None:
        raise InvalidInput("now", "times must be timezone-aware")
    return now


def require_unique(values: Sequence[object], field: str) -> None:
    if len(set(values)) != len(values):
        raise InvalidInput(field, f"{field} lists the same line twice")


def require_positive(quantity: int, field: str) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidInput(field, "quantity must be a whole number above zero")


def parse_enum(enum: type[E], value: object, field: str, message: str | None = None) -> E:
    """The member of ``enum`` that ``value`` names, in any letter case.

    Anything else is an ``InvalidInput`` for ``field``: ``message`` when given, otherwise one
    that lists the accepted values.
    """
    text = str(value)
    for candidate in (text, text.upper(), text.lower()):
        try:
            return enum(candidate)
        except ValueError:
            continue
    known = ", ".join(member.value for member in enum)
    raise InvalidInput(field, message or f"{field} is one of {known}")
