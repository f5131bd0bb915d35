"""What every mutation does around its use case: one session, wake the worker, map errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from core import entities
from core.errors import DomainError, InvalidInput
from core.usecases import (
    resolutions,
)
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.ids import expect_id
from graphql_api.types.mutation_io import (
    ResolveRmaPayload,
    RmaPayload,
)
from graphql_api.types.returns import Resolution, Rma

T = TypeVar("T")
MAX_TEXT = 2000


async def run_use_case(info: Info, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with info.context.database.session() as session:
        result = await work(session)
    # A write may have queued jobs: let the in-process worker look now, not at its next poll.
    if info.context.on_write is not None:
        info.context.on_write()
    return result


def check_text(**fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None and len(value) > MAX_TEXT:
            raise InvalidInput(name, f"{name} is longer than {MAX_TEXT} characters")


async def rma_payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[entities.Rma]]
) -> RmaPayload:
    try:
        result = await run_use_case(info, work)
    except DomainError as error:
        return RmaPayload(rma=None, user_errors=[user_error(error)])
    return RmaPayload(rma=Rma.from_row(result), user_errors=[])


async def resolution_payload(
    info: Info, work: Callable[[AsyncSession], Awaitable[resolutions.ChosenResolution]]
) -> ResolveRmaPayload:
    try:
        chosen = await run_use_case(info, work)
    except DomainError as error:
        return ResolveRmaPayload(rma=None, resolution=None, user_errors=[user_error(error)])
    return ResolveRmaPayload(
        rma=Rma.from_row(chosen.rma),
        resolution=Resolution.from_row(chosen.resolution),
        user_errors=[],
    )


def rma_line_id(global_id: str, index: int) -> uuid.UUID:
    return expect_id(global_id, "RmaLine", field=f"lines[{index}].rmaLineId")
