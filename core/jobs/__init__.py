"""Running jobs: the worker (claims with leases, retries, dead letters, periodic runs) and the
core's job handlers, which call the use cases. Jobs are queued through :mod:`core.outbox`."""
