"""Straight DB-API executemany and IN lookups for the import's hot path.

SQLAlchemy's own executemany re-processes every parameter of every row through its compiled
statement machinery, which costs more than the database work itself at a million rows; these
helpers still apply each column type's bind processor, so values are stored exactly as
SQLAlchemy stores them and read back the same through the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Column, Table
from sqlalchemy.orm import Session

IN_CHUNK = 900  # stay far below SQLite's bound-parameter limit


def select_in(session: Session, sql: str, keys: list[Any]) -> list[Any]:
    """Rows of `sql IN (keys)`, in chunks, as plain DB-API tuples (see executemany for why).

    PostgreSQL takes the keys as one array (`= ANY(%s)`): planning an IN list of 900
    parameters, afresh for every statement (writer.py turns plan caching off), cost more than
    running it."""
    connection = session.connection()
    if not keys:
        return []
    if connection.dialect.name == "postgresql":
        return list(connection.exec_driver_sql(f"{sql} = ANY(%s)", (list(keys),)).all())
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    out: list[Any] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = tuple(keys[start : start + IN_CHUNK])
        marks = ", ".join([mark] * len(chunk))
        out += connection.exec_driver_sql(f"{sql} IN ({marks})", chunk).all()
    return out


def json_dict(value: Any) -> dict[str, Any]:
    """JSON columns come back parsed from psycopg and as text from sqlite3."""
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})


def executemany(
    session: Session, table: Table, rows: list[dict[str, Any]], key: str | None = None
) -> None:
    """INSERT (or UPDATE ... WHERE key) many rows straight through the DB-API's executemany.

    SQLAlchemy's own executemany re-processes every parameter of every row through its compiled
    statement machinery, which costs more than the database work here; the column types' own
    bind processors are still applied, so values are stored exactly as SQLAlchemy stores them.
    """
    connection = session.connection()
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = [name for name in rows[0] if name != key] + ([key] if key else [])
    if key is None:
        marks = ", ".join([mark] * len(names))
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
    else:
        sets = ", ".join(f"{name} = {mark}" for name in names[:-1])
        sql = f"UPDATE {table.name} SET {sets} WHERE {key} = {mark}"
    converters = [
        (i, _memoised(processor, not isinstance(table.c[n].type, JSON)))
        for i, n in enumerate(names)
        if (processor := table.c[n].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    pick = itemgetter(*names)
    params = [pick(row) for row in rows]
    if converters:
        for index, values in enumerate(params):
            converted = list(values)
            for i, convert in converters:
                converted[i] = convert(converted[i])
            params[index] = tuple(converted)
    connection.exec_driver_sql(sql, params)


def _memoised(processor: Any, cache: bool) -> Any:
    """A batch repeats the same few values (now, consent dates): convert each once."""
    if not cache:
        return processor
    seen: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        if value not in seen:
            seen[value] = processor(value)
        return seen[value]

    return process


def stored_form(session: Session, column: Column[Any], value: Any) -> Any:
    """`value` as the column's bind processor hands it to the driver (a DateTime as SQLite's
    text, for instance), for building DB-API parameters by hand."""
    return bind_processor(session, column)(value)


def bind_processor(session: Session, column: Column[Any]) -> Callable[[Any], Any]:
    """The column type's own conversion to what the driver is handed (see stored_form), looked
    up once for a batch of rows."""
    dialect = session.connection().dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else _as_is


def _as_is(value: Any) -> Any:
    return value


def insert_tuples(
    session: Session, table: Table, names: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT rows that are already DB-API parameters in `names` order (see stored_form)."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(names))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
    connection.exec_driver_sql(sql, rows)


def copy_tuples(
    session: Session, table: Table, names: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """PostgreSQL: COPY rows that are already DB-API parameters (see stored_form) into
    `table`, in the session's transaction."""
    driver_connection = session.connection().connection.driver_connection
    assert driver_connection is not None
    with driver_connection.cursor() as cursor:
        sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
