"""One reachability rule (contacts.reachability): opted in on the channel, an address on file,
not suppressed. The planner's and dispatcher's batched form (scheduler.checks.Facts) and an
event-started enrollment's (campaigns.triggers) answer alike, because both ask it."""

from __future__ import annotations

import itertools

import pytest

from contacts.reachability import contact_reachable, is_reachable, unreachable_because
from contacts.suppressions import hasher_of, suppress
from nurture.app import NurtureApp
from scheduler.checks import Facts, suppressed_among
from storage.db import transaction
from storage.models import ConsentStatus, Contact


class _Row:
    """A contact as the planner reads it (scheduler.checks.Reachable)."""

    def __init__(self, contact: Contact) -> None:
        self.contact, self.booked_at, self.erased_at = contact, None, None

    def address(self, channel: str) -> str | None:
        return self.contact.address(channel)

    def consent(self, channel: str) -> str | None:
        return self.contact.consent_for(channel)


def _never(channel: str, address: str) -> bool:
    return False


def _always(channel: str, address: str) -> bool:
    return True


def test_the_rule() -> None:
    opted_in, opted_out = ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value
    assert is_reachable(opted_in, "a@example.com", "email", _never)
    assert not is_reachable(opted_in, "a@example.com", "email", _always)
    assert not is_reachable(opted_out, "a@example.com", "email", _never)
    assert not is_reachable(None, "a@example.com", "email", _never)
    assert not is_reachable(opted_in, None, "email", _never)


def test_the_rule_says_why_in_staffs_words() -> None:
    """The reasons the simulator shows staff (scheduler.simulate) come from the same rule."""
    opted_in = ConsentStatus.OPTED_IN.value
    assert unreachable_because(opted_in, "+13105550140", "sms", _never) is None
    assert unreachable_because(opted_in, "+13105550140", "sms", _always) == "suppressed"
    assert unreachable_because(None, "+13105550140", "sms", _always) == "no sms consent"
    assert unreachable_because(opted_in, None, "email", _never) == "no email consent"


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_the_batched_form_and_the_single_contact_form_agree(
    nurture_app: NurtureApp, channel: str
) -> None:
    addresses: dict[str, list[str | None]] = {
        "email": ["a@example.com", "b@example.com"],
        "sms": ["+13105550141", None],
    }
    consents: list[str | None] = [ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value, None]
    with transaction(nurture_app.sessions) as session:
        blocked = addresses[channel][0]
        assert blocked is not None
        suppress(session, channel, blocked, "bounced", at=nurture_app.clock())
        hasher = hasher_of(session)
        for address, consent in itertools.product(addresses[channel], consents):
            contact = Contact(email=None, phone=None, email_consent=None, sms_consent=None)
            if channel == "email":
                contact.email, contact.email_consent = address, consent
            else:
                contact.phone, contact.sms_consent = address, consent
            hashes = {(channel, address): hasher(channel, address)} if address else {}
            facts = Facts([], {}, {}, suppressed_among(session, hashes.values()), hashes)
            single = contact_reachable(session, contact, channel)
            assert facts.reachable(_Row(contact), channel) == single, (address, consent)
            expected = consent == ConsentStatus.OPTED_IN and address not in (None, blocked)
            assert single == expected, (address, consent)
