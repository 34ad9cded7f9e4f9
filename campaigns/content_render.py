"""Rendering from a content version: what a pinned campaign's messages are made of.

A version's files are written once into a folder of their own (named by the version's content
hash, beside a link to the package's layouts, which stay code), and an ordinary TemplateRenderer
reads that folder: the same sandbox, CSS inlining, language fallback and validation as files in
the repository, and no second loader to keep in step with the renderer. Versions never change, so
the folder never does, and the compiled templates are kept per version for the life of the
process: the send path reads a version's content from the database once, when the first message
of it is claimed, never per message.

Which version renders a message (`version_of`): the one stamped on the message (an `upgrade`
stamps every message planned before it, campaigns.content_upgrade), else its campaign's pin;
a campaign launched before versions existed has neither and renders from the template files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.compose import Composer
from campaigns.content_store import check_paths, files_of, sequence_of
from campaigns.definitions import Sequence
from campaigns.validation import ValidationReport, validate_sequence
from core.errors import ConfigError, InputError, ValidationFailed
from core.settings import Settings
from storage.models import ContentFile, ContentVersion
from templates import TEMPLATES_DIR
from templates.renderer import TemplateRenderer

LAYOUTS = "layouts"


def default_cache() -> Path:
    """The user's cache folder (XDG_CACHE_HOME, else ~/.cache), not /tmp, whose cleaners delete
    files by age under a worker that still reads them; /tmp only where there is no home."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    cache = Path(base) / "nurture" / "content"
    try:
        return private_folder(cache)
    except OSError:
        return private_folder(Path(tempfile.gettempdir()) / f"nurture-content-{os.getuid()}")


def private_folder(folder: Path) -> Path:
    """`folder`, made if missing with mode 0700, and refused unless it is ours and nobody else
    may write in it. What is in it is sent to patients as is (a version's folder once there is
    trusted, see materialize), so a folder another local user made first, or may write into
    (a predictable name under /tmp), must not be used."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = folder.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise ConfigError(
            f"content cache {folder} is not a private folder of this user "
            "(owner, mode 0700 or 0755): remove it or set XDG_CACHE_HOME elsewhere"
        )
    return folder


def _layouts_tag() -> str:
    """Which installed package's layouts a folder links to: a new install gets new folders."""
    return hashlib.sha256(str(TEMPLATES_DIR.resolve()).encode()).hexdigest()[:8]


def materialize(
    digest: str, template_folder: str, files: Mapping[str, str], cache: Path | None = None
) -> Path:
    """The folder a version renders from: `<cache>/<hash>-<install>/<template_folder>/...` beside
    a `layouts` link. Written into a scratch folder and renamed into place, so a reader (another
    worker) sees all of it or none; the same content has the same hash, so a folder once there
    is never stale.

    The folder must be one name beside `layouts`, never `layouts` itself nor a path out of the
    scratch folder, and every file a path under it: the editor refuses such a draft, and the
    store must too, since an import (or a row written by hand) is another way in, and a file
    written through the `layouts` link would land in the package's own layouts."""
    check_folder(template_folder)
    check_paths(files)
    cache = private_folder(cache) if cache else default_cache()
    root = cache / f"{digest}-{_layouts_tag()}"
    if root.is_dir():
        return root
    scratch = Path(tempfile.mkdtemp(dir=cache, prefix=".partial-"))
    (scratch / LAYOUTS).symlink_to(TEMPLATES_DIR / LAYOUTS, target_is_directory=True)
    for path, text in files.items():
        target = scratch / template_folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
    try:
        scratch.rename(root)
    except OSError:  # another process put the same content there first
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def check_folder(template_folder: str) -> None:
    """One folder name under the content's root, other than the layouts' (see materialize)."""
    check_paths({template_folder: ""})
    if "/" in template_folder or template_folder == LAYOUTS:
        raise InputError(
            f"template folder {template_folder!r} must be one folder's name, not the layouts'"
        )


def renderer_for(
    session: Session, version: ContentVersion, cache: Path | None = None
) -> TemplateRenderer:
    """A renderer over the version's files (a preview, a validation, a launch's check)."""
    folder = version.definition["template_folder"]
    return TemplateRenderer(
        materialize(version.content_hash, folder, files_of(session, version), cache)
    )


def validate_version(
    session: Session, version: ContentVersion, settings: Settings
) -> ValidationReport:
    """Every launch rule, on the version's definition and files."""
    return validate_sequence(sequence_of(version), settings, renderer_for(session, version))


def ensure_valid_version(
    session: Session, version: ContentVersion, settings: Settings
) -> ValidationReport:
    """Raise ValidationFailed with every problem, as campaigns.validation.ensure_valid does."""
    report = validate_version(session, version, settings)
    if report.problems:
        raise ValidationFailed(report.problems)
    return report


@dataclass(frozen=True)
class LoadedVersion:
    sequence: Sequence
    composer: Composer


class VersionedContent:
    """Versions a process renders from, by id, each read from the database once and kept."""

    def __init__(self, composer: Composer, cache: Path | None = None) -> None:
        self.composer, self.cache = composer, cache
        self.loaded: dict[int, LoadedVersion] = {}

    def load(self, session: Session, ids: Iterable[int | None]) -> None:
        """Read the versions among `ids` not yet loaded: two queries, whatever their number."""
        missing = {id_ for id_ in ids if id_ is not None} - self.loaded.keys()
        if not missing:
            return
        versions = list(
            session.scalars(select(ContentVersion).where(ContentVersion.id.in_(missing)))
        )
        files: dict[int, dict[str, str]] = {version.id: {} for version in versions}
        for version_id, path, text in session.execute(
            select(ContentFile.version_id, ContentFile.path, ContentFile.text).where(
                ContentFile.version_id.in_(missing)
            )
        ):
            files[version_id][path] = text
        for version in versions:
            folder = version.definition["template_folder"]
            root = materialize(version.content_hash, folder, files[version.id], self.cache)
            self.loaded[version.id] = LoadedVersion(
                sequence_of(version), replace(self.composer, renderer=TemplateRenderer(root))
            )

    def get(self, version_id: int) -> LoadedVersion:
        return self.loaded[version_id]


def version_of(message_version: int | None, campaign_version: int | None) -> int | None:
    """The version a message renders with (see the module); None: the template files."""
    return message_version if message_version is not None else campaign_version
