"""Named points where tests make a worker die, to prove that no step depends on finishing.

``RMA_CRASH_AT=<name>`` in a worker's environment ends the process there (as SIGKILL would);
inside one process, :func:`arm` makes the point raise :class:`Crash`, a ``BaseException`` that
no handler catches, so the job is left exactly as a dead worker leaves it. Unarmed, a point is a
dictionary lookup.
"""

from __future__ import annotations

import os

_armed: dict[str, int] = {}


class Crash(BaseException):
    """A simulated sudden death of the worker at a failpoint."""


def arm(name: str, times: int = 1) -> None:
    _armed[name] = times


def disarm() -> None:
    _armed.clear()


def reached(name: str) -> None:
    if os.environ.get("RMA_CRASH_AT") == name:
        os._exit(137)
    remaining = _armed.get(name, 0)
    if remaining:
        _armed[name] = remaining - 1
        raise Crash(name)
