"""wrk: running it against a server on ``LOAD_CPU``, reading what it reports, and the CPU the
server and everything else spent meanwhile."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from support import BenchError
from support.cpu import (
    LOAD_CPU,
    SERVER_CPU,
    CpuUse,
    children_cpu_seconds,
    cpu_busy_seconds,
)
from support.servers import Server

WARMUP_SECONDS = 1
WRK_TIMEOUT = "10s"
TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}

T = TypeVar("T")


def wrk_version(wrk: str) -> str:
    """The first line ``wrk --version`` prints, or ``?``."""
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    return (version.strip().splitlines() or ["?"])[0]


def wrk_run_line(connections: int, duration: int) -> str:
    """The banner's ``run:`` line of a wrk benchmark."""
    return (
        f"run:     servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU} (1 thread, "
        f"{connections} connections), {WARMUP_SECONDS} s warm-up then {duration} s per case"
    )


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    seconds: int,
    connections: int,
    script_arguments: Sequence[str] = (),
    what: str | None = None,
) -> str:
    """wrk on ``LOAD_CPU`` (1 thread, latency percentiles) against ``url`` with a Lua script
    and its arguments; its standard output. ``what`` names the target in errors (``url``)."""
    command = [
        "taskset",
        "-c",
        LOAD_CPU,
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "--script",
        str(script),
        url,
        *(["--", *script_arguments] if script_arguments else []),
    ]
    target = what or url
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {target} did not finish") from None
    if done.returncode != 0 or "PANIC" in done.stderr:
        raise BenchError(f"wrk on {target} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done.stdout


def under_load(server: Server, load: Callable[[], T]) -> tuple[T, CpuUse]:
    """Run ``load`` (wrk on ``LOAD_CPU`` against ``server``); what it returned and the CPU time
    spent meanwhile. Fails when the server did not survive it."""
    server_before, wrk_before = server.cpu_seconds(), children_cpu_seconds()
    busy_before, started = cpu_busy_seconds(), time.perf_counter()
    outcome = load()
    elapsed = time.perf_counter() - started
    busy_after = cpu_busy_seconds()
    server_seconds = server.cpu_seconds() - server_before
    wrk_seconds = children_cpu_seconds() - wrk_before
    server_cpu, load_cpu = int(SERVER_CPU), int(LOAD_CPU)
    used = CpuUse(
        elapsed=elapsed,
        server=server_seconds,
        wrk=wrk_seconds,
        others_on_server_cpu=max(
            0.0, busy_after[server_cpu] - busy_before[server_cpu] - server_seconds
        ),
        others_on_load_cpu=max(0.0, busy_after[load_cpu] - busy_before[load_cpu] - wrk_seconds),
    )
    if server.process.poll() is not None:
        raise BenchError(f"{server.name} server died under load:\n{server.log_tail()}")
    return outcome, used


def parse_time_ms(text: str) -> float:
    """A wrk duration (``1.36ms``, ``2.00s``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"cannot read wrk time {text!r}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


def wrk_match(output: str, pattern: str) -> re.Match[str]:
    """The first match of ``pattern`` (multiline) in wrk's output; failing loudly without one."""
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
    return match


@dataclass(frozen=True)
class WrkRun:
    """What wrk reported for one run."""

    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]


def parse_wrk(output: str) -> WrkRun:
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkRun(
        requests=int(wrk_match(output, r"^\s*(\d+) requests in ").group(1)),
        per_second=float(wrk_match(output, r"^Requests/sec:\s*([\d.]+)").group(1)),
        p50_ms=parse_time_ms(wrk_match(output, r"^\s*50%\s+(\S+)").group(1)),
        p99_ms=parse_time_ms(wrk_match(output, r"^\s*99%\s+(\S+)").group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
            )
            if errors
            else {}
        ),
    )


@dataclass(frozen=True)
class Measurement:
    """One case loaded with wrk: its key (``a``) and label, what wrk saw, the CPU it cost."""

    key: str
    label: str
    run: WrkRun
    cpu: CpuUse

    @property
    def server_cpu_per_request(self) -> float:
        return self.cpu.server / max(self.run.requests, 1)
