"""Opaque global IDs (``node(id:)``) and page cursors."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime

from core.errors import InvalidInput, NotFound
from core.queries import Cursor
from core.usecases.inputs import EARLIEST, LATEST


def to_global_id(type_name: str, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{row_id}".encode()).decode().rstrip("=")


def parse_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """The (type name, uuid) inside a global ID, or ``None`` if it is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def expect_id(global_id: str, type_name: str, *, field: str = "id") -> uuid.UUID:
    """The uuid of a global ID of ``type_name``; any other ID is simply not found."""
    parsed = parse_global_id(global_id)
    if parsed is None or parsed[0] != type_name:
        raise NotFound(type_name, global_id, field=field)
    return parsed[1]


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> Cursor | None:
    if not cursor:
        return None
    try:
        moment, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("cursor time without zone")
        # In UTC, within the times the service stores: year 1 at +14:00 is year 0 in UTC,
        # which no database driver can send.
        parsed = parsed.astimezone(UTC)
        if not EARLIEST <= parsed < LATEST:
            raise ValueError("cursor time out of range")
        return parsed, uuid.UUID(raw)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor() from error


def expect_receipt_id(global_id: str | None) -> uuid.UUID | None:
    """An optional ``receiptId`` argument: the parcel a mutation acts on, when named."""
    return None if global_id is None else expect_id(global_id, "RmaReceipt", field="receiptId")


MAX_PAGE = 100


def checked_first(first: int) -> int:
    """A page size as the schema describes it: 1 to 100, anything else an INVALID_INPUT."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput("first", f"first must be between 1 and {MAX_PAGE}")
    return first


class InvalidCursor(NotFound):
    code = "INVALID_CURSOR"

    def __init__(self) -> None:
        super().__init__("cursor", "given", field="after")
        self.message = "the cursor is not one this API gave out"
