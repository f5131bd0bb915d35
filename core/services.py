"""What job handlers receive besides their job: one typed object, wired by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from core.plugins import Registry
from core.secrets import Vault
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    vault: Vault
    registry: Registry
