"""A list bound as one parameter selects exactly what `IN` would, on SQLite and PostgreSQL,
keeps one statement text whatever the list's length, and still looks values up by index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
)

from storage.db import make_engine
from storage.sql_lists import among, not_among

ROWS = 3_000
ODD_NAMES = [
    "O'Brien",
    'say "hi"',
    "back\\slash",
    "naïve café — ✓",
    "emoji 😀",
    "[1, 2]",
    "%(p)s ? :p",
    "  spaced  ",
    "",
]
METADATA = MetaData()
ITEMS = Table(
    "sql_list_items",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Index("ix_sql_list_items_name", "name"),
)
NAMES = {n: ODD_NAMES[n - 1] if n <= len(ODD_NAMES) else f"item-{n}" for n in range(1, ROWS + 1)}


@pytest.fixture
def items(db_url: str) -> Iterator[Engine]:
    """ROWS rows on SQLite and on PostgreSQL; the first names are the awkward ones."""
    engine = make_engine(db_url)
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(ITEMS), [{"id": n, "name": s} for n, s in NAMES.items()])
    yield engine
    engine.dispose()


def ids_where(engine: Engine, condition: Any) -> list[int]:
    with engine.connect() as connection:
        return list(connection.scalars(select(ITEMS.c.id).where(condition).order_by(ITEMS.c.id)))


@pytest.mark.parametrize(
    "wanted",
    [
        [5],
        [3, 7, 7, 3, 11],
        [ROWS + 1, 0, -4],  # none of them exists
        list(range(2, 4_002, 2)),  # 2,000 ids, three quarters of them present
    ],
    ids=["one", "duplicates", "absent", "two-thousand"],
)
def test_ids_among_and_not_among_a_list(items: Engine, wanted: list[int]) -> None:
    dialect = items.dialect.name
    expected = sorted(set(wanted) & NAMES.keys())
    assert ids_where(items, among(ITEMS.c.id, wanted, dialect)) == expected
    rest = sorted(NAMES.keys() - set(wanted))
    assert ids_where(items, not_among(ITEMS.c.id, wanted, dialect)) == rest


def test_names_with_quotes_backslashes_and_unicode_match_exactly(items: Engine) -> None:
    dialect = items.dialect.name
    wanted = [*ODD_NAMES, "o'brien", "emoji", "nobody", ODD_NAMES[0]]  # near misses match nothing
    assert ids_where(items, among(ITEMS.c.name, wanted, dialect)) == list(range(1, 10))
    others = ids_where(items, not_among(ITEMS.c.name, ODD_NAMES, dialect))
    assert others == list(range(len(ODD_NAMES) + 1, ROWS + 1))


def test_an_empty_list_matches_nothing_and_excludes_nothing(items: Engine) -> None:
    dialect = items.dialect.name
    assert ids_where(items, among(ITEMS.c.id, [], dialect)) == []
    assert len(ids_where(items, not_among(ITEMS.c.id, iter(()), dialect))) == ROWS


def test_one_statement_text_and_one_parameter_whatever_the_length(items: Engine) -> None:
    """The point of the helper: SQLAlchemy's compiled cache (and PostgreSQL's prepared
    statements) serve every call, and a list costs one bound value, not one per element."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("SELECT"):
            sent.append((statement, params))

    event.listen(items, "before_cursor_execute", capture)
    try:
        for wanted in ([1], [1, 2], list(range(1, 2_001))):
            ids_where(items, among(ITEMS.c.id, wanted, items.dialect.name))
    finally:
        event.remove(items, "before_cursor_execute", capture)
    assert len(sent) == 3 and len({statement for statement, _ in sent}) == 1, sent[0][0]
    assert all(len(params) == 1 for _, params in sent), sent[0][1]


def test_other_databases_get_a_plain_in() -> None:
    assert "POSTCOMPILE" in str(among(ITEMS.c.id, [1, 2], "mysql").compile())
    assert "NOT IN" in str(not_among(ITEMS.c.id, [1, 2], "mysql").compile())


def plan(engine: Engine, condition: Any) -> str:
    """The query plan's text: EXPLAIN QUERY PLAN on SQLite; EXPLAIN on PostgreSQL with
    sequential scans priced out, so that it shows whether the index can serve the array at all
    (on a table this small the planner would rightly read it whole)."""
    statement = select(ITEMS.c.id, ITEMS.c.name).where(condition)
    with engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        if engine.dialect.name == "sqlite":
            params: Any = tuple(compiled.params[key] for key in compiled.positiontup or ())
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
            return " | ".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return " | ".join(str(row[0]) for row in rows)


def test_lookups_still_go_through_the_primary_key_and_the_index(items: Engine) -> None:
    dialect = items.dialect.name
    by_id = plan(items, among(ITEMS.c.id, list(range(1, 2_001)), dialect))
    by_name = plan(items, among(ITEMS.c.name, [NAMES[n] for n in range(1, 500)], dialect))
    both = plan(
        items,
        among(ITEMS.c.name, ["item-40", "item-41"], dialect) & not_among(ITEMS.c.id, [40], dialect),
    )
    if dialect == "sqlite":
        assert "SEARCH sql_list_items USING INTEGER PRIMARY KEY" in by_id, by_id
        for details in (by_name, both):
            assert "INDEX ix_sql_list_items_name (name=?)" in details, details
        for details in (by_id, by_name, both):
            assert "SCAN sql_list_items" not in details, details
    else:
        assert "sql_list_items_pkey" in by_id, by_id
        for details in (by_name, both):
            assert "ix_sql_list_items_name" in details, details
        for details in (by_id, by_name, both):
            assert "Seq Scan" not in details, details
    assert ids_where(items, among(ITEMS.c.name, ["item-40", "item-41"], dialect)) == [40, 41]
