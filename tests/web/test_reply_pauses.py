"""A text reply that is not a keyword pauses the contact's sequence (where the sequence says so):
the dispatcher sends nothing for it and the planner plans nothing until staff resume or end it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns import lifecycle, replies
from campaigns.definitions import Sequence
from core.clock import FrozenClock
from core.errors import InputError
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Enrollment, EnrollmentState, Event, Message, MessageState

PHONE = "+13105550123"


def sequence(*, pause_on_reply: bool = True) -> Sequence:
    return Sequence.model_validate(
        {
            "name": "reply-test",
            "title": "reply test",
            "template_folder": "spasm-relief",
            "pause_on_reply": pause_on_reply,
            "steps": [
                {"name": "first", "channel": "sms", "template": "02-cycle"},
                {"name": "second", "channel": "sms", "template": "02-cycle", "delay": "1h"},
            ],
        }
    )


def _inbound(body: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": "AC" + "a" * 32, "From": PHONE,
            "To": "+13105550100", "Body": body}  # fmt: skip


def _launch(app: NurtureApp, clock: FrozenClock, **options: Any) -> None:
    with transaction(app.sessions) as session:
        lifecycle.launch(session, sequence(**options), now=clock())
    assert app.planner.tick().planned == 1


def _enrollment(app: NurtureApp) -> Enrollment:
    with transaction(app.sessions, immediate=False) as session:
        return session.scalars(select(Enrollment)).one()


def _messages(app: NurtureApp) -> list[tuple[int, str]]:
    with transaction(app.sessions, immediate=False) as session:
        rows = session.execute(select(Message.step_index, Message.state).order_by(Message.id))
        return [(step, state) for step, state in rows]


def test_a_reply_pauses_and_nothing_is_sent_or_planned_until_resumed(
    nurture_app: NurtureApp,
    make_contact: Any,
    client: TestClient,
    signing: Any,
    frozen_clock: FrozenClock,
) -> None:
    make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    reply = _inbound("Can I come in on Saturday?", "SM1")
    assert signing.twilio_post(client, "/webhooks/twilio/inbound", reply).status_code == 200
    assert _enrollment(nurture_app).state == EnrollmentState.PAUSED

    result = nurture_app.dispatcher.tick()
    assert result.sent == 0 and result.skipped == 0  # deferred, not skipped
    for _ in range(3):
        frozen_clock.advance(minutes=20)
        assert nurture_app.dispatcher.tick().sent == 0
        assert nurture_app.planner.tick().planned == 0
    assert _messages(nurture_app) == [(0, MessageState.PLANNED)]

    enrollment = _enrollment(nurture_app)
    with transaction(nurture_app.sessions) as session:
        replies.resume(session, enrollment.id, by="editor@clinic", at=frozen_clock())
    frozen_clock.advance(minutes=15)
    assert nurture_app.dispatcher.tick().sent == 1
    frozen_clock.advance(hours=1)
    assert nurture_app.planner.tick().planned == 1  # the next step goes on


def test_ending_a_paused_enrollment_exits_it_and_skips_its_message(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    contact_id = make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    with transaction(nurture_app.sessions) as session:
        assert replies.pause_for_reply(session, contact_id, at=frozen_clock())
    enrollment = _enrollment(nurture_app)
    with transaction(nurture_app.sessions) as session:
        replies.end(session, enrollment.id, by="editor@clinic", at=frozen_clock())
    ended = _enrollment(nurture_app)
    assert ended.state == EnrollmentState.EXITED and ended.exit_reason == replies.ENDED_BY_STAFF
    result = nurture_app.dispatcher.tick()
    assert result.sent == 0 and result.skipped == 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        kinds = set(session.scalars(select(Event.kind)))
    assert {"enrollment_paused", "enrollment_ended"} <= kinds


def test_only_a_paused_enrollment_can_be_resumed_or_ended(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    enrollment = _enrollment(nurture_app)
    for action in (replies.resume, replies.end):
        with pytest.raises(InputError), transaction(nurture_app.sessions) as session:
            action(session, enrollment.id, by="editor@clinic", at=frozen_clock())
    assert _enrollment(nurture_app).state == EnrollmentState.ACTIVE


def test_a_sequence_that_does_not_pause_on_reply_keeps_going(
    nurture_app: NurtureApp,
    make_contact: Any,
    client: TestClient,
    signing: Any,
    frozen_clock: FrozenClock,
) -> None:
    make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock, pause_on_reply=False)
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("who is this?", "SM1"))
    assert _enrollment(nurture_app).state == EnrollmentState.ACTIVE
    assert nurture_app.dispatcher.tick().sent == 1


@pytest.mark.parametrize("body", ["HELP", "STOP", "AYUDA"])
def test_a_keyword_does_not_pause(
    body: str,
    nurture_app: NurtureApp,
    make_contact: Any,
    client: TestClient,
    signing: Any,
    frozen_clock: FrozenClock,
) -> None:
    make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound(body, "SM1"))
    assert _enrollment(nurture_app).state != EnrollmentState.PAUSED


def test_the_pause_rechecks_later_instead_of_churning(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    contact_id = make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    with transaction(nurture_app.sessions) as session:
        replies.pause_for_reply(session, contact_id, at=frozen_clock())
    assert nurture_app.dispatcher.tick().claimed == 1
    assert nurture_app.dispatcher.tick().claimed == 0  # deferred, not claimed again at once
    with transaction(nurture_app.sessions, immediate=False) as session:
        due = session.scalars(select(Message.due_at)).one()
    assert due > frozen_clock() + timedelta(minutes=10)


@pytest.mark.parametrize("ends_it", ["booked", "forgotten"])
def test_a_booking_or_a_forget_ends_a_paused_sequence_too(
    ends_it: str,
    nurture_app: NurtureApp,
    make_contact: Any,
    client: TestClient,
    signing: Any,
    frozen_clock: FrozenClock,
) -> None:
    """Paused is still in the sequence: what ends a running enrollment ends a paused one, and
    its planned message is skipped, not left for a resume."""
    from campaigns.booking import mark_booked
    from contacts.forget import forget_contact
    from storage.models import Contact

    contact_id = make_contact(phone=PHONE, sms=True)
    _launch(nurture_app, frozen_clock)
    reply = _inbound("Is parking free?", "SM7")
    assert signing.twilio_post(client, "/webhooks/twilio/inbound", reply).status_code == 200
    assert _enrollment(nurture_app).state == EnrollmentState.PAUSED
    with transaction(nurture_app.sessions) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        if ends_it == "booked":
            mark_booked(session, contact, at=frozen_clock(), source="test")
        else:
            forget_contact(session, contact, requested_by="test", now=frozen_clock(), files=())
    enrollment = _enrollment(nurture_app)
    assert enrollment.state == EnrollmentState.EXITED
    assert enrollment.exit_reason == ends_it
    nurture_app.dispatcher.tick()
    assert _messages(nurture_app) == [(0, MessageState.SKIPPED)]
