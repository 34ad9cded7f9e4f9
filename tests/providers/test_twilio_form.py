"""The pooled Twilio path's form is exactly the one urlencode (the SDK's encoding) would post."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from hypothesis import given
from hypothesis import strategies as st

from providers.base import OutgoingSms
from providers.twilio import form, form_body

callbacks = st.one_of(
    st.just(""),
    st.integers(min_value=1, max_value=10**12).map(
        lambda n: f"https://clinic.example/webhooks/twilio/status?m={n}"
    ),
    st.text(),  # any value: a prefix quoted once must still give the same bytes
)


@given(
    to=st.text(),
    body=st.text(),
    sender=st.text(),
    service=st.one_of(st.just(""), st.text()),
    callback=callbacks,
)
def test_form_body_is_byte_for_byte_urlencode(
    to: str, body: str, sender: str, service: str, callback: str
) -> None:
    sms = OutgoingSms(
        message_id=1,
        to=to,
        body=body,
        from_number=sender,
        messaging_service_sid=service,
        status_callback=callback,
    )
    assert form_body(sms) == urlencode(form(sms)).encode()


def test_a_text_with_emoji_and_link_reads_back_as_sent() -> None:
    sms = OutgoingSms(
        message_id=7,
        to="+13105550100",
        body="Spasm relief 😀 & more: https://clinic.example/l/7~booking.x Reply STOP",
        from_number="+13105550199",
        status_callback="https://clinic.example/webhooks/twilio/status?m=7",
    )
    fields = parse_qs(form_body(sms).decode(), strict_parsing=True)
    assert fields == {
        "To": ["+13105550100"],
        "Body": ["Spasm relief 😀 & more: https://clinic.example/l/7~booking.x Reply STOP"],
        "From": ["+13105550199"],
        "StatusCallback": ["https://clinic.example/webhooks/twilio/status?m=7"],
    }
