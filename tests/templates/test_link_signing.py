"""Link tokens stay the stock itsdangerous tokens: links in messages already sent must keep
working whatever the signer's internals, and a token under another key or salt is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadSignature, TimestampSigner

from templates.links import InvalidToken, KeyedSigner, LinkSigner

SECRET = "link-signing-test-secret-0123456789"


@given(st.text(max_size=60))
def test_keyed_signer_makes_exactly_the_stock_signers_tokens(value):
    keyed = KeyedSigner(SECRET, salt="nurture.click")
    stock = TimestampSigner(SECRET, salt="nurture.click")
    fixed = 1_790_000_000
    keyed.get_timestamp = lambda: fixed  # type: ignore[method-assign]
    stock.get_timestamp = lambda: fixed  # type: ignore[method-assign]
    token = keyed.sign(value)
    assert token == stock.sign(value)
    assert stock.unsign(token).decode() == value
    assert keyed.unsign(stock.sign(value)).decode() == value


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
        KeyedSigner(SECRET, salt="nurture.unsubscribe").unsign(
            KeyedSigner(SECRET, salt="nurture.click").sign("7~booking")
        )


def test_the_signer_reads_back_what_it_signed():
    signer = LinkSigner(SECRET, "https://clinic.example/", 30)
    url = signer.click_url(42, "booking")
    assert url.startswith("https://clinic.example/l/")
    read = signer.read_click(url.rsplit("/", 1)[1])
    assert (read.message_id, read.destination) == (42, "booking")
    contact = signer.read_unsubscribe(signer.unsubscribe_url(9, "sms").rsplit("/", 1)[1])
    assert (contact.contact_id, str(contact.channel)) == (9, "sms")
