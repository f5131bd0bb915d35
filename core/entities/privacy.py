"""What the service did for privacy requests (a customer's data, asked for by a platform)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Field

from core.entities.base import TenantRow, json_dict_field


class DataExport(TenantRow, table=True):
    """A customer's data, gathered for a data request, for ADMINs to hand over."""

    __tablename__ = "data_export"

    # The platform's id of the request (Shopify's data_request id), shown to staff.
    request_reference: str = Field(default="", max_length=100, nullable=False)
    customer_email: str = Field(default="", max_length=320, nullable=False)
    document: dict[str, Any] = json_dict_field()
