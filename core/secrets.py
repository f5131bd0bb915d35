"""Secrets at rest: platform credentials and webhook secrets, encrypted with MultiFernet.

The plaintext names the merchant and connection it belongs to, and decryption checks them, so
a ciphertext copied into another merchant's row does not decrypt there (Fernet itself has no
associated data). The first key encrypts; every key decrypts, which allows rotation.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from core.errors import DomainError
from core.settings import split_keys


class SecretsUnreadable(DomainError):
    """A stored secret does not decrypt with the configured keys, or belongs to another row."""

    code = "SECRETS_UNREADABLE"


class Vault:
    def __init__(self, keys: SecretStr | str) -> None:
        usable = split_keys(keys)
        if not usable:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in usable])

    def seal(self, merchant_id: uuid.UUID, connection_id: uuid.UUID, value: Any) -> str:
        document = {"m": str(merchant_id), "c": str(connection_id), "v": value}
        return self._fernet.encrypt(json.dumps(document).encode()).decode()

    def open(self, merchant_id: uuid.UUID, connection_id: uuid.UUID, token: str) -> Any:
        try:
            document = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError) as error:
            raise SecretsUnreadable(
                "a stored secret does not decrypt with RMA_ENCRYPTION_KEYS; keep the key it was"
                " sealed with in the list (after the new one) until secrets are re-sealed"
            ) from error
        if document.get("m") != str(merchant_id) or document.get("c") != str(connection_id):
            raise SecretsUnreadable("stored secret belongs to another connection")
        return document["v"]

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first key (after a new key was put in front)."""
        return self._fernet.rotate(token.encode()).decode()
