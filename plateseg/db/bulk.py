"""Bulk replacement of one run's rows in its child tables, inside the caller's transaction.

PostgreSQL (:func:`replace_run_rows`): every table's new rows go by ``COPY … FROM
STDIN`` (psycopg 3, on the connection SQLAlchemy holds) into a ``TEMP`` staging table
(``ON COMMIT DROP``: no indexes, no foreign keys, so the stream is as fast as the
server parses it); then, children first, the run's rows that are no longer in the
stage are deleted, and, parents first, the stage is merged with ``INSERT … SELECT …
ON CONFLICT (primary key) DO UPDATE … WHERE <row changed>``. Re-aggregating an
unchanged run therefore writes no new row versions at all (no dead tuples, no index
churn, no foreign-key checks), and all of it commits or rolls back with the rest of
the transaction.

SQLite: delete the run's rows, then one ``executemany`` of a prepared ``INSERT`` per
table on the driver cursor. Neither path builds ORM objects or per-row SQL.

>>> rows = [{"metric": "Count_Nuclei", "value": 3.0}]
>>> _tuples(rows, ["run_id", "metric", "value"], {"run_id": "r"})
[('r', 'Count_Nuclei', 3.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from plateseg.errors import DatabaseError

__all__ = ["CHUNK", "bulk_insert", "replace_run_rows", "upsert_rows"]

#: Rows per SQLite ``executemany`` call: bounds the memory of one parameter list.
CHUNK = 50_000


def _tuples(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fixed: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Rows as tuples in ``columns`` order; ``fixed`` values override, missing are None."""
    getters = [
        (lambda row, v=fixed[name]: v) if name in fixed else (lambda row, n=name: row.get(n))
        for name in columns
    ]
    return [tuple(get(row) for get in getters) for row in rows]


def _columns(
    table: sa.Table, rows: Sequence[Mapping[str, Any]], fixed: Mapping[str, Any]
) -> list[str]:
    """The table's columns that the rows (or ``fixed``) provide, in table order."""
    present = set(fixed) | {key for row in rows[:1] for key in row}
    return [column.name for column in table.columns if column.name in present]


def _copy(
    connection: sa.Connection, table: sa.Table, columns: list[str], data: list[tuple[Any, ...]]
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    driver = connection.connection.driver_connection
    if driver is None or not hasattr(driver, "cursor"):  # pragma: no cover - pool invariant
        raise DatabaseError(f"no psycopg connection to COPY into {table.name}")
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        write = copy.write_row
        for row in data:
            write(row)


def _executemany(
    connection: sa.Connection, table: sa.Table, columns: list[str], data: list[tuple[Any, ...]]
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    marks = ", ".join("?" for _ in columns)
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})"
    )
    for start in range(0, len(data), CHUNK):
        connection.exec_driver_sql(sql, data[start : start + CHUNK])


def bulk_insert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    fixed: Mapping[str, Any] | None = None,
) -> int:
    """Insert ``rows`` into ``table`` the fastest way the backend offers.

    Parameters
    ----------
    connection : sqlalchemy.Connection
        Inside a transaction (``engine.begin()``); nothing commits here.
    table : sqlalchemy.Table
    rows : sequence of mapping
        Column name -> value; every row has the keys of the first row.
    fixed : mapping, optional
        Values set on every row (e.g. ``{"run_id": ...}``).

    Returns
    -------
    int
        Rows inserted.
    """
    if not rows:
        return 0
    fixed = fixed or {}
    columns = _columns(table, rows, fixed)
    data = _tuples(rows, columns, fixed)
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, data)
    elif connection.dialect.name == "sqlite":
        _executemany(connection, table, columns, data)
    else:
        raise DatabaseError(
            f"unsupported database backend {connection.dialect.name!r}: use SQLite or PostgreSQL"
        )
    return len(data)


def _quoted(connection: sa.Connection, names: Iterable[str]) -> list[str]:
    quote = connection.dialect.identifier_preparer.quote
    return [quote(name) for name in names]


def _stage(connection: sa.Connection, table: sa.Table, columns: list[str], data: Any) -> str:
    """COPY ``data`` into a temporary copy of ``table``; returns the stage's name."""
    stage = f"stage_{table.name}"
    target = connection.dialect.identifier_preparer.quote(table.name)
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {stage}")
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    staged = sa.Table(stage, sa.MetaData(), *(sa.Column(c) for c in columns))
    _copy(connection, staged, columns, data)
    connection.exec_driver_sql(f"ANALYZE {stage}")
    return stage


def _delete_stale(
    connection: sa.Connection, table: sa.Table, stage: str | None, run_id: str
) -> None:
    """Delete the run's rows of ``table`` that the stage does not hold (all if no stage)."""
    name = connection.dialect.identifier_preparer.quote(table.name)
    params = {"run_id": run_id}
    if stage is None:
        connection.exec_driver_sql(f"DELETE FROM {name} WHERE run_id = %(run_id)s", params)
        return
    keys = _quoted(connection, [c.name for c in table.primary_key.columns])
    match = " AND ".join(f"s.{k} = t.{k}" for k in keys)
    connection.exec_driver_sql(
        f"DELETE FROM {name} t WHERE t.run_id = %(run_id)s "
        f"AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})",
        params,
    )


def _merge(connection: sa.Connection, table: sa.Table, columns: list[str], stage: str) -> None:
    """Insert the stage's rows; update only the rows whose values changed."""
    name = connection.dialect.identifier_preparer.quote(table.name)
    keys = {c.name for c in table.primary_key.columns}
    cols = _quoted(connection, columns)
    values = _quoted(connection, [c for c in columns if c not in keys])
    conflict = ", ".join(_quoted(connection, [c.name for c in table.primary_key.columns]))
    sql = f"INSERT INTO {name} AS t ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {stage} "
    if values:
        old = ", ".join(f"t.{v}" for v in values)
        new = ", ".join(f"EXCLUDED.{v}" for v in values)
        sets = ", ".join(f"{v} = EXCLUDED.{v}" for v in values)
        sql += (
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets} "
            f"WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        )
    else:
        sql += f"ON CONFLICT ({conflict}) DO NOTHING"
    connection.exec_driver_sql(sql)


def replace_run_rows(
    connection: sa.Connection,
    run_id: str,
    tables: Sequence[tuple[sa.Table, Sequence[Mapping[str, Any]]]],
    on_table: Any = None,
) -> None:
    """Make the run's rows in each table exactly ``rows``, in one transaction.

    Parameters
    ----------
    connection : sqlalchemy.Connection
        Inside a transaction.
    run_id : str
    tables : sequence of (Table, rows)
        Parents before children (the insert order); rows lack ``run_id``.
    on_table : callable, optional
        ``on_table(table_name, connection)`` after each table's rows are in place.
    """
    fixed = {"run_id": run_id}
    if connection.dialect.name != "postgresql":
        for table, _rows in reversed(tables):
            connection.execute(sa.delete(table).where(table.c.run_id == run_id))
        for table, rows in tables:
            bulk_insert(connection, table, rows, fixed)
            if on_table is not None:
                on_table(table.name, connection)
        return
    staged: list[tuple[sa.Table, list[str], str | None]] = []
    for table, rows in tables:
        if not rows:
            staged.append((table, [], None))
            continue
        columns = _columns(table, rows, fixed)
        data = _tuples(rows, columns, fixed)
        staged.append((table, columns, _stage(connection, table, columns, data)))
    for table, _names, stage in reversed(staged):
        _delete_stale(connection, table, stage, run_id)
    for table, columns, stage in staged:
        if stage is not None:
            _merge(connection, table, columns, stage)
        if on_table is not None:
            on_table(table.name, connection)


def upsert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``rows``, overwriting rows with the same primary key (latest wins).

    PostgreSQL: COPY into a stage, then the same changed-only merge as
    :func:`replace_run_rows`. SQLite: ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE``.
    """
    if not rows:
        return
    fixed = fixed or {}
    columns = _columns(table, rows, fixed)
    data = _tuples(rows, columns, fixed)
    if connection.dialect.name == "postgresql":
        _merge(connection, table, columns, _stage(connection, table, columns, data))
        return
    keys = {c.name for c in table.primary_key.columns}
    cols = _quoted(connection, columns)
    conflict = ", ".join(_quoted(connection, [c.name for c in table.primary_key.columns]))
    sets = ", ".join(
        f"{v} = excluded.{v}" for v in _quoted(connection, [c for c in columns if c not in keys])
    )
    name = connection.dialect.identifier_preparer.quote(table.name)
    sql = (
        f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
    )
    for start in range(0, len(data), CHUNK):
        connection.exec_driver_sql(sql, data[start : start + CHUNK])
