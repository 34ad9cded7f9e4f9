"""The dispatcher's hot lookups go through indexes: claims do not walk the other channel's
backlog, the frequency cap does not walk every text sent, suppressions are not scanned, and the
id lists bound as one parameter are looked up by key."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from contacts.suppressions import suppress
from nurture.app import NurtureApp
from scheduler.claims import claim_due
from storage.db import transaction
from storage.models import Contact, Message, MessageState, SuppressionReason

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@contextmanager
def captured(app: NurtureApp, wanted: Callable[[str], bool]) -> Iterator[list[tuple[str, Any]]]:
    """The statements `wanted` picks out, with their parameters, as the app runs them."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if wanted(statement):
            seen.append((statement, params))

    event.listen(app.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", capture)


def plan_of(session: Any, statement: str, params: Any) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN steps for a captured statement."""
    rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
    return [str(row[-1]) for row in rows]


def test_a_channel_claim_reads_the_planned_index_and_takes_only_that_channel(
    h: Any, sqlite_app: NurtureApp
) -> None:
    emails = h.seed(sqlite_app, emails=30, due=NOW)
    texts = h.seed(sqlite_app, texts=5, due=NOW)
    claim = ("SELECT messages.id", "UPDATE messages")
    with captured(sqlite_app, lambda statement: statement.lstrip().startswith(claim)) as seen:
        with transaction(sqlite_app.sessions) as session:
            claimed = claim_due(session, now=NOW, limit=100, worker="w1", channel="sms")
            (select_, select_params), (update_, update_params) = seen[-2:]
            details = " ".join(plan_of(session, select_, select_params))
            # the claim's UPDATE finds its rows by id, never by walking the planned backlog
            update_plan = " ".join(plan_of(session, update_, update_params))
    assert sorted(claimed) == sorted(texts)
    assert "ix_message_planned_channel_due" in details
    assert "ix_message_due" not in update_plan and "PRIMARY KEY" in update_plan
    states = h.states(sqlite_app)
    assert {states[i] for i in texts} == {MessageState.CLAIMED}
    assert {states[i] for i in emails} == {MessageState.PLANNED}


def test_the_frequency_cap_looks_up_each_contacts_texts_not_every_text_sent(
    h: Any, sqlite_app: NurtureApp
) -> None:
    """With `state IN (...)` in SQL, SQLite walked every text ever sent, per batch (it rated a
    few hundred contact lookups dearer than five state ranges)."""
    h.seed(sqlite_app, texts=400, due=NOW)
    cap = "SELECT messages.contact_id"
    with captured(sqlite_app, lambda statement: statement.lstrip().startswith(cap)) as seen:
        assert sqlite_app.dispatcher.tick().sent == 400
    statement, params = seen[-1]
    with transaction(sqlite_app.sessions) as session:
        details = " ".join(plan_of(session, statement, params))
    assert "ix_message_contact_channel" in details and "ix_message_due" not in details


def test_every_suppression_lookup_of_a_dispatch_goes_through_an_index(
    h: Any, sqlite_app: NurtureApp
) -> None:
    """The send-time checks look addresses up by hash alone; the (channel, hash) unique
    constraint cannot serve that, so each claim and each sub-batch scanned the whole list."""
    emails = h.seed(sqlite_app, emails=40, due=NOW)
    with transaction(sqlite_app.sessions) as session:
        for n in range(300):  # a list of other people who left
            suppress(
                session,
                "email",
                f"gone{n}@example.org",
                SuppressionReason.UNSUBSCRIBED,
                at=sqlite_app.clock(),
            )
        first = session.get(Message, emails[0])
        assert first is not None
        contact = session.get(Contact, first.contact_id)
        assert contact is not None and contact.email
        suppress(
            session, "email", contact.email, SuppressionReason.UNSUBSCRIBED, at=sqlite_app.clock()
        )

    def lookup(statement: str) -> bool:
        return "FROM suppressions" in statement and statement.lstrip().startswith("SELECT")

    with captured(sqlite_app, lookup) as seen:
        result = sqlite_app.dispatcher.tick()
    assert (result.sent, result.skipped) == (39, 1)  # the lookups still find the suppressed one
    assert h.states(sqlite_app)[emails[0]] == MessageState.SKIPPED
    assert len(seen) >= 2  # at the claim and before the sub-batch
    with transaction(sqlite_app.sessions) as session:
        for statement, params in seen:
            details = " ".join(plan_of(session, statement, params))
            assert "SCAN suppressions" not in details, details
            assert "ix_suppression_address_hash" in details, details


def test_every_id_list_of_a_dispatch_is_looked_up_not_scanned(
    h: Any, sqlite_app: NurtureApp
) -> None:
    """The claim, the facts, the re-check, the "sending" mark and the frequency cap bind their
    lists as one JSON document (storage.sql_lists); each statement still finds its rows by key."""
    h.seed(sqlite_app, emails=30, texts=30, due=NOW)
    with captured(sqlite_app, lambda statement: "json_each" in statement) as seen:
        assert sqlite_app.dispatcher.tick().sent == 60
    by_key = "SEARCH messages USING INTEGER PRIMARY KEY"
    first_steps = {  # what each statement must look its rows up with
        "UPDATE messages": by_key,  # the claim and the "sending" mark
        "SELECT messages.id": by_key,  # the facts and their re-check
        "SELECT suppressions": "SEARCH suppressions USING INDEX ix_suppression_address_hash",
        "SELECT messages.contact_id": "SEARCH messages USING INDEX ix_message_contact_channel",
    }
    statements = dict(seen)  # each distinct statement once
    assert len(statements) == 6, list(statements)
    with transaction(sqlite_app.sessions) as session:
        for statement, params in statements.items():
            details = plan_of(session, statement, params)
            (expected,) = (
                step for start, step in first_steps.items() if re.match(start + r"\b", statement)
            )
            assert details[0].startswith(expected), (statement, details)
            assert not [step for step in details if re.match(r"SCAN (?!json_each)", step)], details


def test_a_claim_reads_the_oldest_due_in_index_order_without_sorting_the_backlog(
    h: Any, nurture_app: NurtureApp
) -> None:
    """A launch plans every message at one due time. On PostgreSQL, whose index entries do not
    end in the id as SQLite's do, a (channel, due_at) index left (due_at, id) to a sort of the
    whole planned backlog on every claim: 56 ms a claim at 100,000 planned."""
    emails = h.seed(nurture_app, emails=3000, due=NOW)
    claim = "SELECT messages.id"
    with transaction(nurture_app.sessions) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:  # the planner's statistics, as autovacuum keeps them on a live database
            session.connection().exec_driver_sql("ANALYZE messages")
    with captured(nurture_app, lambda statement: statement.lstrip().startswith(claim)) as seen:
        with transaction(nurture_app.sessions) as session:
            claimed = claim_due(session, now=NOW, limit=100, worker="w1", channel="email")
            statement, params = seen[-1]
            if postgres:
                rows = session.connection().exec_driver_sql(f"EXPLAIN {statement}", params)
                plan = " ".join(str(row[0]) for row in rows)
            else:
                plan = " ".join(plan_of(session, statement, params))
    assert claimed == emails[:100]  # the oldest first, ties by id
    assert "ix_message_planned_channel_due" in plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
