"""The CPUs a wrk benchmark runs on, and the CPU time processes and CPUs spend.

Under wrk, the server under test runs on one CPU (``SERVER_CPU``) and wrk on another
(``LOAD_CPU``); whatever else takes time on them is counted, so a noisy run shows.
"""

from __future__ import annotations

import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from support import BenchError

SERVER_CPU = "1"
LOAD_CPU = "0"
# Other processes taking more than this share of a benchmark CPU make requests/s unreliable.
NOISY_PERCENT = 10.0


def check_cpus() -> None:
    """Fail unless this process may use ``SERVER_CPU`` and ``LOAD_CPU`` and taskset is there."""
    allowed = os.sched_getaffinity(0)
    if not {int(SERVER_CPU), int(LOAD_CPU)} <= allowed:
        raise BenchError(f"needs CPUs {LOAD_CPU} and {SERVER_CPU}; allowed: {sorted(allowed)}")
    if shutil.which("taskset") is None:
        raise BenchError("taskset (util-linux) is missing")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds() -> dict[int, float]:
    """Busy (non-idle, non-iowait) seconds of every CPU since boot, from /proc/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
            busy[int(name[3:])] = (user + nice + system + irq + softirq + steal) / ticks
    return busy


def children_cpu_seconds() -> float:
    """CPU time of the waited-for child processes so far (wrk among them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent during one measurement: the server, wrk, and everything else."""

    elapsed: float
    server: float
    wrk: float
    others_on_server_cpu: float
    others_on_load_cpu: float

    def percent(self, seconds: float) -> float:
        """``seconds`` as a percentage of one CPU over the measurement."""
        return 100.0 * seconds / self.elapsed

    @property
    def noisy(self) -> bool:
        """Whether other processes took over ``NOISY_PERCENT`` of a benchmark CPU."""
        others = max(self.percent(self.others_on_server_cpu), self.percent(self.others_on_load_cpu))
        return others > NOISY_PERCENT
