"""What a query asks for below a field, and values handed over without a task when already loaded.

graphql-core completes an awaitable field value with a coroutine of its own, run as a task when
several are gathered: for a page of 50 RMAs with their lines and orders, a hundred tasks. A root
field that knows from the selection what its nodes will need loads it in one batch first; the
nested fields then find their values already in the loaders and return them at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


def selected_names(selections: Iterable[Selection], path: tuple[str, ...]) -> set[str]:
    """The field names selected at ``path`` below ``selections``, through any fragments."""
    found: set[str] = set()
    for field in _fields(selections):
        if not path:
            found.add(field.name)
        elif field.name == path[0]:
            found |= selected_names(field.selections, path[1:])
    return found


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)
        else:
            yield selection


def now_or_later(loader: DataLoader[K, V], key: K, then: Callable[[V], R]) -> Any:
    """``then`` of the loader's value for ``key``: at once when the loader already holds it
    (primed, or loaded by an earlier batch), else an awaitable graphql-core waits for.

    Typed ``Any`` because a resolver may return either; graphql-core handles both.
    """
    held = loader.cache_map.get(key)
    if held is not None and held.done() and not held.cancelled() and held.exception() is None:
        return then(held.result())
    return _later(loader.load(key), then)


async def _later(value: Awaitable[V], then: Callable[[V], R]) -> R:
    return then(await value)
