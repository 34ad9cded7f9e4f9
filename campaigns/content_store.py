"""Sequences and their templates stored as versions in the database: who, when, what changed.

A version holds a sequence's definition (the TOML text as written, and its parsed data) and every
file of its template folder, by path under that folder (`01-welcome.html`, `es/02-cycle.sms.txt`),
exactly as written. Versions are never changed once saved: a campaign pins the one it launched
with, each planned message the one it was planned with (campaigns.content_render renders them),
so an edit after launch reaches only steps not yet planned, and only after `upgrade`.

`save_version` writes a new version only when something changed (by a hash of the TOML text and
the files), numbered 1, 2, ... per sequence, with the author, the app clock's time and a note
(given, or a summary of what changed). The folder form of versions (the seed, export and import)
is campaigns.content_folder.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence, load_sequence
from campaigns.toml_text import dump_toml
from core.errors import InputError, NotFound
from storage.models import ContentFile, ContentVersion

#: A template file's path under its sequence's folder: names, one language folder at most.
MAX_PATH = 255


@dataclass(frozen=True)
class Change:
    """What differs between two versions: the definition, and files added, changed, removed."""

    definition: bool
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    #: what differs in the definition: keys ("title"), steps ("step cycle-text", "added step x")
    settings: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.definition or bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        """One line, e.g. "definition: title, step cycle-text; changed es/02-cycle.sms.txt"."""
        parts = []
        if self.definition:
            parts.append(
                "definition: " + ", ".join(self.settings) if self.settings else "definition"
            )
        for verb, paths in (("added", self.added), ("changed", self.changed)):
            if paths:
                parts.append(f"{verb} {', '.join(paths)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        return "; ".join(parts) or "no change"


def content_hash(definition_text: str, files: Mapping[str, str]) -> str:
    """SHA-256 over the TOML text and each (path, text), in path order: equal hashes, equal
    content (lengths are hashed too, so no two contents run together into one stream)."""
    digest = hashlib.sha256()
    for part in (
        definition_text,
        *(item for path in sorted(files) for item in (path, files[path])),
    ):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def parse_definition(sequence: str, definition_text: str) -> dict[str, Any]:
    """The TOML's data, checked as a Sequence (one InputError naming every problem)."""
    try:
        data = tomllib.loads(definition_text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{sequence}: not valid TOML: {exc}") from None
    try:
        Sequence.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise InputError(f"{sequence}: " + "; ".join(problems)) from None
    if data["template_folder"] == "layouts":  # the layouts are code, shared by every sequence
        raise InputError(f"{sequence}: template_folder may not be the layouts' folder")
    converted: dict[str, Any] = _as_json(data)
    return converted


def _as_json(value: Any) -> Any:
    """TOML's dates and times as ISO text (the definitions' own fields accept it), for JSON."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def check_paths(files: Mapping[str, str]) -> None:
    """Relative paths inside the folder only: no `..`, no absolute path, no empty part."""
    for path in files:
        parts = path.split("/")
        if (
            not path
            or len(path) > MAX_PATH
            or "\\" in path
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        ):
            raise InputError(f"template path {path!r} is not a file name under the folder")


def current_version(session: Session, sequence: str) -> ContentVersion:
    """The newest version of `sequence`; NotFound when it has none."""
    version = session.scalar(
        select(ContentVersion)
        .where(ContentVersion.sequence == sequence)
        .order_by(ContentVersion.number.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(f"no sequence named {sequence!r} in the content store")
    return version


def get_version(session: Session, sequence: str, number: int) -> ContentVersion:
    version = session.scalar(
        select(ContentVersion).where(
            ContentVersion.sequence == sequence, ContentVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"sequence {sequence!r} has no version {number}")
    return version


def versions(session: Session, sequence: str) -> list[ContentVersion]:
    """Every version of `sequence`, oldest first."""
    return list(
        session.scalars(
            select(ContentVersion)
            .where(ContentVersion.sequence == sequence)
            .order_by(ContentVersion.number)
        )
    )


def sequence_names(session: Session) -> list[str]:
    return list(session.scalars(select(ContentVersion.sequence).distinct().order_by("sequence")))


def files_of(session: Session, version: ContentVersion | int) -> dict[str, str]:
    """The version's template files: path under the sequence's folder -> text."""
    version_id = version if isinstance(version, int) else version.id
    rows = session.execute(
        select(ContentFile.path, ContentFile.text)
        .where(ContentFile.version_id == version_id)
        .order_by(ContentFile.path)
    )
    return {path: text for path, text in rows}


def sequence_of(version: ContentVersion) -> Sequence:
    return Sequence.from_snapshot(version.definition)


def diff(
    session: Session,
    old: ContentVersion | None,
    new_text: str,
    new_files: Mapping[str, str],
) -> Change:
    """What `new_text` and `new_files` change from `old` (everything, when there is none)."""
    before = files_of(session, old) if old is not None else {}
    settings: tuple[str, ...] = ()
    if old is not None and old.definition_text != new_text:
        settings = definition_changes(old.definition, _as_json(tomllib.loads(new_text)))
    return Change(
        definition=old is None or old.definition_text != new_text,
        settings=settings,
        added=tuple(sorted(new_files.keys() - before.keys())),
        changed=tuple(
            sorted(p for p in new_files.keys() & before.keys() if new_files[p] != before[p])
        ),
        removed=tuple(sorted(before.keys() - new_files.keys())),
    )


def definition_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """What differs between two definitions' data, in staff's words; ("wording",) when only the
    file's text (a comment, spacing, "mon-sun" written as "mon,tue,...,sun") changed."""
    old, new = _as_read(old), _as_read(new)
    found = [
        key
        for key in sorted(old.keys() | new.keys())
        if key != "steps" and old.get(key) != new.get(key)
    ]
    before = {step["name"]: step for step in old.get("steps", [])}
    after = {step["name"]: step for step in new.get("steps", [])}
    found += [f"step {name}" for name in after if name in before and before[name] != after[name]]
    found += [f"added step {name}" for name in after if name not in before]
    found += [f"removed step {name}" for name in before if name not in after]
    if not found and list(before) != list(after):
        found.append("step order")
    return tuple(found) or ("wording",)


def _as_read(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A definition as the app reads it (its Sequence's snapshot), so two spellings of one
    setting (the editor writes a window's days out in full) are no change."""
    try:
        snapshot: dict[str, Any] = Sequence.model_validate(dict(data)).snapshot()
    except ValidationError:
        return data
    return snapshot


def save_version(
    session: Session,
    sequence: str,
    *,
    templates: Mapping[str, str],
    author: str,
    now: datetime,
    definition_text: str | None = None,
    definition: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> tuple[ContentVersion, bool]:
    """Save the sequence's definition (TOML text as written, or data written out as TOML) and its
    template files; returns (the current version, whether it is new). Nothing is written when
    the content equals the current version's. Raises InputError for a definition that does not
    parse or check, or a path outside the folder."""
    if definition_text is None:
        if definition is None:
            raise InputError("a version needs its definition (TOML text or data)")
        definition_text = dump_toml(dict(definition))
    files = dict(templates)
    check_paths(files)
    data = parse_definition(sequence, definition_text)
    digest = content_hash(definition_text, files)
    try:
        latest: ContentVersion | None = current_version(session, sequence)
    except NotFound:
        latest = None
    if latest is not None and latest.content_hash == digest:
        return latest, False
    change = diff(session, latest, definition_text, files)
    version = add_version(
        session,
        sequence,
        definition_text=definition_text,
        definition=data,
        files=files,
        author=author,
        created_at=now,
        note=note if note is not None else change.summary(),
        digest=digest,
    )
    return version, True


def add_version(
    session: Session,
    sequence: str,
    *,
    definition_text: str,
    definition: dict[str, Any],
    files: Mapping[str, str],
    author: str,
    created_at: datetime,
    note: str,
    digest: str,
) -> ContentVersion:
    """Append the next version as given (save_version and an import use it; neither rewrites a
    version that exists)."""
    number = (
        session.scalar(
            select(func.max(ContentVersion.number)).where(ContentVersion.sequence == sequence)
        )
        or 0
    ) + 1
    version = ContentVersion(
        sequence=sequence,
        number=number,
        author=author,
        created_at=created_at,
        note=note,
        definition_text=definition_text,
        definition=definition,
        content_hash=digest,
    )
    session.add(version)
    session.flush()
    session.add_all(ContentFile(version_id=version.id, path=p, text=t) for p, t in files.items())
    session.flush()
    return version


def launchable(session: Session, name_or_path: str) -> tuple[Sequence, ContentVersion | None]:
    """What `campaigns launch NAME` launches: the current stored version of NAME, to pin; a
    .toml path, or a name the store lacks, from its file as before versions (nothing pinned)."""
    if not name_or_path.endswith(".toml"):
        try:
            version = current_version(session, name_or_path)
        except NotFound:
            pass
        else:
            return sequence_of(version), version
    return load_sequence(name_or_path), None
