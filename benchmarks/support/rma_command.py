"""The project's ``rma`` command, run as a subprocess from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from support import PROJECT, BenchError


def rma_command() -> list[str]:
    """The ``rma`` console script next to this interpreter, else the module behind it."""
    script = Path(sys.executable).with_name("rma")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graphql_api.cli"]


def run_rma(arguments: Sequence[str], database_url: str, *, timeout: float) -> str:
    """Run ``rma ARGUMENTS`` against ``database_url`` from the project root; its standard
    output. Fails when it exits non-zero (with its last line of standard error) or outlasts
    ``timeout`` seconds."""
    env = {**os.environ, "RMA_DATABASE_URL": database_url}
    try:
        done = subprocess.run(
            [*rma_command(), *arguments],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"rma {' '.join(arguments)} took over {timeout} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"rma {' '.join(arguments)} exited {done.returncode}: {tail[0]}")
    return done.stdout
