"""Worker processes started side by side, watched, CPU-metered and stopped, each logging to its
own file."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from support import BenchError
from support.cpu import process_cpu_seconds


def log_tail(log: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or ``(no output)``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


class WorkerProcesses:
    """Processes running ``command`` side by side: started together and ready once each has
    logged ``ready``, watched, CPU-metered, stopped with SIGTERM, killed after a failure. Each
    writes its output (stdout and stderr) to its own log file in ``logs``."""

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        logs: Path,
        cwd: Path,
        env: dict[str, str] | None,
        ready: str,
        startup_seconds: float,
        stop_seconds: float,
    ) -> None:
        self.command = command
        self.count = count
        self.logs = logs
        self.cwd = cwd
        self.env = env
        self.ready = ready
        self.startup_seconds = startup_seconds
        self.stop_seconds = stop_seconds
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def log_files(self) -> list[Path]:
        return [log for _process, log in self.processes]

    async def start(self) -> None:
        for number in range(self.count):
            self.processes.append(self._spawn(number))
        deadline = time.monotonic() + self.startup_seconds
        while not all(self.ready in log.read_text(errors="replace") for log in self.log_files):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker processes not ready after {self.startup_seconds:.0f} s")
            await asyncio.sleep(0.1)

    def _spawn(self, number: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"worker-{uuid.uuid4().hex[:6]}-{number}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                list(self.command),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return process, log

    def check_alive(self) -> None:
        for process, log in self.processes:
            if process.poll() is not None:
                raise BenchError(f"worker process exited {process.returncode}:\n{log_tail(log)}")

    def cpu_seconds(self) -> float:
        """CPU time the processes have used so far."""
        return sum(process_cpu_seconds(process.pid) for process, _log in self.processes)

    async def stop(self) -> None:
        """SIGTERM each, wait; a process that does not stop or exits non-zero is an error."""
        for process, _log in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, log in self.processes:
            try:
                await asyncio.to_thread(process.wait, self.stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise BenchError(
                    f"worker process did not stop on SIGTERM:\n{log_tail(log)}"
                ) from None
            if process.returncode != 0:
                raise BenchError(f"worker process exited {process.returncode}:\n{log_tail(log)}")

    def kill(self) -> None:
        """Stop whatever still runs (after a failure); only the processes started here."""
        for process, _log in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
