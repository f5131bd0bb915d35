"""Store credit kept in the store, as WooCommerce has no store credit of its own: a single-use
fixed-cart coupon restricted to the customer's e-mail, for the credit's amount.

The coupon's code is derived from the credit's key (WooCommerce has no idempotency): every
attempt looks the code up first, so a retry after a lost answer finds the coupon instead of
making a second one. Its use is read back by the periodic sync into the ledger's history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from core.money import parse_decimal, to_decimal_string
from core.ports.commerce import CreditSpent, PlatformCredit, PlatformRejected
from plugins.woocommerce.client import WooCommerceClient, error_message
from plugins.woocommerce.mapping import JSON, gmt

CODE_PREFIX = "rma-credit-"
KEY_META = "_rma_credit_key"
CURRENCY_META = "_rma_credit_currency"


def coupon_code(idempotency_key: str) -> str:
    """Long enough not to be guessed, though only the customer's e-mail can use it anyway."""
    return CODE_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


async def issue_coupon(client: WooCommerceClient, credit: PlatformCredit) -> str:
    """The coupon's code (made once); the customer spends it at the store's checkout."""
    code = coupon_code(credit.idempotency_key)
    existing = await client.get("coupons", {"code": code})
    if existing.status_code != 200:
        raise PlatformRejected(f"the store refused to list coupons: {error_message(existing)}")
    if existing.json():
        return code
    answer = await client.post(
        "coupons",
        {
            "code": code,
            "discount_type": "fixed_cart",
            "amount": to_decimal_string(credit.amount_minor, credit.currency),
            "description": credit.note[:200],
            "individual_use": False,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "email_restrictions": [credit.customer_reference],
            "meta_data": [
                {"key": KEY_META, "value": credit.idempotency_key},
                {"key": CURRENCY_META, "value": credit.currency},
            ],
        },
    )
    if answer.status_code not in (200, 201):
        raise PlatformRejected(f"the store refused the coupon: {error_message(answer)}")
    return code


async def coupons_spent(client: WooCommerceClient, email: str) -> Sequence[CreditSpent]:
    """Our coupons for ``email`` that were used, each once."""
    wanted = email.strip().lower()
    spent: list[CreditSpent] = []
    page = 1
    while True:
        response = await client.get(
            "coupons", {"search": CODE_PREFIX, "per_page": 100, "page": page}
        )
        if response.status_code != 200:
            raise PlatformRejected(f"the store refused to list coupons: {error_message(response)}")
        for coupon in response.json():
            used = _spent(coupon, wanted)
            if used is not None:
                spent.append(used)
        if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
            return spent
        page += 1


def _spent(coupon: JSON, email: str) -> CreditSpent | None:
    restricted = [str(e).lower() for e in coupon.get("email_restrictions") or []]
    meta = {str(m.get("key")): m.get("value") for m in coupon.get("meta_data") or []}
    currency = meta.get(CURRENCY_META)
    if email not in restricted or not int(coupon.get("usage_count") or 0) or not currency:
        return None
    at = gmt(coupon.get("date_modified_gmt"))
    if at is None:
        return None
    return CreditSpent(
        reference=f"{coupon['code']}:used",
        amount_minor=parse_decimal(str(coupon.get("amount") or "0"), str(currency)),
        currency=str(currency),
        at=at,
    )
