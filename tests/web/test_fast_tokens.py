"""The hot paths' accept-only token check never accepts what itsdangerous would refuse."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner

from templates.links import InvalidToken, LinkSigner
from web.fast_tokens import FastTokenReader

SECRET = "fast-token-test-secret-0123456789"
SIGNER = LinkSigner(SECRET, "http://x", 400)
FAST = FastTokenReader(SECRET, "click", SIGNER.max_age)


def _token(message_id: int, destination: str) -> str:
    return SIGNER.click_url(message_id, destination).rsplit("/", 1)[1]


@given(st.integers(1, 10**12), st.sampled_from(["booking", "article", "x-y"]))
def test_accepts_what_the_signer_made(message_id, destination):
    assert FAST.payload(_token(message_id, destination)) == f"{message_id}~{destination}"


@settings(max_examples=300)
@given(
    st.integers(1, 10**6),
    st.integers(0, 80),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_.~=", max_size=3),
    st.booleans(),
)
def test_tampered_tokens_are_never_accepted_alone(message_id, position, insert, replace):
    token = _token(message_id, "booking")
    position = min(position, len(token))
    cut = position + (len(insert) if replace else 0)
    tampered = token[:position] + insert + token[cut:]
    fast = FAST.payload(tampered)
    if fast is None:
        return
    # Whatever the fast check accepts, itsdangerous accepts too, with the same payload.
    assert SIGNER.read_click(tampered) is not None
    assert fast == f"{SIGNER.read_click(tampered).message_id}~booking"


def test_expired_future_and_other_purpose_tokens_are_left_to_the_signer(monkeypatch):
    old = TimestampSigner(SECRET, salt="nurture.click")
    monkeypatch.setattr(old, "get_timestamp", lambda: int(time.time()) - SIGNER.max_age - 10)
    expired = old.sign("5~booking").decode()
    monkeypatch.setattr(old, "get_timestamp", lambda: int(time.time()) + 3600)
    future = old.sign("5~booking").decode()
    unsubscribe = SIGNER.unsubscribe_url(5, "email").rsplit("/", 1)[1]
    for token in (expired, future, unsubscribe, "", "a.b", "..", "é.x.y"):
        assert FAST.payload(token) is None
    try:
        SIGNER.read_click(expired)
        raise AssertionError("itsdangerous accepted an expired token")
    except InvalidToken:
        pass


def test_switches_itself_off_when_the_scheme_disagrees():
    reader = FastTokenReader("another-secret-0123456789abcdef", "click", SIGNER.max_age)
    reader.check_against(_token(1, "booking"), "1~booking")
    assert not reader.enabled and reader.payload(_token(1, "booking")) is None
