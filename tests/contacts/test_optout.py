"""The one opt-out and the one rule for consent events that arrive out of order
(contacts.consent): status follows the newest event by time, an opt-out wins a tie, every
opt-out writes the suppression, the ledger keeps every event with its own time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from contacts.consent import record_consent
from contacts.optout import OptOut, opt_in_again, opt_out, opt_out_many
from contacts.suppressions import (
    NewSuppression,
    active_suppression,
    address_hash,
    lift_by_person,
    suppress,
    suppress_many,
)
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Channel, ConsentEvent, Contact, Event, SuppressionReason

MINUTE = timedelta(minutes=1)


def _state(app: NurtureApp, contact_id: int, channel: str = "email") -> dict[str, Any]:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        address = contact.address(channel)
        suppression = active_suppression(session, channel, address) if address else None
        ledger = session.execute(
            select(ConsentEvent.status, ConsentEvent.occurred_at, ConsentEvent.source)
            .where(ConsentEvent.contact_id == contact_id, ConsentEvent.channel == channel)
            .order_by(ConsentEvent.id)
        ).all()
        events = session.execute(
            select(Event.kind, Event.occurred_at, Event.data)
            .where(Event.contact_id == contact_id, Event.channel == channel)
            .order_by(Event.id)
        ).all()
        return {
            "status": contact.consent_for(channel),
            "suppressed": None if suppression is None else suppression.reason,
            "ledger": [tuple(row) for row in ledger],
            "events": [tuple(row) for row in events],
        }


def _opt_out(app: NurtureApp, contact_id: int, at, **kwargs: Any) -> bool:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return opt_out(session, contact, "email", source="test", at=at, **kwargs)


def _opt_in(app: NurtureApp, contact_id: int, at) -> bool:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return opt_in_again(
            session, contact, "email", how="preference page", evidence="checked", at=at
        )


def test_an_opt_in_older_than_the_newest_opt_out_does_not_resubscribe(nurture_app, make_contact):
    contact = make_contact()  # opted in at t0
    t0 = nurture_app.clock()
    assert _opt_out(nurture_app, contact, t0 + 10 * MINUTE)
    assert not _opt_in(nurture_app, contact, t0 + 5 * MINUTE)  # arrives late, happened earlier
    state = _state(nurture_app, contact)
    assert state["status"] == "opted_out" and state["suppressed"] == "unsubscribed"
    # Recorded all the same, with its own time.
    assert [(s, at) for s, at, _ in state["ledger"]] == [
        ("opted_in", t0),
        ("opted_out", t0 + 10 * MINUTE),
        ("opted_in", t0 + 5 * MINUTE),
    ]


def test_a_newer_opt_in_resubscribes(nurture_app, make_contact):
    contact = make_contact()
    t0 = nurture_app.clock()
    _opt_out(nurture_app, contact, t0 + MINUTE)
    assert _opt_in(nurture_app, contact, t0 + 2 * MINUTE)
    state = _state(nurture_app, contact)
    assert state["status"] == "opted_in" and state["suppressed"] is None


def test_an_opt_out_and_an_opt_in_at_the_same_instant_resolve_to_opt_out(nurture_app, make_contact):
    t0 = nurture_app.clock()
    first_out, first_in = make_contact(), make_contact()  # both opted in at t0
    _opt_out(nurture_app, first_out, t0 + MINUTE)
    assert not _opt_in(nurture_app, first_out, t0 + MINUTE)
    _opt_in(nurture_app, first_in, t0 + MINUTE)
    _opt_out(nurture_app, first_in, t0 + MINUTE)
    for contact in (first_out, first_in):
        state = _state(nurture_app, contact)
        assert state["status"] == "opted_out" and state["suppressed"] == "unsubscribed"
    # The opt-in at the very instant of the sign-up form (make_contact) loses nothing either.
    same = make_contact()
    _opt_out(nurture_app, same, t0)
    assert _state(nurture_app, same)["status"] == "opted_out"


def test_a_late_opt_out_still_suppresses_but_the_newer_opt_in_keeps_the_status(
    nurture_app, make_contact
):
    """A provider's delayed unsubscribe, older than the person's newest opt-in: the address is
    suppressed (every send checks that), the ledger has it at its own time, the status stays."""
    contact = make_contact()
    t0 = nurture_app.clock()
    _opt_out(nurture_app, contact, t0 + MINUTE)
    _opt_in(nurture_app, contact, t0 + 3 * MINUTE)
    assert _opt_out(nurture_app, contact, t0 + 2 * MINUTE)  # late: happened before the opt-in
    state = _state(nurture_app, contact)
    assert state["status"] == "opted_in" and state["suppressed"] == "unsubscribed"
    assert state["ledger"][-1][:2] == ("opted_out", t0 + 2 * MINUTE)


def test_a_late_import_of_an_old_opt_in_changes_nothing(nurture_app, make_contact):
    contact = make_contact()
    t0 = nurture_app.clock()
    _opt_out(nurture_app, contact, t0 + MINUTE)
    with transaction(nurture_app.sessions) as session:
        record_consent(
            session, contact, "email", "opted_in", source="old form", occurred_at=t0 - MINUTE
        )
    assert _state(nurture_app, contact)["status"] == "opted_out"


def test_every_opt_out_is_in_the_ledger_and_the_first_reason_is_kept(nurture_app, make_contact):
    contact = make_contact()
    t0 = nurture_app.clock()
    assert _opt_out(nurture_app, contact, t0 + MINUTE)
    assert not _opt_out(nurture_app, contact, t0 + 2 * MINUTE, reason=SuppressionReason.COMPLAINED)
    state = _state(nurture_app, contact)
    assert state["suppressed"] == "unsubscribed"  # the first active reason
    assert [row[0] for row in state["ledger"]] == ["opted_in", "opted_out", "opted_out"]
    assert [row[0] for row in state["events"]] == ["unsubscribed", "unsubscribed"]


def test_a_batch_follows_the_rule_like_one_by_one(nurture_app, make_contact):
    """opt_out_many over many contacts, both channels, repeats, times out of order and a contact
    with no phone: the same rows as the same opt-outs one at a time, and each as the rule says."""
    t0 = nurture_app.clock()

    def people() -> dict[str, int]:
        ids = {
            "plain": make_contact(),
            "texts": make_contact(phone=None),
            "both": make_contact(phone=f"+1310555{len(made):04d}", sms=True),
            "newer in": make_contact(),
        }
        made.append(ids)
        _opt_in(nurture_app, ids["newer in"], t0 + 5 * MINUTE)
        return ids

    made: list[dict[str, int]] = []
    batch, single = people(), people()

    def requests(ids: dict[str, int]) -> list[OptOut]:
        return [
            OptOut(ids["plain"], Channel.EMAIL, "one-click", t0 + 2 * MINUTE),
            OptOut(ids["plain"], Channel.EMAIL, "one-click", t0 + MINUTE),  # a repeat, earlier
            OptOut(ids["texts"], Channel.SMS, "reply STOP", t0 + MINUTE, SuppressionReason.STOP),
            OptOut(ids["both"], Channel.SMS, "reply STOP", t0 + MINUTE, SuppressionReason.STOP),
            OptOut(ids["both"], Channel.EMAIL, "one-click", t0 + MINUTE),
            OptOut(ids["newer in"], Channel.EMAIL, "sendgrid", t0 + 3 * MINUTE),
        ]

    with transaction(nurture_app.sessions) as session:
        newly_batch = opt_out_many(session, requests(batch))
    newly_single = []
    for request in requests(single):
        with transaction(nurture_app.sessions) as session:
            newly_single += opt_out_many(session, [request])
    assert newly_batch == newly_single == [True, False, False, True, True, True]

    def rows(ids: dict[str, int]) -> list[dict[str, Any]]:
        return [
            _state(nurture_app, ids[who], channel)
            for who in ("plain", "texts", "both", "newer in")
            for channel in ("email", "sms")
        ]

    assert rows(batch) == rows(single)
    plain = _state(nurture_app, batch["plain"])
    assert plain["status"] == "opted_out" and plain["suppressed"] == "unsubscribed"
    assert [at for s, at, _ in plain["ledger"] if s == "opted_out"] == [
        t0 + 2 * MINUTE,
        t0 + MINUTE,
    ]
    assert _state(nurture_app, batch["texts"], "sms")["ledger"] == []  # no phone: nothing
    both = _state(nurture_app, batch["both"], "sms")
    assert both["status"] == "opted_out" and both["suppressed"] == "stop"
    newer = _state(nurture_app, batch["newer in"])
    assert newer["status"] == "opted_in" and newer["suppressed"] == "unsubscribed"


def test_an_address_without_a_contact_is_suppressed_once(nurture_app):
    at = nurture_app.clock()
    with transaction(nurture_app.sessions) as session:
        assert suppress(session, "sms", "+13105550000", "stop", source="reply STOP", at=at)
        assert not suppress(session, "sms", "+13105550000", "manual", source="staff", at=at)
        assert active_suppression(session, "sms", "+13105550000").reason == "stop"


def test_one_batch_of_suppressions_reports_only_the_new_and_the_re_activated(nurture_app):
    """suppress_many sends a batch as one multi-row upsert: only addresses not suppressed
    before come back (new, or lifted and now active again); an active one keeps its first
    reason; a repeat within the batch counts once."""
    at = nurture_app.clock()
    with transaction(nurture_app.sessions) as session:
        suppress(session, "email", "active@example.com", "bounce", source="sendgrid", at=at)
        suppress(session, "email", "lifted@example.com", "unsubscribed", source="link", at=at)
        assert lift_by_person(session, "email", "lifted@example.com", "preference page", at=at)
    rows = [
        NewSuppression("email", address, "unsubscribed", "one-click", at + MINUTE)
        for address in (
            "new@example.com",
            "active@example.com",
            "lifted@example.com",
            "new@example.com",
        )
    ]
    upserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO suppressions"):
            upserts.append(statement)

    event.listen(nurture_app.engine, "before_cursor_execute", count)
    try:
        with transaction(nurture_app.sessions) as session:
            newly = suppress_many(session, rows)
    finally:
        event.remove(nurture_app.engine, "before_cursor_execute", count)
    assert len(upserts) == 1  # the batch in one statement, not one a row
    with transaction(nurture_app.sessions) as session:
        hashed = {
            a: address_hash(session, "email", a) for a in ("new@example.com", "lifted@example.com")
        }
        assert newly == {
            ("email", hashed["new@example.com"]),
            ("email", hashed["lifted@example.com"]),
        }
        assert active_suppression(session, "email", "active@example.com").reason == "bounce"
        again = active_suppression(session, "email", "lifted@example.com")
        assert (
            again.reason == "unsubscribed" and again.lifted_at is None and again.lifted_by is None
        )
    with transaction(nurture_app.sessions) as session:
        assert suppress_many(session, rows) == set()
