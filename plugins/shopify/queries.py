"""The GraphQL documents the app sends, at the pinned API version (settings.API_VERSION)."""

# Amounts as the customer paid them (the order's presentment currency): refunds go back in
# that currency, and store credit is given in it.
MONEY = "presentmentMoney { amount currencyCode }"


def order_fields(fragment: str, lines: int, payments: int = 10) -> str:
    """The fields of an order the mapping reads, with up to ``lines`` line items and
    ``payments`` transactions and refunds."""
    return f"""
fragment {fragment} on Order {{
  id name email createdAt processedAt updatedAt cancelledAt presentmentCurrencyCode
  customer {{ id email firstName lastName }}
  totalShippingPriceSet {{ {MONEY} }}
  lineItems(first: {lines}) {{
    pageInfo {{ hasNextPage }}
    nodes {{
      id sku title quantity
      originalUnitPriceSet {{ {MONEY} }}
      totalDiscountSet {{ {MONEY} }}
      taxLines {{ priceSet {{ {MONEY} }} }}
      product {{ productType tags }}
    }}
  }}
  fulfillments(first: 5) {{ deliveredAt }}
  transactions(first: {payments}) {{
    id kind status gateway
    amountSet {{ {MONEY} }}
    parentTransaction {{ id }}
  }}
  refunds(first: {payments}) {{ id note totalRefundedSet {{ {MONEY} }} }}
}}
"""


# Shopify charges a connection by its ``first`` times the cost of one node, before it runs
# (then refunds what was not used); a query may cost at most 1,000. An order with 10 lines
# and 5 payments costs about 152 points, so a page holds 6 of them. An order that may have
# more (a page filled its lines or payments to the brim) is read again alone, with 80 lines
# and 20 payments (about 960 points).
LINES_PER_PAGED_ORDER = 10
PAYMENTS_PER_PAGED_ORDER = 5
ORDERS_PER_PAGE = 6
PAGED_ORDER_COST = 152
LINES_PER_ORDER = 80
PAYMENTS_PER_ORDER = 20
ORDER_COST = 960

ORDERS_PAGE = (
    order_fields("PagedOrder", LINES_PER_PAGED_ORDER, PAYMENTS_PER_PAGED_ORDER)
    + """
query OrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...PagedOrder }
  }
}
"""
)

ORDER = (
    order_fields("FullOrder", LINES_PER_ORDER, PAYMENTS_PER_ORDER)
    + """
query Order($id: ID!) { order(id: $id) { ...FullOrder } }
"""
)

ORDER_REFUNDS = f"""
query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id presentmentCurrencyCode
    lineItems(first: 50) {{ nodes {{ id refundableQuantity }} }}
    transactions(first: 100) {{
      id kind status gateway
      amountSet {{ {MONEY} }}
      parentTransaction {{ id }}
    }}
    refunds(first: 100) {{
      id note createdAt
      totalRefundedSet {{ {MONEY} }}
    }}
  }}
}}
"""

REFUND_CREATE = f"""
mutation RefundCreate($input: RefundInput!, $key: String!) {{
  refundCreate(input: $input) @idempotent(key: $key) {{
    refund {{ id note totalRefundedSet {{ {MONEY} }} }}
    userErrors {{ field message }}
  }}
}}
"""

ORDER_INVENTORY_ITEMS = """
query OrderInventoryItems($id: ID!) {
  order(id: $id) {
    id
    lineItems(first: 250) { nodes { id variant { inventoryItem { id } } } }
  }
}
"""

PRIMARY_LOCATION = "query PrimaryLocation { location { id name } }"

INVENTORY_ADJUST = """
mutation Restock($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

WEBHOOK_SUBSCRIBE = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""

SHOP = "query Shop { shop { id name myshopifyDomain currencyCode } }"

ORDER_RETURNS = """
query OrderReturns($id: ID!) {
  order(id: $id) {
    id
    returns(first: 10) {
      nodes {
        id status
        returnLineItems(first: 10) { nodes { ... on ReturnLineItem { returnReasonNote } } }
      }
    }
    fulfillments(first: 10) {
      fulfillmentLineItems(first: 30) { nodes { id quantity lineItem { id } } }
    }
  }
}
"""

RETURN_CREATE = """
mutation ReturnCreate($input: ReturnInput!) {
  returnCreate(returnInput: $input) {
    return { id status }
    userErrors { field message }
  }
}
"""

RETURN_STATUS = "query ReturnStatus($id: ID!) { return(id: $id) { id status } }"

RETURN_CLOSE = """
mutation ReturnClose($id: ID!) {
  returnClose(id: $id) { return { id status } userErrors { field message } }
}
"""

RETURN_CANCEL = """
mutation ReturnCancel($id: ID!) {
  returnCancel(id: $id) { return { id status } userErrors { field message } }
}
"""

STORE_CREDIT = """
mutation Credit($id: ID!, $input: StoreCreditAccountCreditInput!) {
  storeCreditAccountCredit(id: $id, creditInput: $input) {
    storeCreditAccountTransaction { id amount { amount currencyCode } }
    userErrors { field message code }
  }
}
"""

STORE_CREDIT_TRANSACTIONS = """
query CreditHistory($id: ID!) {
  customer(id: $id) {
    storeCreditAccounts(first: 3) {
      nodes {
        transactions(first: 50) {
          nodes {
            __typename
            amount { amount currencyCode }
            createdAt
            ... on StoreCreditAccountCreditTransaction { id }
            ... on StoreCreditAccountDebitTransaction { id }
          }
        }
      }
    }
  }
}
"""

# Draft orders place an exchange's replacement (draftOrderCreate has no idempotency key: the
# draft is tagged with the exchange and looked up by that tag first).
DRAFT_ORDERS_TAGGED = """
query DraftOrdersTagged($query: String!) {
  draftOrders(first: 5, query: $query) {
    nodes { id status order { id } }
  }
}
"""

DRAFT_ORDER_CREATE = """
mutation DraftOrderCreate($input: DraftOrderInput!) {
  draftOrderCreate(input: $input) {
    draftOrder { id status }
    userErrors { field message }
  }
}
"""

DRAFT_ORDER_COMPLETE = """
mutation DraftOrderComplete($id: ID!, $paymentPending: Boolean) {
  draftOrderComplete(id: $id, paymentPending: $paymentPending) {
    draftOrder { id status order { id } }
    userErrors { field message }
  }
}
"""
