"""The seeder's PostgreSQL half: batches drawn in worker processes as COPY text, sent through one
connection in one transaction.

Drawing the rows is Python work (about 0.1 ms an RMA); the server's work is parsing and
indexing. With the batches drawn by a pool of processes, already encoded in COPY's text format
(cheap to pass between processes, nothing left to encode here), the draw uses every CPU and this
process only streams bytes.
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa

from .scale_rows import COLUMNS, TABLES, Batch, Plan, RowSource

FOREIGN_KEYS = """
SELECT conname AS name, conrelid::regclass::text AS table_name,
       pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE contype = 'f' AND conrelid::regclass::text = ANY(
    SELECT quote_ident(name) FROM unnest($1::text[]) AS name
)
ORDER BY conname
"""

# The plain indexes of the tables (not those behind a primary key or a unique constraint).
PLAIN_INDEXES = """
SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition
FROM pg_index
WHERE indrelid::regclass::text = ANY(SELECT quote_ident(name) FROM unnest($1::text[]) AS name)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
ORDER BY 1
"""

# One table's rows of a batch in COPY text format, and how many rows that is.
Encoded = dict[str, tuple[bytes, int]]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    return value.translate(_ESCAPES)


def _json(value: Any) -> str:
    return "[]" if isinstance(value, list) and not value else _text(json.dumps(value))


_FORMATS: dict[type, Callable[[Any], str]] = {
    str: _text,
    int: str,
    bool: lambda value: "t" if value else "f",
    uuid.UUID: str,
    datetime: datetime.isoformat,
    dict: _json,
    list: _json,
}


def copy_text(rows: list[tuple[object, ...]]) -> bytes:
    """Rows in PostgreSQL's COPY text format: tab-separated, ``\\N`` for NULL, ISO times with
    their zone, JSON as its text."""
    lines = []
    for row in rows:
        lines.append(
            "\t".join(
                "\\N" if value is None else _FORMATS.get(type(value), str)(value) for value in row
            )
        )
    lines.append("")
    return "\n".join(lines).encode()


def encode(batch: Batch) -> Encoded:
    return {table: (copy_text(rows), len(rows)) for table, rows in batch.rows.items() if rows}


# Each worker process's row source, set once when the process starts.
_source: RowSource | None = None


def _start_worker(plan: Plan, customer_ids: list[uuid.UUID]) -> None:
    global _source  # one per worker process, set by the pool's initializer
    _source = RowSource(plan, customer_ids)


def _encoded_batch(number: int) -> tuple[int, Encoded]:
    assert _source is not None, "the pool's initializer sets the row source"
    batch = _source.rma_batch(number)
    return batch.rmas, encode(batch)


def drawn_batches(plan: Plan, customer_ids: list[uuid.UUID], processes: int) -> Iterator[Any]:
    """The plan's RMA batches, encoded, in order; drawn by ``processes`` worker processes, or
    here when that is 1."""
    count = RowSource(plan).batch_count
    if processes <= 1:
        _start_worker(plan, customer_ids)
        yield from (_encoded_batch(number) for number in range(count))
        return
    # Spawned, not forked: the parent runs an event loop and threads.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, _start_worker, (plan, customer_ids)) as pool:
        yield from pool.imap(_encoded_batch, range(count))


def default_processes(plan: Plan) -> int:
    return max(1, min(os.cpu_count() or 1, RowSource(plan).batch_count))


def _dsn(database_url: str) -> str:
    return sa.make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def write_postgres(
    database_url: str,
    plan: Plan,
    progress: Callable[[int], None] | None,
    processes: int | None = None,
) -> dict[str, int]:
    """COPY the customers, then every batch of RMAs as the workers finish them, all in one
    transaction.

    The foreign keys and plain indexes of the tables written are dropped for the load and made
    again at its end, in the same transaction: PostgreSQL then checks each key at once with one
    join instead of a locking lookup per row (three quarters of the load's time, and every row
    locked the one merchant row), and builds each index by sorting instead of inserting into it
    row by row. Primary keys and unique constraints stay, and so does every check: a row that
    breaks a key fails the whole load. Meanwhile the tables are locked for other sessions.
    """
    written = dict.fromkeys(TABLES, 0)
    source = RowSource(plan)
    customers = source.customers()
    batches = drawn_batches(plan, source.customer_ids, processes or default_processes(plan))
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        async with connection.transaction():
            foreign_keys = await connection.fetch(FOREIGN_KEYS, list(TABLES))
            for key in foreign_keys:
                await connection.execute(
                    f'ALTER TABLE {key["table_name"]} DROP CONSTRAINT "{key["name"]}"'
                )
            indexes = await connection.fetch(PLAIN_INDEXES, list(TABLES))
            for index in indexes:
                await connection.execute(f"DROP INDEX {index['name']}")
            await _copy(connection, encode(customers), written)
            rmas = 0
            while (drawn := await asyncio.to_thread(next, batches, None)) is not None:
                count, encoded = drawn
                await _copy(connection, encoded, written)
                rmas += count
                if progress is not None:
                    progress(rmas)
            await connection.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for index in indexes:
                await connection.execute(index["definition"])
            for key in foreign_keys:
                await connection.execute(
                    f'ALTER TABLE {key["table_name"]} ADD CONSTRAINT "{key["name"]}" '
                    f"{key['definition']}"
                )
        tables = ", ".join(f'"{table}"' for table in TABLES)
        await connection.execute(f"ANALYZE {tables}")
    finally:
        batches.close()
        await connection.close()
    return written


async def _copy(connection: asyncpg.Connection, encoded: Encoded, written: dict[str, int]) -> None:
    for table in TABLES:
        if table in encoded:
            data, rows = encoded[table]
            await connection.copy_to_table(
                table, source=io.BytesIO(data), columns=COLUMNS[table], format="text"
            )
            written[table] += rows
