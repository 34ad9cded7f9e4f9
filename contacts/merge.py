"""How a row merges into a contact: it may add, never take away.

- An address fills an empty slot; a different address for the same person is a conflict the
  row is rejected for (two people never become one silently).
- Names and custom fields fill blanks only, tags are added, the time zone is kept: so the first
  value wins and re-importing any file, even one with duplicates, changes nothing.
- A language the row states is the contact's language from then on (every contact has one,
  English by default, so there is no blank to fill: the file is what staff know now).
- Consent is only raised from "never asked" to opted in, with the row's evidence; an opt-out is
  never turned back into an opt-in (only the person can do that: contacts.optout.opt_in_again).
- A suppressed address is never lifted and never opted in; a row may add a suppression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from contacts.rows import CleanRow, Consent
from core.languages import DEFAULT_LANGUAGE
from storage.models import ConsentStatus, SuppressionReason

CHANNELS = ("email", "sms")


class MergeConflict(Exception):
    """The row names an address that belongs to someone else (or the contact has another)."""


@dataclass
class ContactState:
    """What the merge needs to know about a contact (new ones have id None)."""

    id: int | None
    email: str | None = None
    phone: str | None = None
    first_name: str = ""
    last_name: str = ""
    timezone: str = ""
    tags: set[str] = field(default_factory=set)
    custom: dict[str, str] = field(default_factory=dict)
    email_consent: str | None = None
    sms_consent: str | None = None
    suppressed: set[str] = field(default_factory=set)  # channels with an active suppression
    language: str = DEFAULT_LANGUAGE

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def consent(self, channel: str) -> str | None:
        return self.email_consent if channel == "email" else self.sms_consent

    def copy(self) -> ContactState:
        return ContactState(
            self.id, self.email, self.phone, self.first_name, self.last_name, self.timezone,
            set(self.tags), dict(self.custom), self.email_consent, self.sms_consent,
            set(self.suppressed), self.language,
        )  # fmt: skip


@dataclass
class MergeResult:
    state: ContactState
    fields_changed: bool = False
    new_tags: list[str] = field(default_factory=list)
    consents: list[tuple[str, Consent]] = field(default_factory=list)
    suppressions: list[tuple[str, str]] = field(default_factory=list)  # (channel, reason)
    suppressions_kept: bool = False
    consent_kept: bool = False  # an opt-in the row claimed that an opt-out or suppression outranks

    @property
    def changed(self) -> bool:
        return bool(self.fields_changed or self.new_tags or self.consents or self.suppressions)

    @property
    def outcome(self) -> Literal["updated", "unchanged"]:
        return "updated" if self.changed else "unchanged"


def new_contact(row: CleanRow, default_timezone: str) -> ContactState:
    """A contact for a row nobody matches: zone as given, else the phone's, else the clinic's."""
    return ContactState(id=None, timezone=row.timezone or row.phone_zone or default_timezone)


def merge_row(before: ContactState, row: CleanRow) -> MergeResult:
    """Apply a row to a contact; MergeConflict if the row's addresses are not this contact's."""
    for channel, given in (("email", row.email), ("sms", row.phone)):
        have = before.address(channel)
        if given and have and given != have:
            raise MergeConflict(
                f"its {'email' if channel == 'email' else 'phone'} differs from "
                "the matching contact's"
            )
    state = before.copy()
    result = MergeResult(state=state)
    if row.email and state.email is None:
        state.email, result.fields_changed = row.email, True
    if row.phone and state.phone is None:
        state.phone, result.fields_changed = row.phone, True
    if row.first_name and not state.first_name:
        state.first_name, result.fields_changed = row.first_name, True
    if row.last_name and not state.last_name:
        state.last_name, result.fields_changed = row.last_name, True
    if row.language and row.language != state.language:
        state.language, result.fields_changed = row.language, True
    fresh_custom = {k: v for k, v in row.custom.items() if not state.custom.get(k)}
    if fresh_custom:
        state.custom.update(fresh_custom)
        result.fields_changed = True
    result.new_tags = [tag for tag in row.tags if tag not in state.tags]
    state.tags.update(result.new_tags)
    for channel in CHANNELS:
        _merge_channel(state, result, channel, row)
    return result


def _merge_channel(state: ContactState, result: MergeResult, channel: str, row: CleanRow) -> None:
    given = row.email if channel == "email" else row.phone
    if not given:
        return
    if channel in state.suppressed:
        result.suppressions_kept = True
    claimed = row.email_consent if channel == "email" else row.sms_consent
    reason = row.email_suppression if channel == "email" else row.sms_suppression
    opting_out = claimed is not None and claimed.status == ConsentStatus.OPTED_OUT
    if opting_out and not reason:
        reason = SuppressionReason.STOP if channel == "sms" else SuppressionReason.UNSUBSCRIBED
    if reason and channel not in state.suppressed:
        result.suppressions.append((channel, str(reason)))
        state.suppressed.add(channel)
    if opting_out and state.consent(channel) != ConsentStatus.OPTED_OUT:
        assert claimed is not None
        _set_consent(state, result, channel, claimed)
    if claimed is None or claimed.status != ConsentStatus.OPTED_IN:
        return
    if state.consent(channel) is None and channel not in state.suppressed:
        _set_consent(state, result, channel, claimed)
    elif state.consent(channel) != ConsentStatus.OPTED_IN:
        result.consent_kept = True


def _set_consent(state: ContactState, result: MergeResult, channel: str, consent: Consent) -> None:
    result.consents.append((channel, consent))
    setattr(state, f"{channel}_consent", consent.status)
