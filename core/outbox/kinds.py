"""Names of the jobs the core enqueues (the handlers live with their modules)."""

EXECUTE_REFUND = "payments.execute_refund"
REFRESH_REFUND = "payments.refresh_refund"
APPLY_STORE_CREDIT = "payments.store_credit"
RECONCILE_PAYMENTS = "payments.reconcile"
AUTO_RESOLVE = "rma.auto_resolve"
EXPIRE_AUTHORIZATIONS = "rma.expire_authorizations"
PROCESS_DELIVERY = "webhooks.process_delivery"
