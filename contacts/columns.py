"""Which CSV column holds which contact field: common header names by default, or staff's own.

Website forms, the booking system and event sheets all name their columns differently, so a
header is matched ignoring case, spaces and punctuation against a list of usual names. Anything
else becomes a custom field (usable by audiences and templates) unless a mapping ignores it.

A mapping file is TOML::

    ignore = ["Internal Notes"]   # columns to leave out (before any [section])
    [columns]                     # our field = their header
    email = "E-mail Address"
    phone = "Cell"
    [custom]                      # custom field name = their header
    insurance = "Insurance Provider"
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError

#: Our fields and the header names we recognise for each (compared after _squash).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "fname", "forename"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "full_name": ("name", "fullname", "contactname", "patientname"),
    "email": ("email", "emailaddress", "mail", "emailaddr"),
    "phone": (
        "phone",
        "phonenumber",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cell",
        "cellphone",
        "tel",
        "telephone",
        "smsnumber",
    ),
    "timezone": ("timezone", "tz", "zone", "ianatimezone"),
    "language": ("language", "idioma", "lang", "preferredlanguage", "lenguaje"),
    "tags": ("tags", "tag", "labels", "groups", "lists"),
    "consent_at": ("consentat", "consentdate", "optindate", "signupdate", "signedupat"),
    "email_consent": ("emailconsent", "emailoptin", "acceptsemail", "emailmarketing"),
    "email_consent_evidence": ("emailconsentevidence", "emailconsenttext", "emailoptinevidence"),
    "email_consent_at": ("emailconsentat", "emailconsentdate", "emailoptindate"),
    "sms_consent": ("smsconsent", "smsoptin", "textconsent", "acceptssms", "smsmarketing"),
    "sms_consent_evidence": (
        "smsconsentevidence",
        "smsconsenttext",
        "smsoptinevidence",
        "textconsentevidence",
    ),
    "sms_consent_at": ("smsconsentat", "smsconsentdate", "smsoptindate"),
    "email_suppression": ("emailsuppression", "emailsuppressed"),
    "sms_suppression": ("smssuppression", "smssuppressed"),
}
FIELDS = tuple(FIELD_ALIASES)
#: Columns the export writes for its own bookkeeping; an import reads past them.
EXPORT_ONLY = (
    "id",
    "created_at",
    "source",
    "erased_at",
    "email_consent_source",
    "sms_consent_source",
)


def _squash(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def custom_key(header: str) -> str:
    """A custom field name templates can use: "Insurance Provider" -> insurance_provider."""
    key = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return key or "column"


@dataclass(frozen=True)
class ColumnMapping:
    """What staff said: our field -> their header, custom name -> their header, headers to skip."""

    fields: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> ColumnMapping:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{path}: not a readable TOML mapping file: {exc}") from None
        unknown = set(data) - {"columns", "custom", "ignore"}
        if unknown:
            raise InputError(
                f"{path}: unknown sections {sorted(unknown)} (use columns, custom, ignore)"
            )
        for section in ("columns", "custom"):
            values = data.get(section, {})
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise InputError(f'{path}: [{section}] holds name = "Their Header" lines only')
        ignore = data.get("ignore", [])
        if not isinstance(ignore, list):
            raise InputError(f"{path}: ignore must be a list of headers, before any [section]")
        mapping = cls(
            fields=dict(data.get("columns", {})),
            custom={custom_key(k): v for k, v in data.get("custom", {}).items()},
            ignore=tuple(str(v) for v in ignore),
        )
        mapping.check()
        return mapping

    @classmethod
    def from_options(cls, pairs: list[str], base: ColumnMapping | None = None) -> ColumnMapping:
        """`--column our=theirs` pairs (our may be custom.NAME), layered over a mapping file."""
        fields = dict(base.fields) if base else {}
        custom = dict(base.custom) if base else {}
        for pair in pairs:
            ours, sep, theirs = pair.partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise InputError(f"--column {pair!r}: write it as our_field=Their Header")
            ours = ours.strip()
            if ours.startswith("custom."):
                custom[custom_key(ours.removeprefix("custom."))] = theirs.strip()
            else:
                fields[ours] = theirs.strip()
        mapping = cls(fields=fields, custom=custom, ignore=base.ignore if base else ())
        mapping.check()
        return mapping

    def check(self) -> None:
        unknown = sorted(set(self.fields) - set(FIELDS))
        if unknown:
            raise InputError(
                f"unknown field(s) {unknown} in the mapping; known: {', '.join(FIELDS)}"
            )


@dataclass(frozen=True)
class ColumnPlan:
    """Positions in a CSV row for each of our fields, and the custom fields to keep."""

    header: tuple[str, ...]
    fields: dict[str, int]
    custom: dict[str, int]

    def describe(self) -> list[tuple[str, str]]:
        """(header, what it becomes) for every column, for the CLI to show."""
        used = {index: name for name, index in self.fields.items()}
        used |= {index: f"custom field {name!r}" for name, index in self.custom.items()}
        return [(head, used.get(i, "ignored")) for i, head in enumerate(self.header)]


def plan_columns(header: list[str], mapping: ColumnMapping | None = None) -> ColumnPlan:
    """Match a header row to our fields; InputError names what is missing or ambiguous."""
    mapping = mapping or ColumnMapping()
    names = [h.strip() for h in header]
    if len(set(map(_squash, names))) != len(names):
        counts = Counter(map(_squash, names))
        dupes = [n for n in names if counts[_squash(n)] > 1]
        raise InputError(f"the header names a column twice: {', '.join(map(repr, dupes))}")
    position = {_squash(name): i for i, name in enumerate(names)}

    def find(theirs: str, what: str) -> int:
        index = position.get(_squash(theirs))
        if index is None:
            raise InputError(
                f"the mapping names column {theirs!r} for {what}, but the file has "
                f"no such column (it has: {', '.join(names)})"
            )
        return index

    fields = {ours: find(theirs, ours) for ours, theirs in mapping.fields.items()}
    custom = {name: find(theirs, f"custom field {name}") for name, theirs in mapping.custom.items()}
    taken = set(fields.values()) | set(custom.values())
    taken |= {position[_squash(h)] for h in mapping.ignore if _squash(h) in position}
    for ours, aliases in FIELD_ALIASES.items():
        if ours in fields:
            continue
        for alias in (_squash(ours), *aliases):
            if alias in position and position[alias] not in taken:
                fields[ours] = position[alias]
                taken.add(position[alias])
                break
    export_only = {_squash(h) for h in EXPORT_ONLY}
    for i, name in enumerate(names):
        if i not in taken and _squash(name) not in export_only and name:
            custom.setdefault(custom_key(name), i)
    if "email" not in fields and "phone" not in fields:
        raise InputError(
            "no email or phone column found (the file has: "
            f"{', '.join(names) or 'no columns'}); name one with --column email=YOUR_HEADER"
        )
    return ColumnPlan(header=tuple(names), fields=fields, custom=custom)
