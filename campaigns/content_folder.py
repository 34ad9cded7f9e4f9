"""Content as files: the seed of an empty database, and `nurture content export|import DIR`.

A content folder is the layout the repository has always had, so a review can diff it:
`campaigns/<sequence>.toml` and `templates/<template_folder>/...` (layouts stay code: they are
read from the package, never from content). The `[content] folder` setting names one for an
install; by default the package's own `campaigns/` and `templates/` are the seed.

An export is a content folder holding each sequence's current version, plus every version under
`versions/<sequence>/v<N>/` (`<sequence>.toml` and `templates/...`) and `manifest.json` (author,
time, note of each). Files are written and read as bytes of UTF-8, never re-encoded or given other
line endings, so export -> import into an empty database -> export gives the same bytes.

An import reads the versions (one equal by hash to a version the sequence has is skipped; the
others are appended with their author, time and note), then the current-version files, which
become a new version (author "import") where someone edited them: a reviewed change lands by
editing an export and importing it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import CAMPAIGNS_DIR
from campaigns.content_store import (
    add_version,
    check_paths,
    content_hash,
    files_of,
    parse_definition,
    save_version,
    sequence_names,
    versions,
)
from core.errors import InputError
from storage.models import ContentVersion
from templates import TEMPLATES_DIR

log = logging.getLogger("nurture.content")

MANIFEST = "manifest.json"
FORMAT = 1
SEED_AUTHOR, IMPORT_AUTHOR = "seed", "import"


@dataclass(frozen=True)
class ContentFolder:
    """Where a folder's definitions and template folders are."""

    campaigns: Path
    templates: Path

    @classmethod
    def at(cls, folder: Path | None) -> ContentFolder:
        """`folder`'s campaigns/ and templates/; None: the package's own (the default seed)."""
        if folder is None:
            return cls(CAMPAIGNS_DIR, TEMPLATES_DIR)
        return cls(folder / "campaigns", folder / "templates")


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)  # "spasm-relief v2"
    skipped: int = 0  # versions the database had already
    warnings: list[str] = field(default_factory=list)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def read_tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` by its relative path ('/'-separated); dotfiles and caches
    left out."""
    if not folder.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(
            part.startswith(".") or part == "__pycache__" for part in relative.parts
        ):
            continue
        found[relative.as_posix()] = _read_text(path)
    return found


def read_sequence(source: ContentFolder, name: str) -> tuple[str, dict[str, str]]:
    """A sequence's TOML text and its template folder's files, from a content folder."""
    definition_text = _read_text(source.campaigns / f"{name}.toml")
    data = parse_definition(name, definition_text)
    return definition_text, read_tree(source.templates / data["template_folder"])


def folder_sequences(source: ContentFolder) -> list[str]:
    if not source.campaigns.is_dir():
        return []
    return sorted(path.stem for path in source.campaigns.glob("*.toml"))


def save_folder(
    session: Session,
    source: ContentFolder,
    *,
    author: str,
    now: datetime,
    unless: Mapping[str, str] | None = None,
) -> list[ContentVersion]:
    """Each sequence of the folder saved as a new version where it differs from the current one
    (and, for an export, from what the export wrote: `unless`, name -> hash)."""
    saved = []
    for name in folder_sequences(source):
        try:
            definition_text, files = read_sequence(source, name)
        except InputError as exc:
            if author != SEED_AUTHOR:
                raise
            # One broken file must not stop a first start: the others are seeded, this one is
            # named (validate it, fix it, then `nurture content import` the folder).
            log.warning("not seeded: %s", exc)
            continue
        if unless and unless.get(name) == content_hash(definition_text, files):
            continue
        version, new = save_version(
            session,
            name,
            definition_text=definition_text,
            templates=files,
            author=author,
            now=now,
            note=None if author != SEED_AUTHOR else "seeded from the content folder",
        )
        if new:
            saved.append(version)
    return saved


def is_empty(session: Session) -> bool:
    return session.scalar(select(ContentVersion.id).limit(1)) is None


def seed_if_empty(session: Session, folder: Path | None, *, now: datetime) -> list[ContentVersion]:
    """Version 1 of every sequence in the `[content]` folder, on a database without content (the
    first `nurture db upgrade`, first run, the demo); nothing on one that has content."""
    if not is_empty(session):
        return []
    return save_folder(session, ContentFolder.at(folder), author=SEED_AUTHOR, now=now)


def _aware(value: object, where: Path) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{where}: created_at {value!r} is not a time with its UTC offset")
    return moment


def export_to(session: Session, target: Path) -> list[str]:
    """Write every version of every sequence and the current ones as a content folder; returns
    warnings (two sequences sharing a template folder whose current files differ)."""
    warnings: list[str] = []
    manifest: dict[str, list[dict[str, object]]] = {}
    written: dict[Path, str] = {}
    layout = ContentFolder.at(target)
    for name in sequence_names(session):
        entries = manifest.setdefault(name, [])
        history = versions(session, name)
        for version in history:
            files = files_of(session, version)
            base = target / "versions" / name / f"v{version.number}"
            _write_text(base / f"{name}.toml", version.definition_text)
            for path, text in files.items():
                _write_text(base / "templates" / path, text)
            entries.append(
                {
                    "number": version.number,
                    "author": version.author,
                    "created_at": version.created_at.isoformat(),
                    "note": version.note,
                    "hash": version.content_hash,
                }
            )
        current = history[-1]
        _write_text(layout.campaigns / f"{name}.toml", current.definition_text)
        folder = layout.templates / current.definition["template_folder"]
        for path, text in files_of(session, current).items():
            at = folder / path
            if written.setdefault(at, text) != text:
                warnings.append(f"{name}: {at} differs from another sequence's; kept the first")
                continue
            _write_text(at, text)
    # What each sequence's current files hash to as written here: an import takes them as a new
    # version only where someone edited them since (two sequences may share a template folder).
    as_written = {
        name: content_hash(*read_sequence(layout, name)) for name in folder_sequences(layout)
    }
    body = json.dumps(
        {"format": FORMAT, "sequences": manifest, "as_written": as_written},
        indent=2,
        sort_keys=True,
    )
    _write_text(target / MANIFEST, body + "\n")
    return warnings


def import_from(session: Session, source: Path, *, now: datetime) -> ImportReport:
    """Read an export (or any content folder) back; see the module for what is skipped."""
    report = ImportReport()
    manifest_path = source / MANIFEST
    as_written: dict[str, str] = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(_read_text(manifest_path))
            listed = manifest["sequences"]
            as_written = dict(manifest.get("as_written", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest_path}: not an export manifest: {exc}") from None
        for name in sorted(listed):
            known = {v.content_hash for v in versions(session, name)}
            for entry in sorted(listed[name], key=lambda e: int(e["number"])):
                base = source / "versions" / name / f"v{entry['number']}"
                definition_text = _read_text(base / f"{name}.toml")
                files = read_tree(base / "templates")
                check_paths(files)
                digest = content_hash(definition_text, files)
                if digest in known:
                    report.skipped += 1
                    continue
                version = add_version(
                    session,
                    name,
                    definition_text=definition_text,
                    definition=parse_definition(name, definition_text),
                    files=files,
                    author=str(entry["author"]),
                    created_at=_aware(entry["created_at"], manifest_path),
                    note=str(entry.get("note", "")),
                    digest=digest,
                )
                known.add(digest)
                report.added.append(f"{name} v{version.number}")
    edited = save_folder(
        session, ContentFolder.at(source), author=IMPORT_AUTHOR, now=now, unless=as_written
    )
    report.added += [f"{v.sequence} v{v.number}" for v in edited]
    return report
