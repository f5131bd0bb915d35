"""Durable jobs: one table is both the transactional outbox and the queue.

A job is inserted with :func:`core.jobs.queue.enqueue` in the same transaction as the change that
causes it, so a rolled-back change leaves no job and a committed one always does. Workers claim
jobs with leases; see :mod:`core.jobs.worker`.
"""
