"""Root mutations: The return policy."""

from __future__ import annotations

from typing import Any

import strawberry

from core.errors import DomainError
from core.usecases import (
    policies,
)
from graphql_api.context import Info
from graphql_api.errors import user_error
from graphql_api.mutations.running import run_use_case
from graphql_api.permissions import Admin
from graphql_api.types.mutation_io import (
    ReturnPolicyInput,
    ReturnPolicyPayload,
)
from graphql_api.types.policy import ReturnPolicy


@strawberry.type
class PolicyMutations:
    @strawberry.mutation(
        permission_classes=[Admin],
        description="Writes a new policy version. userErrors: INVALID_INPUT with the field "
        "(a window outside 1..365 days, a warranty shorter than the window, a percentage "
        "outside 0..100, an unknown resolution), CONFLICT (changed at the same time).",
    )
    async def update_return_policy(
        self, info: Info, input: ReturnPolicyInput
    ) -> ReturnPolicyPayload:
        # Enum lists arrive as enums; the policy stores their string values.
        values: dict[str, Any] = {
            name: [getattr(item, "value", item) for item in value]
            if isinstance(value, list)
            else value
            for name, value in vars(input).items()
        }
        changes = policies.PolicyChanges(**values)
        try:
            policy = await run_use_case(
                info,
                lambda session: policies.update_return_policy(
                    session, info.context.merchant_id, changes, now=info.context.clock.now()
                ),
            )
        except DomainError as error:
            return ReturnPolicyPayload(return_policy=None, user_errors=[user_error(error)])
        return ReturnPolicyPayload(return_policy=ReturnPolicy.from_row(policy), user_errors=[])
