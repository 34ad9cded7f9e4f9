"""Link tokens are the stock itsdangerous tokens: links in messages already sent must keep
working, and a token under another key or salt, expired or too long is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadSignature, TimestampSigner

from templates.links import InvalidToken, LinkSigner

SECRET = "link-signing-test-secret-0123456789"


@given(st.integers(min_value=1, max_value=10**12), st.sampled_from(["booking", "site"]))
def test_tokens_are_exactly_the_stock_signers(message_id, destination):
    signer = LinkSigner(SECRET, "https://clinic.example", 30)
    stock = TimestampSigner(SECRET, salt="nurture.click")
    token = signer.click_url(message_id, destination).rsplit("/", 1)[1]
    assert stock.unsign(token).decode() == f"{message_id}~{destination}"
    read = signer.read_click(stock.sign(f"{message_id}~{destination}").decode())
    assert (read.message_id, read.destination) == (message_id, destination)


def test_a_token_signed_with_another_key_or_purpose_is_refused():
    signer = LinkSigner(SECRET, "https://clinic.example", 30)
    stranger = LinkSigner("another-secret-0123456789abcdef", "https://clinic.example", 30)
    forged = stranger.click_url(7, "booking").rsplit("/", 1)[1]
    with pytest.raises(InvalidToken):
        signer.read_click(forged)
    unsubscribe = signer.unsubscribe_url(7, "email").rsplit("/", 1)[1]
    with pytest.raises(InvalidToken):
        signer.read_click(unsubscribe)
    with pytest.raises(BadSignature):
        TimestampSigner(SECRET, salt="nurture.unsubscribe").unsign(
            TimestampSigner(SECRET, salt="nurture.click").sign("7~booking")
        )


def test_expired_and_oversized_tokens_are_refused(monkeypatch):
    signer = LinkSigner(SECRET, "https://clinic.example", 30)
    token = signer.click_url(7, "booking").rsplit("/", 1)[1]
    signed_at = TimestampSigner(SECRET, salt="nurture.click").unsign(token, return_timestamp=True)[
        1
    ]
    later = signed_at.timestamp() + signer.max_age + 1
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(later))
    with pytest.raises(InvalidToken, match="expired"):
        signer.read_click(token)
    monkeypatch.undo()
    with pytest.raises(InvalidToken, match="too long"):
        signer.read_click(token + "x" * 200)


def test_the_signer_reads_back_what_it_signed():
    signer = LinkSigner(SECRET, "https://clinic.example/", 30)
    url = signer.click_url(42, "booking")
    assert url.startswith("https://clinic.example/l/")
    read = signer.read_click(url.rsplit("/", 1)[1])
    assert (read.message_id, read.destination) == (42, "booking")
    contact = signer.read_unsubscribe(signer.unsubscribe_url(9, "sms").rsplit("/", 1)[1])
    assert (contact.contact_id, str(contact.channel)) == (9, "sms")
