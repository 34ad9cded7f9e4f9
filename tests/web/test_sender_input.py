"""No 5xx on anything a sender controls: each webhook's headers and fields, fuzzed with hypothesis.

Signed requests are signed for real (Twilio's HMAC, SendGrid's ECDSA, our booking HMAC), so the
fuzzed fields reach the parsing behind the signature check. Text includes digits that
`str.isdigit()` accepts but `int()` refuses (a superscript one, U+00B9), other scripts' digits
(Arabic-Indic, full-width), overlong numbers, floats and non-strings in JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact
from web.app import create_app
from web.webhooks.booking import sign

TWILIO_TOKEN = "twilio-test-auth-token-0123456789"  # tests/web/conftest.py sets these
BOOKING_SECRET = "booking-shared-secret-0123456789"
PUBLIC_BASE = "http://127.0.0.1:8000"
SENDGRID_STAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"

TRICKY = [
    "1\xb9",  # a superscript one: isdigit() is true, int() raises
    "\xb2\xb3",
    "\u0663\u0664",  # Arabic-Indic digits: int() reads them
    "\uff11\uff12",  # full-width digits
    "9" * 30,
    "9" * 5000,  # past int()'s 4300-digit limit
    "-1",
    "1e400",
    "NaN",
    " 17 ",
    "",
    "0x1f",
    "30003",
]
text = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.integers().map(str),
)
json_value = st.one_of(
    text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
FUZZ = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def header(value: str) -> bytes:
    """As a client would send it: latin-1 where it can (so "1\xb9" arrives as itself)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def raw_post(app: Any, path: str, headers: dict[str, bytes], body: bytes) -> int:
    """POST through the ASGI interface itself: the test client re-encodes header values as
    UTF-8, while a real server hands the app the bytes the sender sent (Starlette reads them
    as latin-1, so a 0xB9 byte is the superscript one)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode()),
                    *((name.lower().encode(), value) for name, value in headers.items())],
    }  # fmt: skip
    try:
        asyncio.run(app(scope, receive, send))
    except Exception:  # Starlette re-raises after answering 500; the status is what counts
        pass
    return next(int(m["status"]) for m in sent if m["type"] == "http.response.start")


@pytest.fixture
def web_app(sqlite_app: NurtureApp) -> Any:
    return create_app(sqlite_app)


@pytest.fixture
def client(web_app: Any) -> Iterator[TestClient]:
    yield TestClient(web_app, raise_server_exceptions=False)


def _now(app: NurtureApp) -> int:
    return int(app.clock().timestamp())


# -- SendGrid ---------------------------------------------------------------------------------
def _sendgrid(client: TestClient, body: bytes, stamp: str, key: ec.EllipticCurvePrivateKey) -> Any:
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        SENDGRID_STAMP: stamp,
        SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
    }
    return client.post("/webhooks/sendgrid/events", content=body, headers=headers)


def test_a_superscript_digit_in_the_sendgrid_timestamp_is_a_403(web_app: Any) -> None:
    headers = {SENDGRID_STAMP: b"1\xb9", SENDGRID_SIGNATURE: b"MEUCIQ=="}
    assert raw_post(web_app, "/webhooks/sendgrid/events", headers, b"[]") == 403


def test_sendgrid_headers_never_crash(web_app: Any) -> None:
    @FUZZ
    @given(stamp=text, signature=text)
    def check(stamp: str, signature: str) -> None:
        headers = {SENDGRID_STAMP: header(stamp), SENDGRID_SIGNATURE: header(signature)}
        status = raw_post(web_app, "/webhooks/sendgrid/events", headers, b"[]")
        assert status < 500, stamp

    check()


def test_signed_sendgrid_event_fields_never_crash(
    client: TestClient, sqlite_app: NurtureApp, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    names = st.sampled_from(
        ["sg_event_id", "event", "email", "timestamp", "nurture_message_id", "type", "reason",
         "status", "sg_message_id", "bounce_classification", "response"]
    )  # fmt: skip
    base = {"sg_event_id": "e", "event": "delivered", "email": "a@example.com"}

    @FUZZ
    @given(fields=st.dictionaries(names, json_value, max_size=6), n=st.integers(0, 10**9))
    def check(fields: dict[str, Any], n: int) -> None:
        event = {**base, "sg_event_id": f"e{n}", **fields}
        body = json.dumps([event]).encode()
        response = _sendgrid(client, body, str(_now(sqlite_app)), sendgrid_key)
        assert response.status_code < 500, (event, response.text[:200])

    check()


@pytest.mark.parametrize("message_id", ["1\xb9", "\u0663", "9" * 5000])
def test_a_signed_odd_message_id_is_ignored(
    client: TestClient, sqlite_app: NurtureApp, sendgrid_key: ec.EllipticCurvePrivateKey,
    message_id: str,
) -> None:  # fmt: skip
    event = {"sg_event_id": "x", "event": "delivered", "nurture_message_id": message_id}
    response = _sendgrid(client, json.dumps([event]).encode(), str(_now(sqlite_app)), sendgrid_key)
    assert response.status_code == 200


# -- Twilio -----------------------------------------------------------------------------------
def _twilio(client: TestClient, path: str, params: dict[str, str], query: str = "") -> Any:
    url = f"{PUBLIC_BASE}{path}{query}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    return client.post(
        f"{path}{query}",
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )


twilio_names = st.sampled_from(
    ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode", "ErrorMessage", "To",
     "From", "Body", "OptOutType"]
)  # fmt: skip


def test_signed_twilio_status_fields_never_crash(client: TestClient) -> None:
    @FUZZ
    @given(fields=st.dictionaries(twilio_names, text, max_size=6), m=st.none() | text)
    def check(fields: dict[str, str], m: str | None) -> None:
        params = {"MessageSid": "SM1", "MessageStatus": "failed", **fields}
        query = "" if m is None else "?" + urlencode({"m": m})
        response = _twilio(client, "/webhooks/twilio/status", params, query)
        assert response.status_code < 500, (params, m, response.text[:200])

    check()


@pytest.mark.parametrize("field", ["ErrorCode", "m"])
def test_a_signed_superscript_digit_in_twilio_status_is_not_a_500(
    client: TestClient, field: str
) -> None:
    params = {"MessageSid": "SM9", "MessageStatus": "failed", "ErrorCode": "30003"}
    query = ""
    if field == "m":
        query = "?" + urlencode({"m": "1\xb9"})
    else:
        params["ErrorCode"] = "3\xb9"
    assert _twilio(client, "/webhooks/twilio/status", params, query).status_code == 204


def test_signed_twilio_inbound_fields_never_crash(client: TestClient) -> None:
    @FUZZ
    @given(fields=st.dictionaries(twilio_names, text, max_size=6), n=st.integers(0, 10**9))
    def check(fields: dict[str, str], n: int) -> None:
        params = {"MessageSid": f"SM{n}", "From": "+13105550123", "Body": "hi", **fields}
        response = _twilio(client, "/webhooks/twilio/inbound", params)
        assert response.status_code < 500, (params, response.text[:200])

    check()


def test_twilio_headers_never_crash(web_app: Any) -> None:
    @FUZZ
    @given(signature=text, content_type=text)
    def check(signature: str, content_type: str) -> None:
        headers = {"Content-Type": header(content_type), "X-Twilio-Signature": header(signature)}
        for path in ("/webhooks/twilio/status", "/webhooks/twilio/inbound"):
            status = raw_post(web_app, path, headers, b"MessageSid=SM1&MessageStatus=sent")
            assert status < 500, (signature, content_type)

    check()


# -- booking ----------------------------------------------------------------------------------
def _booking(client: TestClient, body: bytes, signature: str) -> Any:
    headers = {"Content-Type": "application/json", "X-Nurture-Signature": signature}
    return client.post("/webhooks/booking", content=body, headers=headers)


def test_booking_signature_header_never_crashes(web_app: Any) -> None:
    digests = st.one_of(text, st.just("0" * 64))

    @FUZZ
    @given(stamp=text, digest=digests, whole=st.none() | text)
    def check(stamp: str, digest: str, whole: str | None) -> None:
        value = whole if whole is not None else f"t={stamp},sha256={digest}"
        headers = {"Content-Type": b"application/json", "X-Nurture-Signature": header(value)}
        assert raw_post(web_app, "/webhooks/booking", headers, b"{}") < 500, value

    check()


@pytest.fixture
def booked_contact(sqlite_app: NurtureApp) -> str:
    """A contact the booking notices name, so they reach mark_booked."""
    with transaction(sqlite_app.sessions) as session:
        session.add(Contact(email="someone@example.com", timezone="America/Los_Angeles"))
    return "someone@example.com"


def test_signed_booking_fields_never_crash(
    client: TestClient, sqlite_app: NurtureApp, booked_contact: str
) -> None:
    names = st.sampled_from(["booking_id", "email", "phone", "booked_at"])
    moments = st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
        st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]),
    )

    @FUZZ
    @given(
        fields=st.dictionaries(names, st.one_of(json_value, moments), max_size=4),
        n=st.integers(0, 10**9),
    )
    def check(fields: dict[str, Any], n: int) -> None:
        notice = {"booking_id": f"b{n}", "email": booked_contact, **fields}
        body = json.dumps(notice).encode()
        response = _booking(client, body, sign(BOOKING_SECRET, body, _now(sqlite_app)))
        assert response.status_code < 500, (notice, response.text[:200])

    check()


@pytest.mark.parametrize("booked_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_booking_time_at_the_end_of_the_calendar_is_a_422(
    client: TestClient, sqlite_app: NurtureApp, booked_contact: str, booked_at: str
) -> None:
    body = json.dumps({"booking_id": "edge", "email": booked_contact, "booked_at": booked_at})
    response = _booking(
        client, body.encode(), sign(BOOKING_SECRET, body.encode(), _now(sqlite_app))
    )
    assert response.status_code == 422
