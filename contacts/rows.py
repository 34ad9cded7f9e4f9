"""One CSV row checked and normalised into a CleanRow, or rejected with a reason staff can act on.

Pure functions with no database, so worker processes can run them on both cores (the import's
cost is almost all here: email-validator and phonenumbers).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from contacts.columns import ColumnPlan
from contacts.normalize import (
    DEFAULT_REGION,
    normalize_email,
    normalize_timezone,
    phone_and_zone,
)
from core.errors import InputError
from core.languages import LANGUAGE_NAMES, LANGUAGE_WORDS
from core.suppression_hash import SuppressionHasher
from storage.models import ConsentStatus, SuppressionReason

YES_WORDS = frozenset(
    {"yes", "y", "true", "1", "opted_in", "optedin", "opt-in", "opt in", "x", "subscribed", "on"}
)
NO_WORDS = frozenset({"", "no", "n", "false", "0", "none", "off", "unknown"})
OUT_WORDS = frozenset(
    {"opted_out", "optedout", "opt-out", "opt out", "unsubscribed", "stop", "stopped"}
)
SUPPRESSION_WORDS = {reason.value: reason.value for reason in SuppressionReason} | {"": ""}
TAG_SPLIT = re.compile(r"[,;|]")
US_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%y")
MAX_NAME, MAX_TAG, MAX_EVIDENCE = 100, 64, 2000


class Consent(NamedTuple):
    status: str  # ConsentStatus value
    at: datetime | None  # when given; None means "at import time"
    evidence: str


class CleanRow(NamedTuple):
    """A checked row. Worker processes send millions of these to the writing process, whose
    single core is the import's bottleneck, so they are made cheap to unpickle there: custom
    fields travel as their JSON text (a dict costs several times more to unpickle) and the row
    as a plain tuple (see __reduce__)."""

    line: int
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    timezone: str | None  # as given in the file
    phone_zone: str | None  # from the phone number, when the file gave none
    tags: tuple[str, ...]
    custom_json: str  # custom fields as stored (json.dumps, as SQLAlchemy's JSON type does)
    email_consent: Consent | None
    sms_consent: Consent | None
    email_suppression: str | None
    sms_suppression: str | None
    sms_without_evidence: bool
    email_hash: str  # suppression keys (contacts.suppressions.address_hash), made here on
    phone_hash: str  # the workers' cores (or "" when RowRules.hasher is None)
    language: str = ""  # a code of core.languages, or "" when the row does not say

    @property
    def custom(self) -> dict[str, str]:
        return dict(json.loads(self.custom_json))

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # tuple.__new__ is C; a NamedTuple's own __new__ is a Python call with 16 arguments.
        return tuple.__new__, (CleanRow, tuple(self))


class Rejected(NamedTuple):
    line: int
    reason: str
    values: list[str]  # the row as it was, for the rejects file


@dataclass(frozen=True)
class RowRules:
    """Everything a worker needs to check rows, picklable."""

    plan: ColumnPlan
    clinic_timezone: str
    now: datetime
    region: str = DEFAULT_REGION
    check_encoding: bool = False
    #: The install's suppression hasher (keyed; pickled as its derived key, never the secret).
    #: Suppression keys are only looked up when the suppression list has entries; with an
    #: empty list (a first import) it is None, the workers skip hashing and the writer hashes
    #: on demand.
    hasher: SuppressionHasher | None = None


def warm_up() -> None:
    """Load the validators' lazily built tables: every NANP region's phone metadata (an
    unassigned area code makes phonenumbers try them all), time zone names, IDNA data."""
    normalize_email("warm.up@example.com")
    normalize_timezone("UTC")
    for number in ("+1 310 555 0101", "+1 999 555 0101"):
        try:
            phone_and_zone(number)
        except InputError:
            pass


def clean_rows(rules: RowRules, rows: list[tuple[int, list[str]]]) -> list[CleanRow | Rejected]:
    out: list[CleanRow | Rejected] = []
    for line, values in rows:
        try:
            out.append(clean_row(rules, line, values))
        except InputError as exc:
            out.append(Rejected(line, str(exc), values))
    return out


def clean_row(rules: RowRules, line: int, values: list[str]) -> CleanRow:
    plan = rules.plan
    width = len(plan.header)
    if len(values) != width:
        if len(values) < width or any(v.strip() for v in values[width:]):
            raise InputError(f"has {len(values)} fields, the header has {width}")
    if rules.check_encoding:
        try:
            "".join(values).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("holds bytes that are not valid text in the file's encoding") from None

    given = {name: values[index].strip() for name, index in plan.fields.items()}

    def get(name: str) -> str:
        return given.get(name, "")

    email = normalize_email(get("email")) if get("email") else None
    phone, phone_zone = phone_and_zone(get("phone"), rules.region) if get("phone") else (None, None)
    if email is None and phone is None:
        raise InputError("has neither an email nor a phone")
    first, last = get("first_name"), get("last_name")
    if not first and not last and get("full_name"):
        first, _, last = (
            get("full_name").rpartition(" ")
            if " " in get("full_name")
            else (get("full_name"), "", "")
        )
    for what, text in (("first name", first), ("last name", last)):
        if len(text) > MAX_NAME:
            raise InputError(f"{what} is longer than {MAX_NAME} characters")
    zone = normalize_timezone(get("timezone")) if get("timezone") else None
    tags = tuple(
        dict.fromkeys(sys.intern(t.strip()) for t in TAG_SPLIT.split(get("tags")) if t.strip())
    )
    long_tags = [t for t in tags if len(t) > MAX_TAG]
    if long_tags:
        raise InputError(f"tag {long_tags[0][:20]!r}... is longer than {MAX_TAG} characters")
    custom = {n: values[i].strip() for n, i in plan.custom.items() if values[i].strip()}
    shared_at = _when(get("consent_at"), "consent_at", rules)
    email_consent = _consent("email", get, shared_at, rules)
    sms_consent = _consent("sms", get, shared_at, rules)
    no_proof = sms_consent is not None and sms_consent.status == "" and phone is not None
    return CleanRow(
        line=line,
        email=email,
        phone=phone,
        first_name=first,
        last_name=last,
        timezone=zone,
        phone_zone=phone_zone if zone is None else None,
        tags=tags,
        custom_json=_json(custom),
        email_consent=email_consent if email else None,
        sms_consent=sms_consent if phone and sms_consent and sms_consent.status else None,
        email_suppression=_suppression(get("email_suppression"), "email_suppression"),
        sms_suppression=_suppression(get("sms_suppression"), "sms_suppression"),
        sms_without_evidence=no_proof,
        email_hash=rules.hasher("email", email) if email and rules.hasher else "",
        phone_hash=rules.hasher("sms", phone) if phone and rules.hasher else "",
        language=_language(get("language")),
    )


def _consent(
    channel: str, get: Callable[[str], str], shared_at: datetime | None, rules: RowRules
) -> Consent | None:
    """The row's statement about a channel; an SMS "yes" without evidence has status ""."""
    column = f"{channel}_consent"
    said = get(column).lower()
    evidence = sys.intern(get(f"{column}_evidence"))
    if len(evidence) > MAX_EVIDENCE:
        raise InputError(f"{column}_evidence is longer than {MAX_EVIDENCE} characters")
    at = _when(get(f"{column}_at"), f"{column}_at", rules) or shared_at
    if said in NO_WORDS:
        return None
    if said in OUT_WORDS:
        return _shared(Consent(ConsentStatus.OPTED_OUT.value, at, evidence))
    if said not in YES_WORDS:
        raise InputError(f"{column} {get(column)!r} is not one of yes / no / opted_out")
    if channel == "sms" and not evidence:
        # TCPA: marketing texts need prior express written consent; no proof, no texts.
        return _shared(Consent("", at, ""))
    return _shared(Consent(ConsentStatus.OPTED_IN.value, at, evidence))


def _shared(consent: Consent) -> Consent:
    """One object per distinct statement: files repeat the same few, and pickle then sends each
    once per chunk instead of once per row."""
    if len(_CONSENTS) > 10_000:
        _CONSENTS.clear()
    return _CONSENTS.setdefault(consent, consent)


_CONSENTS: dict[Consent, Consent] = {}


def _json(custom: dict[str, str]) -> str:
    return json.dumps(custom) if custom else "{}"


def _when(text: str, column: str, rules: RowRules) -> datetime | None:
    """An ISO or US (MM/DD/YYYY) date; a time without a zone is clinic time. Returned in UTC."""
    if not text:
        return None
    key = (text, rules.clinic_timezone, rules.now)
    if key not in _WHEN_CACHE:
        if len(_WHEN_CACHE) > 10_000:
            _WHEN_CACHE.clear()
        _WHEN_CACHE[key] = _parse_when(text, column, rules)
    return _WHEN_CACHE[key]


#: Files repeat the same few dates; one object per date also lets pickle send it once per chunk.
_WHEN_CACHE: dict[tuple[str, str, datetime], datetime] = {}


def _parse_when(text: str, column: str, rules: RowRules) -> datetime:
    parsed = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in US_DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise InputError(f"{column} {text!r} is not a date (use 2026-03-01 or 03/01/2026)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(rules.clinic_timezone))
    if parsed > rules.now + timedelta(days=1):
        raise InputError(f"{column} {text!r} is in the future")
    return parsed.astimezone(UTC)


def _language(text: str) -> str:
    """A language code for what the row says ("ES", "Spanish", "español" -> "es"): one dict
    lookup (the import runs it a million times); "" when the row says nothing, so the contact
    keeps (or gets) its language."""
    if not text:
        return ""
    code = LANGUAGE_WORDS.get(text.lower())
    if code is None:
        raise InputError(
            f"language {text!r} is not one we write in "
            f"(use {' or '.join(LANGUAGE_NAMES)}, or e.g. English, Spanish, español)"
        )
    return code


def _suppression(text: str, column: str) -> str | None:
    reason = SUPPRESSION_WORDS.get(text.lower())
    if reason is None:
        raise InputError(
            f"{column} {text!r} is not a suppression reason "
            f"({', '.join(r.value for r in SuppressionReason)})"
        )
    return reason or None
