"""Twilio inbound texts and status callbacks, signed with twilio's own RequestValidator."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from contacts.suppressions import is_suppressed
from core.settings import load_settings
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Event, Message, MessageState
from web.app import create_app

PHONE = "+13105550123"


def _inbound(body: str, sid: str = "SM1", sender: str = PHONE, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "a" * 32,
        "MessagingServiceSid": "",  # Twilio signs blank parameters too
        "From": sender,
        "To": "+13105550100",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        **extra,
    }


def _sms_suppressed(app: NurtureApp, phone: str = PHONE) -> bool:
    with transaction(app.sessions) as session:
        return is_suppressed(session, "sms", phone)


def _events(app: NurtureApp, kind: str | None = None) -> list[Event]:
    with transaction(app.sessions) as session:
        query = select(Event).order_by(Event.id)
        if kind:
            query = query.where(Event.kind == kind)
        return list(session.scalars(query))


@pytest.mark.parametrize(
    "word",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOPALL",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "REVOKE",
        "opt-out",
        "OPTOUT",
    ],
)
def test_stop_words_suppress_at_once_with_one_confirmation(
    nurture_app, make_contact, client, signing, word
):
    contact = make_contact(phone=PHONE, sms=True)
    response = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound(word))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.count("<Message>") == 1
    assert "unsubscribed" in response.text and "START" in response.text
    assert "book" not in response.text.lower()  # no marketing in a confirmation
    assert _sms_suppressed(nurture_app)
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).sms_consent == "opted_out"


def test_opt_out_type_from_advanced_opt_out_wins(nurture_app, make_contact, client, signing):
    make_contact(phone=PHONE, sms=True)
    params = _inbound("arrêt", OptOutType="STOP")
    assert signing.twilio_post(client, "/webhooks/twilio/inbound", params).status_code == 200
    assert _sms_suppressed(nurture_app)


def test_stop_from_an_unknown_number_still_suppresses(nurture_app, client, signing):
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("STOP", sender="+13105550999"))
    assert _sms_suppressed(nurture_app, "+13105550999")


def test_start_resubscribes_and_help_answers(nurture_app, make_contact, client, signing):
    contact = make_contact(phone=PHONE, sms=True)
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("STOP", sid="SM1"))
    nurture_app.clock.advance(minutes=1)  # (at the same instant, the STOP would win)
    response = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("start", sid="SM2"))
    assert "subscribed again" in response.text and response.text.count("<Message>") == 1
    assert not _sms_suppressed(nurture_app)
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).sms_consent == "opted_in"
    helped = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("HELP", sid="SM3"))
    help_text = nurture_app.settings.clinic.sms_help_text
    assert help_text and help_text in helped.text.replace("&amp;", "&")


def test_free_text_revocation_is_honoured_and_flagged(nurture_app, make_contact, client, signing):
    make_contact(phone=PHONE, sms=True)
    body = "Please stop texting me, thanks"
    response = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound(body))
    assert "unsubscribed" in response.text
    assert _sms_suppressed(nurture_app)
    [flagged] = _events(nurture_app, "inbound_flagged")
    assert flagged.data["body"] == body and flagged.data["intent"] == "revoke"


def test_other_text_is_recorded_without_reply(nurture_app, make_contact, client, signing):
    make_contact(phone=PHONE, sms=True)
    response = signing.twilio_post(
        client, "/webhooks/twilio/inbound", _inbound("Cancel my appointment please")
    )
    assert response.status_code == 200 and "<Message>" not in response.text
    assert not _sms_suppressed(nurture_app)
    assert [event.kind for event in _events(nurture_app)] == ["inbound"]


def test_a_retried_inbound_is_applied_once(nurture_app, make_contact, client, signing):
    make_contact(phone=PHONE, sms=True)
    first = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("STOP", sid="SMX"))
    again = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("STOP", sid="SMX"))
    assert "<Message>" in first.text and "<Message>" not in again.text
    assert len(_events(nurture_app, "inbound")) == 1


def test_forged_unsigned_and_misdirected_requests_change_nothing(
    nurture_app, make_contact, client, signing
):
    make_contact(phone=PHONE, sms=True)
    path = "/webhooks/twilio/inbound"
    attempts = [
        signing.twilio_post(client, path, _inbound("STOP"), token="not-the-auth-token"),
        signing.twilio_post(client, path, _inbound("STOP"), signature=""),
        signing.twilio_post(client, path, _inbound("STOP"), signature="bm90IGEgc2lnbmF0dXJl"),
        # A signature captured for another URL (the status callback) is not valid here.
        signing.twilio_post(
            client,
            path,
            _inbound("STOP"),
            signed_url=f"{signing.public_base}/webhooks/twilio/status?m=1",
        ),
    ]
    assert [response.status_code for response in attempts] == [403, 403, 403, 403]
    # Tampering with a signed body: sign one body, send another.
    good = _inbound("HELLO")
    signature = RequestValidator(signing.twilio_token).compute_signature(
        f"{signing.public_base}{path}", good
    )
    tampered = signing.twilio_post(client, path, _inbound("STOP"), signature=signature)
    assert tampered.status_code == 403
    assert not _sms_suppressed(nurture_app) and _events(nurture_app) == []


def test_signature_uses_the_public_url_behind_a_proxy(
    db_url, tmp_path, frozen_clock, channel, signing
):
    """Twilio signs the public URL it called, not what the app's socket saw."""
    base = "https://nurture.spinaldecompressionla.com"
    app = NurtureApp(
        settings=load_settings(
            database={"url": db_url},
            web={"public_base_url": base, "trusted_proxies": ["10.0.0.1"]},
        ),
        clock=frozen_clock,
        email_override=channel,
        sms_override=channel,
    )
    app.migrate()
    client = TestClient(create_app(app), raise_server_exceptions=False)
    path = "/webhooks/twilio/inbound"
    public = signing.twilio_post(
        client, path, _inbound("STOP", sender="+13105550777"), signed_url=f"{base}{path}"
    )
    assert public.status_code == 200
    local = signing.twilio_post(client, path, _inbound("STOP", sid="SM9"))
    assert local.status_code == 403  # signed for the local URL, not the public one
    app.dispose()


# -- status callbacks ---------------------------------------------------------------------------


def _status(app, client, signing, message_id, status, sid="SMabc", code="", to=PHONE):
    params = {"MessageSid": sid, "MessageStatus": status, "To": to, "From": "+13105550100"}
    if code:
        params["ErrorCode"] = code
    return signing.twilio_post(client, f"/webhooks/twilio/status?m={message_id}", params)


def _message(app, message_id) -> Message:
    with transaction(app.sessions) as session:
        return session.get_one(Message, message_id)


def test_statuses_move_forward_only(nurture_app, make_contact, send, client, signing):
    message = send(make_contact(phone=PHONE, sms=True), step_index=1, state=MessageState.SENDING)
    for status in ("queued", "sent", "delivered", "sent", "queued", "undelivered"):
        assert _status(nurture_app, client, signing, message, status).status_code == 204
    row = _message(nurture_app, message)
    assert row.state == MessageState.DELIVERED and row.provider_status == "delivered"
    assert row.provider_message_id == "SMabc"
    kinds = [event.kind for event in _events(nurture_app)]
    # queued, sent, delivered, undelivered recorded once each; the repeats were duplicates.
    assert kinds == ["queued", "sent", "delivered", "bounced"]


def test_failure_records_error_code(nurture_app, make_contact, send, client, signing):
    message = send(make_contact(phone=PHONE, sms=True), step_index=1)
    _status(nurture_app, client, signing, message, "failed", code="30007")
    row = _message(nurture_app, message)
    assert row.state == MessageState.FAILED and "30007" in (row.error or "")
    assert not _sms_suppressed(nurture_app)


def test_unreachable_numbers_are_suppressed_after_the_threshold(
    nurture_app, make_contact, send, another_campaign, client, signing
):
    contact = make_contact(phone=PHONE, sms=True)
    first = send(contact, step_index=1)
    _status(nurture_app, client, signing, first, "undelivered", sid="SM1", code="30003")
    assert not _sms_suppressed(nurture_app)  # the threshold is 2
    second = send(contact, step_index=1, campaign=another_campaign)
    _status(nurture_app, client, signing, second, "undelivered", sid="SM2", code="30006")
    assert _sms_suppressed(nurture_app)


def test_a_delivery_resets_the_unreachable_count(
    nurture_app, make_contact, send, another_campaign, client, signing
):
    contact = make_contact(phone=PHONE, sms=True)
    first = send(contact, step_index=1)
    _status(nurture_app, client, signing, first, "undelivered", sid="SM1", code="30003")
    nurture_app.clock.advance(minutes=1)
    _status(nurture_app, client, signing, first, "delivered", sid="SM1")
    nurture_app.clock.advance(minutes=1)
    second = send(contact, step_index=1, campaign=another_campaign)
    _status(nurture_app, client, signing, second, "undelivered", sid="SM2", code="30003")
    assert not _sms_suppressed(nurture_app)


def test_forged_status_callback_changes_nothing(nurture_app, make_contact, send, client, signing):
    message = send(make_contact(phone=PHONE, sms=True), step_index=1)
    params = {"MessageSid": "SMabc", "MessageStatus": "delivered", "To": PHONE}
    forged = signing.twilio_post(
        client, f"/webhooks/twilio/status?m={message}", params, token="wrong-token"
    )
    other_message = signing.twilio_post(
        client,
        f"/webhooks/twilio/status?m={message + 1}",
        params,
        signed_url=f"{signing.public_base}/webhooks/twilio/status?m={message}",
    )
    assert forged.status_code == 403 and other_message.status_code == 403
    assert _message(nurture_app, message).state == MessageState.SENT
    assert _events(nurture_app) == []
