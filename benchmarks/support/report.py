"""The report a benchmark prints: its banner (the machine it ran on), tables, percentiles, the
table of the cases loaded with wrk, and progress lines on standard error."""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Sequence

import structlog

from support.cpu import LOAD_CPU, SERVER_CPU
from support.wrk import Measurement, wrk_version


def progress(message: str) -> None:
    """A progress line on standard error, after what the report printed so far."""
    sys.stdout.flush()
    print(f"... {message}", file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """Keep the project's info lines out of the report; warnings still show."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def print_banner(title: str, *lines: str, wrk: str | None = None, load: bool = True) -> None:
    """The report's head: ``title``, the machine and Python, wrk's version (given its path), the
    load average (unless ``load`` is false), then the script's own ``lines`` and a blank line."""
    print(title)
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}"
    )
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    if wrk is not None:
        print(f"wrk:     {wrk_version(wrk)}")
    if load:
        averages = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"load:    {averages} (1, 5, 15 min) at the start")
    for line in lines:
        print(line)
    print()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> None:
    """Print rows under a header: the first ``left`` columns left-aligned, the others
    right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        cells = [line[i].ljust(widths[i]) for i in range(left)]
        cells += [line[i].rjust(widths[i]) for i in range(left, len(header))]
        print("  ".join(cells))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank ``fraction`` percentile of ``values`` (0.5 for the median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def print_load_table(rate_header: str, results: Sequence[Measurement]) -> None:
    """The wrk cases' table (``rate_header`` names the requests/s column), then the socket
    errors of any case that had some."""
    table(
        (
            "case",
            rate_header,
            "p50 ms",
            "p99 ms",
            "requests",
            "non-2xx",
            "server CPU ms/req",
            "server CPU",
            "wrk CPU",
            f"others CPU{SERVER_CPU}",
            f"others CPU{LOAD_CPU}",
        ),
        [
            (
                f"({r.key}) {r.label}",
                f"{r.run.per_second:.1f}",
                f"{r.run.p50_ms:.2f}",
                f"{r.run.p99_ms:.2f}",
                str(r.run.requests),
                str(r.run.non_2xx_3xx),
                f"{1000.0 * r.cpu.server / max(r.run.requests, 1):.2f}",
                f"{r.cpu.percent(r.cpu.server):.0f}%",
                f"{r.cpu.percent(r.cpu.wrk):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_server_cpu):.0f}%",
                f"{r.cpu.percent(r.cpu.others_on_load_cpu):.0f}%",
            )
            for r in results
        ],
    )
    for r in results:
        if any(r.run.socket_errors.values()):
            detail = ", ".join(f"{name} {count}" for name, count in r.run.socket_errors.items())
            print(f"socket errors in ({r.key}): {detail}")


def noisy_cases(results: Sequence[Measurement]) -> list[str]:
    """``(key)`` of each case during which other processes crowded a benchmark CPU."""
    return [f"({r.key})" for r in results if r.cpu.noisy]
