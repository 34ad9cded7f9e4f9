"""The Twilio form: the fields the SDK itself would post, encoded by `urlencode`."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from providers.base import OutgoingSms
from providers.twilio import form

SID = "AC" + "c" * 32


class Recorder(HttpClient):
    """The SDK's documented seam for a custom HTTP client: it records what the SDK would post
    and answers as Twilio does, so no request leaves the process."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("twilio-recorder"), is_async=False)
        self.posted: list[dict[str, object]] = []

    def request(self, method: str, uri: str, *args: Any, **kwargs: Any) -> Response:
        self.posted.append(dict(kwargs.get("data") or {}))
        return Response(201, '{"sid": "SM' + "a" * 32 + '", "status": "queued"}')


def sdk_form(sms: OutgoingSms) -> dict[str, object]:
    recorder = Recorder()
    client = Client(SID, "token", http_client=recorder)
    sender = (
        {"messaging_service_sid": sms.messaging_service_sid}
        if sms.messaging_service_sid
        else {"from_": sms.from_number}
    )
    client.messages.create(
        to=sms.to, body=sms.body, status_callback=sms.status_callback or None, **sender
    )
    return recorder.posted[0]


# No deadline: the first example imports twilio.rest, which takes seconds on a busy machine.
@settings(deadline=None)
@given(
    to=st.text(min_size=1),
    body=st.text(min_size=1),
    sender=st.text(min_size=1),
    service=st.one_of(st.just(""), st.text(min_size=1)),
    callback=st.one_of(st.just(""), st.text(min_size=1)),
)
def test_the_form_has_the_fields_the_sdk_posts(
    to: str, body: str, sender: str, service: str, callback: str
) -> None:
    sms = OutgoingSms(1, to, body, sender, service, callback)
    assert form(sms) == sdk_form(sms)


def test_a_text_with_emoji_and_link_reads_back_as_sent() -> None:
    sms = OutgoingSms(
        message_id=7,
        to="+13105550100",
        body="Spasm relief 😀 & more: https://clinic.example/l/7~booking.x Reply STOP",
        from_number="+13105550199",
        status_callback="https://clinic.example/webhooks/twilio/status?m=7",
    )
    fields = parse_qs(urlencode(form(sms)), strict_parsing=True)
    assert fields == {
        "To": ["+13105550100"],
        "Body": ["Spasm relief 😀 & more: https://clinic.example/l/7~booking.x Reply STOP"],
        "From": ["+13105550199"],
        "StatusCallback": ["https://clinic.example/webhooks/twilio/status?m=7"],
    }
