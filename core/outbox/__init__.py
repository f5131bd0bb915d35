"""The transactional outbox: one table is both the outbox and the job queue.

A job is inserted with :func:`core.outbox.queue.enqueue` in the same transaction as the change
that causes it, so a rolled-back change leaves no job and a committed one always does. This
package sits below the use cases (they enqueue); the worker and the job handlers in
:mod:`core.jobs` sit above them.
"""
