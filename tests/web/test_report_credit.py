"""Reports follow the journey: unsubscribes and bookings are credited to the campaign and step
of the message that caused them, and the funnel counts people, never messages over people."""

from __future__ import annotations

import json

from sqlalchemy import select

from campaigns.reports import campaign_funnel
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, Contact, Event, Message, MessageState
from web.admin.charts import funnel_svg
from web.webhooks.booking import sign

PHONE = "+13105550123"
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _funnel(app: NurtureApp, campaign_id: int):
    with app.sessions() as session:
        return campaign_funnel(session, session.get_one(Campaign, campaign_id))


def _events(app: NurtureApp, kind: str) -> list[tuple[int | None, int | None, int | None]]:
    with app.sessions() as session:
        rows = session.execute(
            select(Event.message_id, Event.campaign_id, Event.step_index)
            .where(Event.kind == kind)
            .order_by(Event.id)
        )
        return [tuple(row) for row in rows]


def _one_click(client, signing, app: NurtureApp, contact: int, channel: str = "email") -> None:
    path = signing.path_of(app.signer.unsubscribe_url(contact, channel))
    response = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200


def test_two_unsubscribes_from_links_show_on_the_campaign_and_step(
    nurture_app, make_contact, send, client, signing, campaign_id
):
    first, second = make_contact(), make_contact()
    messages = [send(first), send(second)]
    _one_click(client, signing, nurture_app, first)
    # The page's button: the same token, credited the same way.
    path = signing.path_of(nurture_app.signer.unsubscribe_url(second, "email"))
    assert client.post(path).status_code == 200

    assert _events(nurture_app, "unsubscribed") == [
        (messages[0], campaign_id, 0),
        (messages[1], campaign_id, 0),
    ]
    funnel = _funnel(nurture_app, campaign_id)
    assert funnel.unsubscribed == 2 and funnel.steps[0].unsubscribed == 2
    assert funnel.steps[1].unsubscribed == 0


def test_a_link_is_credited_to_the_message_that_carried_it_not_the_last_one(
    nurture_app, make_contact, send, client, signing, campaign_id, another_campaign, frozen_clock
):
    """An unsubscribe link names its message: clicked in an older email, the opt-out is that
    email's campaign and step, though a newer email from another campaign came since."""
    contact = make_contact()
    older = send(contact, step_index=1)
    frozen_clock.advance(days=2)
    send(contact, campaign=another_campaign)
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email", older))
    response = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200
    assert _events(nurture_app, "unsubscribed") == [(older, campaign_id, 1)]
    assert _funnel(nurture_app, campaign_id).steps[1].unsubscribed == 1
    assert _funnel(nurture_app, another_campaign).unsubscribed == 0


def test_a_link_naming_a_message_no_longer_stored_falls_back_to_the_last_one(
    nurture_app, make_contact, send, client, signing, campaign_id
):
    """A preview's link (message 0) or an erased history: the opt-out still takes, credited as
    a link that names no message is, and no event points at a missing row."""
    contact = make_contact()
    last = send(contact)
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email", 987654))
    response = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200
    assert _events(nurture_app, "unsubscribed") == [(last, campaign_id, 0)]


def test_links_sent_before_they_named_their_message_still_unsubscribe(nurture_app) -> None:
    signer = nurture_app.signer
    old_form = signer.unsubscribe_url(7, "sms")
    new_form = signer.unsubscribe_url(7, "sms", 42)
    assert signer.read_unsubscribe(old_form.rsplit("/", 1)[1]).message_id is None
    parsed = signer.read_unsubscribe(new_form.rsplit("/", 1)[1])
    assert (parsed.contact_id, str(parsed.channel), parsed.message_id) == (7, "sms", 42)


def test_old_messages_and_staff_suppressions_are_not_credited(
    nurture_app, make_contact, send, client, signing, campaign_id, frozen_clock: FrozenClock
):
    late, by_staff = make_contact(), make_contact()
    send(late)
    send(by_staff)
    frozen_clock.advance(days=31)  # past the email window
    _one_click(client, signing, nurture_app, late)
    from contacts.optout import opt_out

    with transaction(nurture_app.sessions) as session:
        contact = session.get_one(Contact, by_staff)
        opt_out(session, contact, "email", reason="manual", source="staff", at=frozen_clock())
    assert _events(nurture_app, "unsubscribed") == [(None, None, None), (None, None, None)]
    assert _funnel(nurture_app, campaign_id).unsubscribed == 0


def test_stop_is_credited_to_the_last_text_within_the_window(
    nurture_app,
    make_contact,
    send,
    client,
    signing,
    campaign_id,
    another_campaign,
    frozen_clock: FrozenClock,
):
    contact = make_contact(phone=PHONE, sms=True)
    send(contact, step_index=1, campaign=another_campaign)  # an older text
    frozen_clock.advance(days=1)
    send(contact, step_index=0)  # an email: not a text
    last_text = send(contact, step_index=1)
    frozen_clock.advance(days=6, hours=23)
    params = {"MessageSid": "SM1", "From": PHONE, "To": "+13105550100", "Body": "STOP"}
    assert signing.twilio_post(client, "/webhooks/twilio/inbound", params).status_code == 200

    assert _events(nurture_app, "unsubscribed") == [(last_text, campaign_id, 1)]
    funnel = _funnel(nurture_app, campaign_id)
    assert funnel.steps[1].unsubscribed == 1 and funnel.steps[0].unsubscribed == 0
    assert _funnel(nurture_app, another_campaign).unsubscribed == 0


def test_stop_after_the_window_is_on_no_campaign(
    nurture_app, make_contact, send, client, signing, campaign_id, frozen_clock: FrozenClock
):
    contact = make_contact(phone=PHONE, sms=True)
    send(contact, step_index=1)
    frozen_clock.advance(days=7, minutes=1)
    params = {"MessageSid": "SM2", "From": PHONE, "To": "+13105550100", "Body": "STOP"}
    assert signing.twilio_post(client, "/webhooks/twilio/inbound", params).status_code == 200
    assert _events(nurture_app, "unsubscribed") == [(None, None, None)]


def _book(client, signing, app: NurtureApp, booking_id: str, email: str) -> None:
    body = json.dumps({"booking_id": booking_id, "email": email}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Nurture-Signature": sign(signing.booking_secret, body, signing.unix(app.clock())),
    }
    response = client.post("/webhooks/booking", content=body, headers=headers)
    assert response.json() == {"status": "booked"}


def test_a_booking_after_a_click_is_credited_to_the_clicked_message(
    nurture_app, make_contact, send, client, signing, campaign_id, frozen_clock: FrozenClock
):
    contact = make_contact(email="maria@example.com")
    send(contact)
    frozen_clock.advance(days=1)
    clicked = send(contact, step_index=1)
    url = nurture_app.signer.click_url(clicked, "booking")
    assert client.get(signing.path_of(url)).status_code in (302, 303, 307)
    frozen_clock.advance(days=13)
    _book(client, signing, nurture_app, "B-1", "maria@example.com")

    assert _events(nurture_app, "booked") == [(clicked, campaign_id, 1)]
    funnel = _funnel(nurture_app, campaign_id)
    assert funnel.booked == 1 and funnel.steps[1].booked == 1 and funnel.steps[0].booked == 0
    assert dict(funnel.stages())["booked"] == 1


def test_a_booking_long_after_a_click_is_on_no_campaign(
    nurture_app, make_contact, send, client, signing, campaign_id, frozen_clock: FrozenClock
):
    contact = make_contact(email="maria@example.com")
    clicked = send(contact)
    assert client.get(signing.path_of(nurture_app.signer.click_url(clicked, "booking")))
    frozen_clock.advance(days=14, minutes=1)
    _book(client, signing, nurture_app, "B-2", "maria@example.com")
    assert _events(nurture_app, "booked") == [(None, None, None)]
    assert _funnel(nurture_app, campaign_id).booked == 0


def test_five_messages_to_one_contact_are_one_person_sent(
    nurture_app, make_contact, send, campaign_id
):
    contact = make_contact()
    first = send(contact)
    with transaction(nurture_app.sessions) as session:  # four more steps of the same enrolment
        message = session.get_one(Message, first)
        for step in range(1, 5):
            session.add(
                Message(
                    enrollment_id=message.enrollment_id,
                    campaign_id=campaign_id,
                    contact_id=contact,
                    step_index=step,
                    channel="email",
                    state=MessageState.SENT,
                    due_at=message.due_at,
                    sent_at=message.sent_at,
                )
            )
    funnel = _funnel(nurture_app, campaign_id)
    assert funnel.enrolled == 1 and funnel.sent == 5  # messages, labelled as such
    assert dict(funnel.stages())["sent"] == 1 and funnel.share("sent") == 1.0
    chart = str(funnel_svg(funnel.stages(), title="t"))
    assert "1 (100%)" in chart and "500%" not in chart


def test_a_provider_opt_out_naming_its_message_gets_the_step(
    nurture_app, make_contact, send, campaign_id, frozen_clock: FrozenClock
):
    from contacts.optout import opt_out

    contact = make_contact(phone=PHONE, sms=True)
    texted = send(contact, step_index=1)
    with transaction(nurture_app.sessions) as session:
        opt_out(
            session,
            session.get_one(Contact, contact),
            "sms",
            reason="complained",
            source="carrier",
            at=frozen_clock(),
            message_id=texted,
        )
    assert _events(nurture_app, "unsubscribed") == [(texted, campaign_id, 1)]
    assert _funnel(nurture_app, campaign_id).steps[1].unsubscribed == 1
