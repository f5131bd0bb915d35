"""Use cases: each is one async function that performs one change in one transaction.

They take an :class:`~sqlmodel.ext.asyncio.session.AsyncSession` that has no transaction open,
the merchant the caller acts for, and the actor to record in the timeline. They raise a
:class:`core.errors.DomainError` for every expected failure, and then nothing is written.
"""
