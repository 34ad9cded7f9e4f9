"""Merge rules as properties: a row may add to a contact, never take away or lift a suppression."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts.merge import ContactState, MergeConflict, merge_row
from contacts.rows import CleanRow, Consent

EMAILS = ["a@example.com", "b@example.com"]
PHONES = ["+13105550101", "+13105550102"]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)

consent = st.one_of(
    st.none(),
    st.builds(Consent, st.sampled_from(["opted_in", "opted_out"]), st.just(WHEN),
              st.sampled_from(["", "signed form"])),
)  # fmt: skip
names = st.sampled_from(["", "Maria", "Ana"])
tags = st.sets(st.sampled_from(["web", "event", "vip"]))
custom = st.dictionaries(st.sampled_from(["insurance", "referrer"]), st.sampled_from(["x", "y"]))


@st.composite
def state_and_row(draw: st.DrawFn) -> tuple[ContactState, CleanRow]:
    state = ContactState(
        id=1,
        email=draw(st.sampled_from([None, EMAILS[0]])),
        phone=draw(st.sampled_from([None, PHONES[0]])),
        first_name=draw(names),
        last_name=draw(names),
        timezone="America/Los_Angeles",
        tags=draw(tags),
        custom=draw(custom),
        email_consent=draw(st.sampled_from([None, "opted_in", "opted_out"])),
        sms_consent=draw(st.sampled_from([None, "opted_in", "opted_out"])),
        suppressed=draw(st.sets(st.sampled_from(["email", "sms"]))),
    )
    email = draw(st.sampled_from([None, state.email or EMAILS[0]]))
    phone = draw(st.sampled_from([None, state.phone or PHONES[0]]))
    if email is None and phone is None:
        email = state.email or EMAILS[0]
    sms = draw(consent)
    row = CleanRow(
        line=2, email=email, phone=phone, first_name=draw(names), last_name=draw(names),
        timezone=None, phone_zone=None, tags=tuple(draw(tags)),
        custom_json=json.dumps(draw(custom)),
        email_consent=draw(consent),
        sms_consent=None if sms and sms.status == "opted_in" and not sms.evidence else sms,
        email_suppression=draw(st.sampled_from([None, "bounced"])),
        sms_suppression=draw(st.sampled_from([None, "stop"])),
        sms_without_evidence=False, email_hash="", phone_hash="",
    )  # fmt: skip
    return state, row


@given(state_and_row())
def test_merge_never_lifts_a_suppression_nor_opts_in_a_suppressed_address(
    case: tuple[ContactState, CleanRow],
) -> None:
    state, row = case
    result = merge_row(state, row)
    assert state.suppressed <= result.state.suppressed
    for channel in state.suppressed:
        assert (channel, "opted_in") not in {(ch, c.status) for ch, c in result.consents}


@given(state_and_row())
def test_merge_never_lowers_consent_to_nothing_nor_reopts_in(
    case: tuple[ContactState, CleanRow],
) -> None:
    state, row = case
    result = merge_row(state, row)
    for channel in ("email", "sms"):
        before, after = state.consent(channel), result.state.consent(channel)
        if before is not None:
            assert after is not None
        if before == "opted_out":
            assert after == "opted_out"


@given(state_and_row())
def test_sms_opt_in_needs_evidence(case: tuple[ContactState, CleanRow]) -> None:
    state, row = case
    for channel, given_consent in merge_row(state, row).consents:
        if channel == "sms" and given_consent.status == "opted_in":
            assert given_consent.evidence


@given(state_and_row())
def test_merge_only_adds_data(case: tuple[ContactState, CleanRow]) -> None:
    state, row = case
    after = merge_row(state, row).state
    assert state.tags <= after.tags
    assert set(row.tags) <= after.tags
    for name in ("first_name", "last_name", "email", "phone", "timezone"):
        if getattr(state, name):
            assert getattr(after, name) == getattr(state, name)
    for key, value in state.custom.items():
        assert after.custom[key] == value


@given(state_and_row())
def test_merging_the_same_row_twice_changes_nothing_the_second_time(
    case: tuple[ContactState, CleanRow],
) -> None:
    state, row = case
    once = merge_row(state, row)
    twice = merge_row(once.state, row)
    assert not twice.changed
    assert twice.state == once.state


def test_a_row_with_another_address_is_a_conflict() -> None:
    state = ContactState(id=1, email=EMAILS[0], phone=PHONES[0], timezone="UTC")
    row = CleanRow(2, EMAILS[0], PHONES[1], "", "", None, None, (), "{}", None, None, None, None,
                   False, "", "")  # fmt: skip
    with pytest.raises(MergeConflict, match="phone differs"):
        merge_row(state, row)
