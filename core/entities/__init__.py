"""The tables of the service, one SQLModel class each."""

from core.entities.base import metadata
from core.entities.inbox import Job, WebhookDelivery
from core.entities.limits import LoginFailure
from core.entities.merchants import ApiKey, Connection, Merchant, PendingInstall
from core.entities.orders import Customer, Order, OrderLine, OrderPayment
from core.entities.policies import ReturnPolicy
from core.entities.privacy import DataExport
from core.entities.resolutions import Exchange, Resolution, StoreCreditEntry
from core.entities.rmas import (
    Feedback,
    Inspection,
    Receipt,
    ReceiptLine,
    Rma,
    RmaEvent,
    RmaLine,
    Shipment,
    UnmatchedArrival,
)

__all__ = [
    "ApiKey",
    "Connection",
    "Customer",
    "DataExport",
    "Exchange",
    "Feedback",
    "Inspection",
    "Job",
    "LoginFailure",
    "Merchant",
    "Order",
    "OrderLine",
    "OrderPayment",
    "PendingInstall",
    "Receipt",
    "ReceiptLine",
    "Resolution",
    "ReturnPolicy",
    "Rma",
    "RmaEvent",
    "RmaLine",
    "Shipment",
    "StoreCreditEntry",
    "UnmatchedArrival",
    "WebhookDelivery",
    "metadata",
]
