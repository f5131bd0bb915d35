"""The ``rma`` console script, run as a real process on a fresh SQLite file.

Each command runs with no stdin, ``RMA_ENV=development`` (unless a test says otherwise) and
``RMA_DATABASE_URL`` pointing into the test's temporary directory. Fresh databases are copies of
one file that ``rma db upgrade`` migrated at the start of the module, which keeps the module fast.
Independent commands (the help pages, the bad inputs) run side by side.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from core.clock import SYSTEM_CLOCK

RMA = Path(sys.executable).parent / "rma"
TIMEOUT = 120
KEY_PREFIX = "rma_sk_"
EVERY_STATUS = {
    "REQUESTED",
    "NEEDS_REVIEW",
    "AUTHORIZED",
    "IN_TRANSIT",
    "RECEIVED",
    "INSPECTED",
    "RESOLVING",
    "RESOLVED",
    "CLOSED",
    "REJECTED",
    "CANCELLED",
    "EXPIRED",
}


@dataclass(frozen=True, slots=True)
class Run:
    """What one ``rma`` process did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1].strip() if lines else ""

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:
        return (
            f"rma {' '.join(self.args)} exited {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


@dataclass(frozen=True, slots=True)
class Command:
    """An ``rma`` invocation against one database file, with extra environment."""

    args: tuple[str, ...]
    database: Path
    env: tuple[tuple[str, str], ...] = ()

    def start(self) -> subprocess.Popen[str]:
        environment = {name: value for name, value in os.environ.items() if name[:4] != "RMA_"}
        environment["RMA_DATABASE_URL"] = f"sqlite:///{self.database}"
        environment["RMA_ENV"] = "development"
        environment.update(self.env)
        return subprocess.Popen(
            [str(RMA), *self.args],
            cwd=self.database.parent,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def finish(command: Command, process: subprocess.Popen[str]) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return Run(command.args, process.returncode, stdout, stderr)


def run_all(commands: Sequence[Command]) -> list[Run]:
    """Run independent commands side by side; results in the order given."""
    processes = [command.start() for command in commands]
    return [finish(command, process) for command, process in zip(commands, processes, strict=True)]


def rma(database: Path, *args: str, **env: str) -> Run:
    command = Command(tuple(args), database, tuple(env.items()))
    return finish(command, command.start())


def query(database: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(sql, params).fetchall()


def tables(database: Path) -> set[str]:
    rows = query(database, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(name) for (name,) in rows if not str(name).startswith("sqlite_")}


def row_counts(database: Path) -> dict[str, int]:
    """Rows per table: what "changes nothing" is checked against."""
    with closing(sqlite3.connect(database)) as connection:
        return {
            # The names come from sqlite_master, not from input.
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
            for name in sorted(tables(database))
        }


def fresh_copy(template: Path, target: Path) -> Path:
    """A migrated, empty database file of the test's own."""
    shutil.copyfile(template, target)
    for suffix in ("-wal", "-shm"):
        companion = template.with_name(template.name + suffix)
        if companion.exists():
            shutil.copyfile(companion, target.with_name(target.name + suffix))
    return target


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("template") / "template.db"
    result = rma(database, "db", "upgrade")
    assert result.returncode == 0, result
    return database


@pytest.fixture
def database(migrated_template: Path, tmp_path: Path) -> Path:
    """A fresh, migrated, empty SQLite file at ``tmp_path/cli.db``."""
    return fresh_copy(migrated_template, tmp_path / "cli.db")


@pytest.fixture(scope="module")
def merchant_template(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A migrated database holding one merchant (created with the CLI), and that merchant's id."""
    database = fresh_copy(migrated_template, tmp_path_factory.mktemp("merchant") / "cli.db")
    result = rma(database, "merchant", "create", "--name", "Template Traders")
    assert result.returncode == 0, result
    return database, result.last_line


# --- help ----------------------------------------------------------------------------------------


def every_command() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, read from the app itself so none is forgotten."""
    import typer

    from graphql_api.cli import app

    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


HELP_COMMANDS = every_command()


@pytest.fixture(scope="module")
def help_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Run]:
    # --help must not touch the database, so the URL points at a file that does not exist.
    database = tmp_path_factory.mktemp("help") / "never-created.db"
    commands = [Command((*command, "--help"), database) for command in HELP_COMMANDS]
    pages = dict(zip(HELP_COMMANDS, run_all(commands), strict=True))
    assert not database.exists(), "--help opened the database"
    return pages


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(("rma", *c)))
def test_help_works_on_every_command(
    help_pages: dict[tuple[str, ...], Run], command: tuple[str, ...]
) -> None:
    page = help_pages[command]
    assert page.returncode == 0, page
    assert " ".join(("Usage: rma", *command)) in page.stdout, page
    assert "Traceback" not in page.stdout + page.stderr, page


# --- schema, merchants, keys ---------------------------------------------------------------------


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"

    result = rma(database, "db", "upgrade")

    assert result.returncode == 0, result
    assert "database at revision head" in result.stdout
    assert {"alembic_version", "merchant", "api_key", "order", "rma", "return_policy"} <= tables(
        database
    )
    assert len(query(database, "SELECT version_num FROM alembic_version")) == 1
    assert query(database, "SELECT count(*) FROM merchant") == [(0,)]


def test_merchant_create_prints_its_id_on_the_last_line(database: Path) -> None:
    result = rma(database, "merchant", "create", "--name", "X")

    assert result.returncode == 0, result
    merchant_id = uuid.UUID(result.last_line)
    assert result.last_line == str(merchant_id)
    assert query(database, "SELECT id, name FROM merchant") == [(merchant_id.hex, "X")]
    # Every merchant starts with version 1 of a default return policy.
    assert query(
        database, "SELECT version FROM return_policy WHERE merchant_id = ?", merchant_id.hex
    ) == [(1,)]


def test_apikey_create_stores_only_the_hash(database: Path) -> None:
    merchant_id = rma(database, "merchant", "create", "--name", "Keyholder").last_line

    result = rma(
        database, "apikey", "create", "--merchant", merchant_id, "--role", "ADMIN", "--label", "ci"
    )

    assert result.returncode == 0, result
    key = result.last_line
    assert key.startswith(KEY_PREFIX)
    assert len(key) > len(KEY_PREFIX) + 40  # 256 random bits
    rows = query(database, "SELECT * FROM api_key")
    assert len(rows) == 1
    [(merchant, role, key_hash)] = query(
        database, "SELECT merchant_id, role, key_hash FROM api_key"
    )
    assert merchant == uuid.UUID(merchant_id).hex
    assert role == "ADMIN"
    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    # Neither the key nor its secret part (beyond the short displayed prefix) is stored anywhere.
    secret_part = key[len(KEY_PREFIX) + 4 :]
    for value in rows[0]:
        assert key not in str(value)
        assert secret_part not in str(value)
    for file in database.parent.glob("cli.db*"):
        assert secret_part.encode() not in file.read_bytes(), file.name


def test_apikey_create_accepts_the_role_in_any_case(database: Path) -> None:
    merchant_id = rma(database, "merchant", "create", "--name", "Lowercase").last_line

    result = rma(database, "apikey", "create", "--merchant", merchant_id, "--role", "readonly")

    assert result.returncode == 0, result
    assert result.last_line.startswith(KEY_PREFIX)
    assert query(database, "SELECT role FROM api_key") == [("READONLY",)]


def test_apikey_list_and_revoke(database: Path) -> None:
    merchant_id = rma(database, "merchant", "create", "--name", "Revoker").last_line
    other_id = rma(database, "merchant", "create", "--name", "Bystander").last_line
    key = rma(database, "apikey", "create", "--merchant", merchant_id, "--role", "AGENT").last_line
    [(key_id,)] = query(database, "SELECT id FROM api_key")
    key_id = str(uuid.UUID(str(key_id)))

    listed = rma(database, "apikey", "list", "--merchant", merchant_id)
    assert listed.returncode == 0, listed
    assert listed.last_line.split("\t")[:4] == [key_id, key[:11] + "...", "AGENT", "live"]
    assert key[11:] not in listed.stdout

    stranger = rma(database, "apikey", "revoke", key_id, "--merchant", other_id)
    assert stranger.returncode == 1 and "NOT_FOUND" in stranger.stderr, stranger
    assert query(database, "SELECT revoked_at FROM api_key") == [(None,)]

    revoked = rma(database, "apikey", "revoke", key_id, "--merchant", merchant_id)
    assert revoked.returncode == 0, revoked
    assert (
        rma(database, "apikey", "list", "--merchant", merchant_id).last_line.split("\t")[3]
        != "live"
    )
    assert query(database, "SELECT revoked_at FROM api_key")[0][0] is not None


# --- bad input -----------------------------------------------------------------------------------

# Each case: the arguments ("{merchant}" stands for an existing merchant's id).
BAD_INPUT = {
    "unknown merchant": (
        "apikey", "create", "--merchant", "6f1c2d4e-0000-4000-8000-000000000000", "--role", "ADMIN"
    ),
    "merchant that is not a uuid": ("apikey", "create", "--merchant", "acme", "--role", "ADMIN"),
    "merchant that looks like console markup": (
        "apikey", "create", "--merchant", "[/acme]", "--role", "ADMIN",
    ),
    "role GOD": ("apikey", "create", "--merchant", "{merchant}", "--role", "GOD"),
    "empty merchant name": ("merchant", "create", "--name", ""),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refusal:
    run: Run
    before: dict[str, int]
    after: dict[str, int]


@pytest.fixture(scope="module")
def refusals(
    merchant_template: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Refusal]:
    """Every bad input, each run on its own copy of a database with one merchant."""
    template, merchant_id = merchant_template
    commands = []
    for args in BAD_INPUT.values():
        copy = fresh_copy(template, tmp_path_factory.mktemp("bad") / "cli.db")
        commands.append(Command(tuple(arg.format(merchant=merchant_id) for arg in args), copy))
    before = [row_counts(command.database) for command in commands]
    runs = run_all(commands)
    return {
        case: Refusal(run, counts, row_counts(command.database))
        for case, run, counts, command in zip(BAD_INPUT, runs, before, commands, strict=True)
    }


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_fails_without_a_traceback_and_changes_nothing(
    refusals: dict[str, Refusal], case: str
) -> None:
    refusal = refusals[case]
    assert refusal.run.returncode != 0, refusal.run
    assert "Traceback" not in refusal.run.stderr + refusal.run.stdout, refusal.run
    assert KEY_PREFIX not in refusal.run.stdout, refusal.run
    assert refusal.after == refusal.before


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_reported_on_one_readable_line(
    refusals: dict[str, Refusal], case: str
) -> None:
    run = refusals[case].run
    assert len(run.error_lines) == 1, run
    assert run.error_lines[0].startswith("error: "), run


def test_unknown_merchant_is_reported_as_not_found(refusals: dict[str, Refusal]) -> None:
    for case in ("unknown merchant", "merchant that is not a uuid"):
        run = refusals[case].run
        assert run.returncode == 1, run
        assert "NOT_FOUND" in run.stderr, run


def test_unknown_role_is_named_in_the_error(refusals: dict[str, Refusal]) -> None:
    run = refusals["role GOD"].run
    assert "GOD" in run.stderr, run
    assert "ADMIN, AGENT or READONLY" in run.stderr, run


def test_merchant_names_are_printed_as_given(database: Path) -> None:
    """Console markup in a name is text, not a style (and never a crash after the commit)."""
    result = rma(database, "merchant", "create", "--name", "[/b] Brackets & Co")
    assert "Traceback" not in result.stderr, result
    assert result.returncode == 0, result
    assert "[/b] Brackets & Co" in result.stdout


# --- production ----------------------------------------------------------------------------------


def test_production_refuses_to_run_with_development_secrets(database: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not-yet.db"
    before = row_counts(database)
    upgrade, create = run_all(
        [
            Command(("db", "upgrade"), missing, (("RMA_ENV", "production"),)),
            Command(("merchant", "create", "--name", "P"), database, (("RMA_ENV", "production"),)),
        ]
    )

    for run in (upgrade, create):
        assert run.returncode != 0, run
        assert "Traceback" not in run.stderr, run
        assert run.error_lines[0].startswith("error: configuration:"), run
        assert "production" in run.stderr, run
        assert "RMA_SECRET_KEY" in run.stderr, run
        assert "RMA_ENCRYPTION_KEYS" in run.stderr, run
    assert not missing.exists()
    assert row_counts(database) == before


def test_production_refusal_does_not_echo_the_secret(database: Path) -> None:
    result = rma(
        database, "merchant", "create", "--name", "P",
        RMA_ENV="production", RMA_SECRET_KEY="pa55[word]-short",
    )  # fmt: skip
    assert result.returncode != 0, result
    assert "RMA_SECRET_KEY" in result.stderr, result
    assert "pa55" not in result.stderr, result


# --- demo ----------------------------------------------------------------------------------------

DEMO_SIZE = ("--orders", "200", "--customers", "50", "--rmas", "28")


@pytest.fixture(scope="module")
def demo(migrated_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """One demo run at the small size, shared by the demo tests (which only read)."""
    database = fresh_copy(migrated_template, tmp_path_factory.mktemp("demo") / "cli.db")
    return database, rma(database, "demo", *DEMO_SIZE)


def test_demo_seeds_an_empty_database_and_prints_an_admin_key(demo: tuple[Path, Run]) -> None:
    database, result = demo

    assert result.returncode == 0, result
    key = result.last_line
    assert key.startswith(KEY_PREFIX)
    [(merchant_id,)] = query(database, "SELECT id FROM merchant")
    assert query(
        database, "SELECT merchant_id, role FROM api_key WHERE key_hash = ?",
        hashlib.sha256(key.encode()).hexdigest(),
    ) == [(merchant_id, "ADMIN")]  # fmt: skip
    assert query(database, 'SELECT count(*) FROM "order"') == [(200,)]
    assert query(database, "SELECT count(*) FROM customer")[0][0] <= 50


def test_demo_has_rmas_in_every_status(demo: tuple[Path, Run]) -> None:
    database, result = demo
    assert result.returncode == 0, result

    statuses = {status for (status,) in query(database, "SELECT DISTINCT status FROM rma")}

    assert statuses == EVERY_STATUS, f"missing: {sorted(EVERY_STATUS - statuses)}"


def test_demo_dates_follow_the_day_it_runs(demo: tuple[Path, Run]) -> None:
    """On any day: orders inside and outside the window, warranty claims, live authorizations."""
    database, result = demo
    assert result.returncode == 0, result
    now = SYSTEM_CLOCK.now()
    window_opens = (now - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")

    def count(sql: str, *params: object) -> int:
        [(found,)] = query(database, sql, *params)
        assert isinstance(found, int)
        return found

    inside = 'SELECT count(*) FROM "order" WHERE coalesce(delivered_at, placed_at) >= ?'
    outside = 'SELECT count(*) FROM "order" WHERE coalesce(delivered_at, placed_at) < ?'
    assert count(inside, window_opens) > 0
    assert count(outside, window_opens) > 0
    warranty = query(
        database, "SELECT l.eligibility_codes FROM rma_line l JOIN rma r ON r.id = l.rma_id"
        " WHERE r.status = 'NEEDS_REVIEW'"
    )  # fmt: skip
    assert any("WARRANTY_ONLY" in str(codes) for (codes,) in warranty), warranty
    live = "SELECT count(*) FROM rma WHERE status = 'AUTHORIZED' AND authorization_expires_at > ?"
    assert count(live, now.strftime("%Y-%m-%d %H:%M:%S")) > 0
    assert count("SELECT count(*) FROM rma WHERE status = 'EXPIRED'") > 0


def test_demo_has_an_unauthorized_return(demo: tuple[Path, Run]) -> None:
    database, result = demo
    assert result.returncode == 0, result

    [(unauthorized,)] = query(database, "SELECT count(*) FROM rma WHERE unauthorized")

    assert unauthorized >= 1


def test_demo_refuses_a_database_that_has_data(demo: tuple[Path, Run]) -> None:
    database, _ = demo
    before = row_counts(database)

    again = rma(database, "demo", *DEMO_SIZE)

    assert again.returncode != 0, again
    assert "Traceback" not in again.stderr, again
    assert len(again.error_lines) == 1, again
    assert again.error_lines[0].startswith("error: CONFLICT:"), again
    assert KEY_PREFIX not in again.stdout
    assert row_counts(database) == before


def test_demo_if_empty_leaves_existing_data_alone(demo: tuple[Path, Run]) -> None:
    database, _ = demo
    before = row_counts(database)

    again = rma(database, "demo", *DEMO_SIZE, "--if-empty")

    assert again.returncode == 0, again
    assert "already present" in again.stdout
    assert KEY_PREFIX not in again.stdout
    assert row_counts(database) == before
