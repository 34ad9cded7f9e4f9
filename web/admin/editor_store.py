"""Where the editor's drafts come from and go: the content store (campaigns.content_store).

Saving is one function, `save_draft`, so where versions live is decided in one place. Opening a
sequence reads its newest stored version, else its definition file and template folder; steps a
developer wrote in HTML are shown with their settings and a note, since the editor writes only
Markdown emails and plain texts (templates.markdown_body).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from campaigns import content_store
from campaigns.definitions import Sequence, definition_path, list_sequences, load_sequence
from campaigns.drafts import Draft, DraftMessage, DraftStep
from core.errors import NurtureError
from core.languages import DEFAULT_LANGUAGE, LANGUAGES
from storage.db import transaction
from templates.markdown_body import EMAIL_SOURCE, SMS_SOURCE, read_email_source
from web.admin.session import StaffNotFound
from web.services import WebServices


def save_draft(nurture: WebServices, draft: Draft, *, author: str) -> str:
    """Store the draft as the sequence's next version, over the current one (`editing`: the
    settings the editor does not show are kept); what to tell the person who saved."""
    with transaction(nurture.sessions) as session:
        draft.editing(base_definition(session, draft.name))
        files = draft.files()
        version, new = content_store.save_version(
            session,
            draft.name,
            templates=files,
            author=author,
            now=nurture.clock(),
            definition=draft.definition(),
        )
        number = version.number
    return f"Saved as version {number}." if new else f"No changes since version {number}."


def base_definition(session: Session, name: str) -> dict[str, Any] | None:
    """The definition a draft named `name` edits, as its TOML holds it: the stored current
    version's, else its definition file's; None for a new sequence."""
    try:
        return dict(content_store.current_version(session, name).definition)
    except NurtureError:
        pass
    if name not in list_sequences():
        return None
    text = definition_path(name).read_text(encoding="utf-8")
    return content_store.parse_definition(name, text)


def editing(nurture: WebServices, draft: Draft) -> Draft:
    """The draft from the page as an edit of its sequence (campaigns.drafts.Draft.editing)."""
    with nurture.sessions() as session:
        return draft.editing(base_definition(session, draft.name))


def sequence_exists(nurture: WebServices, name: str) -> bool:
    """Whether `name` is a stored sequence or a definition file."""
    if name in list_sequences():
        return True
    with nurture.sessions() as session:
        return name in content_store.sequence_names(session)


def load_draft(session: Session, name: str, templates_root: Path) -> tuple[Draft, str]:
    """The sequence as a draft, and a note for the page (empty when every step is editable)."""
    stored = _stored(session, name)
    if stored is not None:
        sequence, files = stored
    else:
        try:
            sequence = load_sequence(name)
        except NurtureError as exc:
            raise StaffNotFound(str(exc)) from None
        files = _folder_files(templates_root / sequence.template_folder)
    return as_draft(sequence, files)


def _stored(session: Session, name: str) -> tuple[Sequence, dict[str, str]] | None:
    try:
        version = content_store.current_version(session, name)
    except NurtureError:
        return None
    return content_store.sequence_of(version), content_store.files_of(session, version)


def _folder_files(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in folder.rglob("*")
        if path.is_file() and path.name.endswith((EMAIL_SOURCE, SMS_SOURCE))
    }


def duration_words(delta: timedelta) -> str:
    """A delay as the editor's field takes it: '2d', '1d12h', '90m', '0d'."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0d"


def as_draft(sequence: Sequence, files: dict[str, str]) -> tuple[Draft, str]:
    steps, html_steps = [], []
    for number, step in enumerate(sequence.steps, start=1):
        messages: dict[str, DraftMessage] = {}
        for language in LANGUAGES:
            folder = "" if language == DEFAULT_LANGUAGE else f"{language}/"
            if step.channel == "sms":
                text = files.get(f"{folder}{step.template}{SMS_SOURCE}")
                if text is not None:
                    messages[language] = DraftMessage(text=text.strip())
            else:
                source = files.get(f"{folder}{step.template}{EMAIL_SOURCE}")
                if source is not None:
                    email = read_email_source(source)
                    messages[language] = DraftMessage(
                        subject=email.subject, preheader=email.preheader, body=email.body
                    )
        if not messages:
            html_steps.append(str(number))
        then: dict[str, Any] | None = None
        branch = getattr(step, "then", None)
        if branch is not None:
            then = {
                key: duration_words(value) if isinstance(value, timedelta) else value
                for key, value in branch.model_dump().items()
                if value is not None
            }
        steps.append(
            DraftStep(
                name=step.name,
                channel=step.channel,
                delay=duration_words(step.delay),
                days=",".join(step.window.days),
                start=f"{step.window.start:%H:%M}",
                end=f"{step.window.end:%H:%M}",
                max_segments=step.max_segments,
                then=then,
                messages=messages,
            )
        )
    es = sequence.translations.get("es")
    draft = Draft(
        name=sequence.name,
        title=sequence.title,
        reason=sequence.reason,
        reason_es=es.reason if es else "",
        custom_fields=list(sequence.custom_fields),
        steps=steps,
    )
    note = ""
    if html_steps:
        note = (
            f"Step {', '.join(html_steps)} is written in HTML by a developer: its settings are "
            "here, its messages are not. Writing a message here replaces it."
        )
    return draft, note
