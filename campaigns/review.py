"""Review before launch: editors ask, owners approve the exact content, and launch checks it.

Issue 20: "editors draft and request review, owners approve and launch (or an editor launches
when the setting allows it); the approval, the approver and the version are recorded; launch
remains refused while validation fails."

A review is keyed by the sequence's name (campaigns/NAME.toml, the campaign it launches), and
the version reviewed is a content fingerprint: sha256 over the definition and the text of every
file in its template folder (templates/<template_folder>/, translations included). An approval
lets a launch through only while the content still has that fingerprint, so a change after
approval (a subject line, a delay, a Spanish text) needs a new one. The shared layouts
(templates/layouts/) are the clinic's frame, not a sequence's words, and are left out.

`launch_check` is the one rule; `launch` applies it and then campaigns.lifecycle.launch, for the
dashboard and the CLI alike. An owner's launch records the owner's approval of what launched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import lifecycle
from campaigns.content_render import ensure_valid_version, renderer_for
from campaigns.definitions import Sequence
from campaigns.validation import ensure_valid
from core.errors import InputError, NurtureError
from core.settings import Settings
from staff.roles import can_approve, can_edit
from storage.models import Campaign, ContentVersion, LaunchReview
from templates import TEMPLATES_DIR

PENDING, APPROVED, SENT_BACK = "pending", "approved", "sent back"
MAX_COMMENT = 2000


class ReviewRefused(NurtureError):
    """A launch without a valid approval, or a review step the person's role may not take."""

    exit_code = 77  # EX_NOPERM


@dataclass(frozen=True)
class Reviewer:
    """Who acts: a staff account's email and role (the dashboard's session, the CLI's --as)."""

    email: str
    role: str


@dataclass(frozen=True)
class LaunchCheck:
    allowed: bool
    reason: str  # one line: why it may launch, or why not
    fingerprint: str
    approval: LaunchReview | None  # the approval of the current content, if any


def content_fingerprint(sequence: Sequence, root: Path = TEMPLATES_DIR) -> str:
    """sha256 over the definition and every template file of the sequence's folder, each part
    length-prefixed so that no two different contents can run together into one text."""
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    part("definition", json.dumps(sequence.snapshot(), sort_keys=True).encode())
    folder = root / sequence.template_folder
    files = sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []
    for path in files:
        part(path.relative_to(root).as_posix(), path.read_bytes())
    return digest.hexdigest()


def short(fingerprint: str) -> str:
    """What staff read and compare: the first 12 hex digits (as git shows a commit)."""
    return fingerprint[:12]


def reviews(session: Session, name: str, limit: int = 20) -> list[LaunchReview]:
    """A sequence's reviews, newest first."""
    query = select(LaunchReview).where(LaunchReview.sequence == name)
    return list(session.scalars(query.order_by(LaunchReview.id.desc()).limit(limit)))


def latest_review(session: Session, name: str) -> LaunchReview | None:
    found = reviews(session, name, limit=1)
    return found[0] if found else None


def _approval_of(session: Session, name: str, fingerprint: str) -> LaunchReview | None:
    return session.scalar(
        select(LaunchReview)
        .where(
            LaunchReview.sequence == name,
            LaunchReview.decision == APPROVED,
            LaunchReview.fingerprint == fingerprint,
        )
        .order_by(LaunchReview.id.desc())
        .limit(1)
    )


def _comment(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_COMMENT:
        raise InputError(f"a review comment has at most {MAX_COMMENT} characters")
    return text


def request_review(
    session: Session, sequence: Sequence, by: Reviewer, *, now: datetime, note: str = ""
) -> LaunchReview:
    """Ask an owner to review the current content; asking again for the same content is one
    request, not two."""
    if not can_edit(by.role):
        raise ReviewRefused("only editors and owners can ask for a review")
    fingerprint = content_fingerprint(sequence)
    latest = latest_review(session, sequence.name)
    if latest is not None and latest.decision == PENDING and latest.fingerprint == fingerprint:
        return latest
    review = LaunchReview(
        sequence=sequence.name,
        fingerprint=fingerprint,
        requested_by=by.email,
        requested_at=now,
        decision=PENDING,
        comment=_comment(note),
    )
    session.add(review)
    session.flush()
    return review


def _decide(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    decision: str,
    now: datetime,
    comment: str,
    root: Path = TEMPLATES_DIR,
) -> LaunchReview:
    """The pending request, decided; or a new row when the owner reviews unasked."""
    if not can_approve(by.role):
        raise ReviewRefused("only an owner can approve a sequence or send it back")
    fingerprint = content_fingerprint(sequence, root)
    review = latest_review(session, sequence.name)
    if review is None or review.decision != PENDING:
        review = LaunchReview(sequence=sequence.name, requested_by=by.email, requested_at=now)
        session.add(review)
    review.fingerprint = fingerprint
    review.decision, review.decided_by, review.decided_at = decision, by.email, now
    if comment:
        review.comment = comment
    session.flush()
    return review


def approve(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    *,
    now: datetime,
    comment: str = "",
    seen: str | None = None,
) -> LaunchReview:
    """Approve the content as it is now. `seen` is the fingerprint the owner was shown: if the
    content changed since, the approval is refused rather than given to unseen words."""
    if seen and content_fingerprint(sequence) != seen:
        raise ReviewRefused(
            f"{sequence.name} changed since you opened it; reload the page and review it again"
        )
    return _decide(session, sequence, by, APPROVED, now, _comment(comment))


def send_back(
    session: Session, sequence: Sequence, by: Reviewer, *, now: datetime, comment: str
) -> LaunchReview:
    """Decline, saying what to change (a comment is required: the editor needs to know)."""
    text = _comment(comment)
    if not text:
        raise InputError("say what should change when sending a sequence back")
    return _decide(session, sequence, by, SENT_BACK, now, text)


def launch_check(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    settings: Settings,
    root: Path = TEMPLATES_DIR,
) -> LaunchCheck:
    """The one rule of who may launch what (validation is checked by the launch itself)."""
    fingerprint = content_fingerprint(sequence, root)
    if not can_edit(by.role):
        return LaunchCheck(False, "your account can view campaigns but not launch them", "", None)
    approval = _approval_of(session, sequence.name, fingerprint)
    if approval is not None:
        when = f"{approval.decided_at:%Y-%m-%d %H:%M} UTC" if approval.decided_at else ""
        reason = f"approved by {approval.decided_by} {when} (version {short(fingerprint)})"
        return LaunchCheck(True, reason, fingerprint, approval)
    if can_approve(by.role):
        return LaunchCheck(True, "an owner's launch approves this version", fingerprint, None)
    if settings.review.editors_may_launch:
        return LaunchCheck(True, "editors may launch without review (settings)", fingerprint, None)
    return LaunchCheck(False, _why_not(session, sequence.name), fingerprint, None)


def _why_not(session: Session, name: str) -> str:
    latest = latest_review(session, name)
    if latest is None:
        return f"{name} has not been approved: request a review, and an owner approves it"
    if latest.decision == PENDING:
        return f"{name} is waiting for an owner's review (asked by {latest.requested_by})"
    if latest.decision == SENT_BACK:
        said = f": {latest.comment}" if latest.comment else ""
        return f"{name} was sent back by {latest.decided_by}{said}"
    return (
        f"{name} changed since it was approved by {latest.decided_by} "
        f"(version {short(latest.fingerprint)}): request a new review"
    )


def launch(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    *,
    now: datetime,
    settings: Settings,
    starts_at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    version: ContentVersion | None = None,
) -> tuple[Campaign, int]:
    """Launch through the review rule. A refused launch still reports validation problems
    first (they must be fixed before any review helps); an owner's launch records its approval
    in the same transaction, so a launch that fails records nothing. A stored content `version`
    is fingerprinted from its own files (campaigns.content_render), so an approval of other
    content never lets it through."""
    if not can_edit(by.role):  # a viewer hears about the role, not about the content
        raise ReviewRefused("cannot launch: your account can view campaigns but not launch them")
    root = renderer_for(session, version).root if version is not None else TEMPLATES_DIR
    check = launch_check(session, sequence, by, settings, root)
    if not check.allowed:
        if version is None:
            ensure_valid(sequence, settings)
        else:
            ensure_valid_version(session, version, settings)
        raise ReviewRefused(f"cannot launch: {check.reason}")
    if check.approval is None and can_approve(by.role):
        _decide(session, sequence, by, APPROVED, now, "approved at launch", root)
    return lifecycle.launch(
        session,
        sequence,
        now=now,
        starts_at=starts_at,
        settings=settings,
        progress=progress,
        version=version,
    )
