"""Platform webhooks: verify the raw body, store the delivery once, process it as a job."""
