"""Client addresses for in-process test clients.

Failed sign-ins are counted per client address in the database every test shares; each app
a test builds calls from an address of its own, so one test's failures never spend another's
budget.
"""

from __future__ import annotations

import itertools
import os

_next = itertools.count(1)


def fresh_client() -> tuple[str, int]:
    """A (host, port) no other test client in this run uses."""
    number = next(_next)
    return f"10.{os.getpid() % 250}.{number // 250 % 250}.{number % 250 + 1}", 40000
