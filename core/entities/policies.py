"""Return policies: one row per version; an RMA keeps the version that decided it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field

from core.entities.base import TenantRow, json_list_field


def default_shipping_refund_reasons() -> list[str]:
    return ["DEFECTIVE", "WRONG_ITEM", "NOT_AS_DESCRIBED"]


def default_resolutions() -> list[str]:
    return ["REFUND", "STORE_CREDIT"]


class ReturnPolicy(TenantRow, table=True):
    __tablename__ = "return_policy"
    __table_args__ = (
        sa.UniqueConstraint("merchant_id", "version"),
        sa.CheckConstraint("return_window_days >= 0", name="window_not_negative"),
        sa.CheckConstraint(
            "restocking_fee_percent BETWEEN 0 AND 100", name="restocking_fee_percent_range"
        ),
    )

    version: int = Field(nullable=False)
    return_window_days: int = Field(default=30, nullable=False)
    warranty_days: int = Field(default=0, nullable=False)
    unopened_only_categories: list[str] = json_list_field()
    final_sale_tags: list[str] = json_list_field()
    restocking_fee_percent: int = Field(default=0, nullable=False)
    shipping_refund_reasons: list[str] = json_list_field(default_shipping_refund_reasons)
    allowed_resolutions: list[str] = json_list_field(default_resolutions)
    store_credit_bonus_percent: int = Field(default=0, nullable=False)
    # A warranty claim (after the window) gets shipping back, or a store-credit bonus, only
    # when the policy says so; whether the restocking fee also comes off store credit.
    warranty_refunds_shipping: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    warranty_credit_bonus: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    restocking_fee_on_store_credit: bool = Field(
        default=True, nullable=False, sa_column_kwargs={"server_default": sa.true()}
    )
    # How much above the policy's price an AGENT may give on their own (in the merchant's
    # minor units, per resolution); beyond it an ADMIN decides. Lowering a price needs no one.
    agent_override_limit_minor: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": "0"}
    )
    # An order paid partly in a way no provider refunds (a gift card kept by the storefront,
    # cash): that share comes back as store credit instead of waiting for staff to refund it.
    non_card_refunds_as_store_credit: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    auto_authorize: bool = Field(default=True, nullable=False)
    auto_authorize_max_risk: int = Field(default=50, nullable=False)
    auto_resolve: bool = Field(default=False, nullable=False)
    authorization_valid_days: int = Field(default=14, nullable=False)
    troubleshooting_required_reasons: list[str] = json_list_field()
    troubleshooting_steps: list[str] = json_list_field()
    special_instructions: str = Field(default="", max_length=2000, nullable=False)
