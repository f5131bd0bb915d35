"""What the benchmark scripts share, one module per noun.

- ``cli``: argument types and the exit status of a script.
- ``report``: the report's banner (machine, Python, load), tables, percentiles, progress lines.
- ``rma_command``: the project's ``rma`` command, run as a subprocess.
- ``databases``: throwaway SQLite files and PostgreSQL databases.
- ``cpu``: the CPUs servers and wrk are pinned to, and CPU time accounting.
- ``servers``: uvicorn and ``rma serve`` processes pinned to a CPU, on a free port.
- ``processes``: worker processes started side by side, watched and stopped.
- ``memory``: this process's resident memory and its peak during a run.
- ``wrk``: wrk runs, their parsing, and the table of loaded cases.
- ``seeder``: a database full of returns (a million RMAs), drawn by ``scale_rows`` and written
  with PostgreSQL COPY by ``postgres_copy`` or batched inserts on SQLite; importable as
  ``benchmarks.support.seeder`` too (the tests do).
- ``apps/``: the reference Starlette apps uvicorn serves (``--app-dir``), and
  ``deliveries.lua``: the wrk script that sends signed webhook deliveries.

The scripts in ``benchmarks/`` are run as files (``.venv/bin/python benchmarks/jobs.py``), so
their own folder is first on ``sys.path`` and they import this package as ``support``. That is
also why no script (nor this package) may be named after an installed package: it would stand in
for it.
"""

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent


class BenchError(RuntimeError):
    """Something the benchmark needs failed; the message says what."""
