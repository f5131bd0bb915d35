"""Root mutations, one module per domain: input -> use case -> payload.

Expected failures become ``userErrors``; the parts are merged into one ``Mutation`` type, in the
order the schema lists them.
"""

from strawberry.tools import merge_types

from graphql_api.mutations.arrivals import ArrivalMutations
from graphql_api.mutations.connections import ConnectionMutations
from graphql_api.mutations.exchanges import ExchangeMutations
from graphql_api.mutations.orders import OrderMutations
from graphql_api.mutations.policy import PolicyMutations
from graphql_api.mutations.returns import ReturnMutations
from graphql_api.mutations.sessions import SessionMutations
from graphql_api.mutations.settlement import SettlementMutations
from graphql_api.mutations.store_credit import StoreCreditMutations

Mutation = merge_types(
    "Mutation",
    (
        SessionMutations,
        ReturnMutations,
        ArrivalMutations,
        SettlementMutations,
        ExchangeMutations,
        StoreCreditMutations,
        PolicyMutations,
        OrderMutations,
        ConnectionMutations,
    ),
)

__all__ = ["Mutation"]
