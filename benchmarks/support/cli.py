"""The command line of a benchmark script: argument types and the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from support import BenchError


def positive(value: str) -> int:
    """An argparse type: an integer of 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def exit_status(bench: Callable[[], object]) -> int:
    """Run ``bench``; the exit status: 0, or 1 after printing the ``BenchError`` that stopped
    it."""
    try:
        bench()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
