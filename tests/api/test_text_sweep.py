"""A sweep of every text argument: too long for any column, or holding NUL, in each root
operation's real arguments, one at a time, on SQLite as on PostgreSQL. Each answer is a
readable refusal (or a success where the text is allowed), never a 5xx or an unexpected error.

Found by it: a 2,000-character reason made a timeline message longer than its column, which
PostgreSQL refused with a 500 while SQLite stored it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from core.database import Database
from tests.api.conftest import Api, gid
from tests.api.test_permissions import mutation_calls, root_queries, shop_with_stages

LONG = "x" * 5000
BAD_TEXTS = {"too long": LONG, "NUL": "a\x00b"}


def text_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where ``value`` (GraphQL variables) holds text."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from text_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_paths(item, (*path, index))


def with_text(variables: dict[str, Any], path: tuple[Any, ...], text: str) -> dict[str, Any]:
    changed = copy.deepcopy(variables)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    return changed


async def test_every_text_argument_is_checked_before_the_database_sees_it(
    api: Api, db: Database
) -> None:
    shop, stages = await shop_with_stages(db)
    order = stages.spare
    rma = stages.rmas["inspected"]
    operations = {
        **root_queries(
            gid("Order", order.id), gid("Rma", rma.id), gid("Customer", order.customer_id)
        ),
        **mutation_calls(stages),
    }
    tried = 0
    for name, (document, variables) in operations.items():
        for path in text_paths(variables):
            for label, text in BAD_TEXTS.items():
                tried += 1
                response = await api.post(document, with_text(variables, path, text), shop.admin)
                where = (name, path, label)
                assert response.status_code < 500, (where, response.text[:300])
                if response.status_code != 200:
                    continue  # refused before GraphQL (NUL in the body): a readable 4xx
                payload = response.json()
                codes = [
                    (error.get("extensions") or {}).get("code")
                    for error in payload.get("errors") or []
                ]
                assert "INTERNAL" not in codes, (where, payload)
                assert "Unexpected error" not in json.dumps(payload), (where, payload)
    assert tried > 60  # the sweep reached the operations' text
