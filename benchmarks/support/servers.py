"""Server processes under test: uvicorn or ``rma serve`` on a free port of 127.0.0.1, pinned to
``SERVER_CPU``, up once ``/healthz`` answers, stopped on the way out."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from support import PROJECT, BenchError
from support.cpu import SERVER_CPU, process_cpu_seconds
from support.processes import log_tail
from support.rma_command import rma_command

HOST = "127.0.0.1"
SERVER_STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A server process pinned to ``SERVER_CPU``, its output in a log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log, lines)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def rma_serve_command(port: int, *flags: str) -> list[str]:
    """``rma serve`` on ``HOST`` and ``port``, with ``flags`` after."""
    return [*rma_command(), "serve", "--host", HOST, "--port", str(port), *flags]


def uvicorn_command(app: str, port: int, *, app_dir: Path, factory: bool = False) -> list[str]:
    """uvicorn serving ``app`` from ``app_dir`` the way the API is served: uvloop, httptools,
    one worker, access log off."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
        "--app-dir",
        str(app_dir),
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def pinned_server(
    name: str, command: Callable[[int], list[str]], env: dict[str, str], logs: Path
) -> Iterator[Server]:
    """Start ``command`` on a free port pinned to ``SERVER_CPU``, its output in
    ``logs/NAME.log``; up once ``/healthz`` answers 200, stopped on the way out."""
    port = free_port()
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command(port)],
            env=env,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Server(name, port, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        running.stop()


def wait_until_up(running: Server) -> None:
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise BenchError(
                f"{running.name} server exited {running.process.returncode}:\n" + running.log_tail()
            )
        try:
            if httpx.get(f"{running.base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(
        f"{running.name} server not up after {SERVER_STARTUP_SECONDS} s:\n{running.log_tail()}"
    )
