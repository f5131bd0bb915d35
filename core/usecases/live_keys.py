"""Staff API keys remembered per process, so that signing in costs no query.

A key is remembered only under the generation of ``core.key_changes`` seen before it was read,
and forgotten as soon as that generation moves: a key revoked in any process stops working at
once (on PostgreSQL, once the notification arrives, within milliseconds of the commit). Unknown
keys are never remembered, so a new key works at once too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.database import Database
from core.enums import ApiKeyRole
from core.usecases.merchants import API_KEY_PREFIX, find_api_key, hash_api_key

# Far more keys than any deployment has; a bound so that the memory cannot grow without end.
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a live key lets its holder do."""

    api_key_id: uuid.UUID
    merchant_id: uuid.UUID
    role: ApiKeyRole


class LiveKeys:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._remembered: dict[str, KeyGrant] = {}
        self._generation: int | None = None

    async def find(self, plaintext: str) -> KeyGrant | None:
        """The grant of the live key ``plaintext``, or ``None``."""
        if not plaintext.startswith(API_KEY_PREFIX):
            return None
        digest = hash_api_key(plaintext)
        before = self._current_generation()
        if before is not None:
            grant = self._remembered.get(digest)
            if grant is not None:
                return grant
        async with self.database.read_session() as session:
            api_key = await find_api_key(session, plaintext)
        if api_key is None:
            return None
        grant = KeyGrant(api_key.id, api_key.merchant_id, api_key.role)
        # Remember it only if nothing changed while it was read: a revocation committed in
        # between must not be papered over by what was read before it.
        if before is not None and self._current_generation() == before:
            if len(self._remembered) >= MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[digest] = grant
        return grant

    def _current_generation(self) -> int | None:
        generation = self.database.key_changes().generation()
        if generation != self._generation:
            self._remembered.clear()
            self._generation = generation
        return generation
