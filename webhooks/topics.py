"""Topic handlers, registered per platform in one table.

A handler gets the database, the stored delivery, its parsed JSON body and the worker's "now".
Plugins add their platforms' topics through the ``rma.plugins`` entry point; unknown topics are
acknowledged and marked ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from core.database import Database
from core.entities import WebhookDelivery
from core.enums import Platform
from webhooks.stripe_topics import STRIPE_TOPICS

TopicHandler = Callable[[Database, WebhookDelivery, Any, datetime], Awaitable[str | None]]
TopicTable = Mapping[Platform, Mapping[str, TopicHandler]]


def builtin_topics() -> dict[Platform, dict[str, TopicHandler]]:
    """The topics this package handles itself; the app merges the plugins' in."""
    return {
        Platform.STRIPE: dict(STRIPE_TOPICS),
        Platform.SHOPIFY: {},
        Platform.WOOCOMMERCE: {},
    }
