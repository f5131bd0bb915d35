"""The operator commands: connecting platforms, the inbox and the job queue, through real `rma`."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.test_cli import fresh_copy, merchant_template, migrated_template, rma, row_counts

__all__ = ["merchant_template", "migrated_template"]


@pytest.fixture
def shop(merchant_template: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    template, merchant_id = merchant_template
    return fresh_copy(template, tmp_path / "cli.db"), merchant_id


def test_connect_stripe_prints_the_webhook_path_and_seals_the_secrets(
    shop: tuple[Path, str],
) -> None:
    database, merchant = shop
    run = rma(
        database,
        "connect",
        "stripe",
        "--merchant",
        merchant,
        "--secret-key",
        "sk_test_sentinel_123",
        "--webhook-secret",
        "whsec_sentinel_456",
    )
    assert run.returncode == 0, run
    platform, connection_id = run.last_line.removeprefix("/webhooks/").split("/")
    assert platform == "stripe"
    uuid.UUID(connection_id)
    raw = b"".join(path.read_bytes() for path in database.parent.glob("cli.db*"))
    assert b"sk_test_sentinel_123" not in raw
    assert b"whsec_sentinel_456" not in raw


def test_connect_refuses_bad_input_on_one_line_and_changes_nothing(
    shop: tuple[Path, str],
) -> None:
    database, merchant = shop
    before = row_counts(database)
    cases = [
        ("shopify", "--merchant", merchant, "--shop", "example.com", "--access-token", "t",
         "--webhook-secret", "secret-123"),
        ("woocommerce", "--merchant", merchant, "--store-url", "ftp://x", "--consumer-key", "ck",
         "--consumer-secret", "cs", "--webhook-secret", "secret-123"),
        ("stripe", "--merchant", str(uuid.uuid4()), "--secret-key", "sk", "--webhook-secret",
         "secret-123"),
        ("stripe", "--merchant", merchant, "--secret-key", "sk", "--webhook-secret", "short"),
    ]  # fmt: skip
    for case in cases:
        run = rma(database, "connect", *case)
        assert run.returncode == 1, run
        assert len(run.error_lines) == 1, run
        assert run.error_lines[0].startswith("error: "), run
        assert "Traceback" not in run.stderr
    assert row_counts(database) == before


def _insert_delivery(database: Path, merchant: str, connection: str) -> str:
    delivery_id = uuid.uuid4()
    with closing(sqlite3.connect(database)) as db, db:
        db.execute(
            "INSERT INTO webhook_delivery (id, merchant_id, connection_id, platform, topic,"
            " dedupe_key, body, headers, state, received_at) VALUES (?, ?, ?, 'stripe',"
            " 'refund.updated', 'event:evt_1', ?, '{}', 'FAILED', '2026-11-01 12:00:00')",
            (
                delivery_id.hex,
                uuid.UUID(merchant).hex,
                uuid.UUID(connection).hex,
                json.dumps({"id": "evt_1"}).encode(),
            ),
        )
    return str(delivery_id)


def test_webhooks_list_and_replay_queue_the_delivery_again(shop: tuple[Path, str]) -> None:
    database, merchant = shop
    connected = rma(
        database,
        "connect",
        "stripe",
        "--merchant",
        merchant,
        "--secret-key",
        "sk_test_1",
        "--webhook-secret",
        "whsec_12345678",
    )
    connection = connected.last_line.rsplit("/", 1)[1]
    delivery = _insert_delivery(database, merchant, connection)

    listed = rma(database, "webhooks", "list")
    assert listed.returncode == 0, listed
    [line] = listed.stdout.strip().splitlines()
    assert line.split()[:2] == [delivery, "stripe"]
    assert "event:evt_1" in line
    assert line.rstrip().endswith("FAILED")

    replayed = rma(database, "webhooks", "replay", delivery)
    assert replayed.returncode == 0, replayed
    jobs = rma(database, "jobs", "list", "--state", "QUEUED")
    assert "webhooks.process_delivery" in jobs.stdout
    assert "RECEIVED" in rma(database, "webhooks", "list").stdout

    unknown = rma(database, "webhooks", "replay", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert unknown.error_lines[0].startswith("error: NOT_FOUND")


def test_jobs_retry_brings_a_dead_job_back_and_refuses_a_done_one(
    shop: tuple[Path, str],
) -> None:
    database, _merchant = shop
    dead, done = uuid.uuid4(), uuid.uuid4()
    with closing(sqlite3.connect(database)) as db, db:
        for job_id, state in ((dead, "DEAD"), (done, "DONE")):
            db.execute(
                "INSERT INTO job (id, kind, payload, state, run_at, attempts, max_attempts,"
                " created_at, last_error) VALUES (?, 'rma.expire_authorizations', '{}', ?,"
                " '2026-11-01 12:00:00', 10, 10, '2026-11-01 12:00:00', 'boom')",
                (job_id.hex, state),
            )
    listed = rma(database, "jobs", "list", "--state", "dead")
    assert str(dead) in listed.stdout
    assert "error='boom'" in listed.stdout
    retried = rma(database, "jobs", "retry", str(dead))
    assert retried.returncode == 0, retried
    with closing(sqlite3.connect(database)) as db:
        state, attempts = db.execute(
            "SELECT state, attempts FROM job WHERE id = ?", (dead.hex,)
        ).fetchone()
    assert (state, attempts) == ("QUEUED", 0)
    refused = rma(database, "jobs", "retry", str(done))
    assert refused.returncode == 1
    assert refused.error_lines[0].startswith("error: CONFLICT")


def test_connect_with_keys_that_cannot_open_the_stored_secrets_fails_on_one_line(
    shop: tuple[Path, str],
) -> None:
    database, merchant = shop
    stripe = ("connect", "stripe", "--merchant", merchant, "--secret-key", "sk_test_first_1234")
    first = rma(database, *stripe, "--webhook-secret", "whsec_first_1234")
    assert first.returncode == 0, first
    before = row_counts(database)
    other_key = base64.urlsafe_b64encode(b"k" * 32).decode()

    again = rma(
        database, *stripe, "--webhook-secret", "whsec_second_12", RMA_ENCRYPTION_KEYS=other_key
    )

    assert again.returncode == 1, again
    assert len(again.error_lines) == 1, again
    assert "RMA_ENCRYPTION_KEYS" in again.error_lines[0]
    assert "Traceback" not in again.stderr
    for secret in (other_key, "sk_test_first_1234", "whsec_second_12"):
        assert secret not in again.stderr + again.stdout
    assert row_counts(database) == before


@pytest.mark.parametrize("keys", ["not-a-fernet-key-but-secret", "  ,  "])
def test_malformed_encryption_keys_are_refused_on_one_line(
    shop: tuple[Path, str], keys: str
) -> None:
    database, _merchant = shop
    run = rma(database, "jobs", "list", RMA_ENCRYPTION_KEYS=keys)
    assert run.returncode == 1, run
    assert len(run.error_lines) == 1, run
    assert run.error_lines[0].startswith("error: configuration: RMA_ENCRYPTION_KEYS"), run
    assert "Traceback" not in run.stderr
    assert "not-a-fernet-key" not in run.stderr


def test_connections_are_listed_disabled_and_enabled_again(shop: tuple[Path, str]) -> None:
    database, merchant = shop
    connected = rma(
        database, "connect", "stripe", "--merchant", merchant, "--secret-key",
        "sk_test_listed_1234", "--webhook-secret", "whsec_listed_1234",
    )  # fmt: skip
    assert connected.returncode == 0, connected
    connection_id = connected.last_line.rsplit("/", 1)[1]

    listed = rma(database, "connections", "list", "--merchant", merchant)
    disabled = rma(database, "connections", "disable", connection_id)
    listed_disabled = rma(database, "connections", "list")
    enabled = rma(database, "connections", "enable", connection_id)
    unknown = rma(database, "connections", "disable", str(uuid.uuid4()))

    assert listed.returncode == 0, listed
    [line] = listed.stdout.splitlines()
    assert line.startswith(connection_id) and line.endswith("enabled")
    assert "sk_test_listed" not in listed.stdout + listed_disabled.stdout
    assert disabled.returncode == 0, disabled
    assert "disabled since" in listed_disabled.stdout
    assert enabled.returncode == 0, enabled
    assert unknown.returncode == 1, unknown
    assert len(unknown.error_lines) == 1
    assert "does not exist" in unknown.error_lines[0]
