"""Review before launch: editors ask, owners approve the exact content, and launch checks it.

Issue 20: "editors draft and request review, owners approve and launch (or an editor launches
when the setting allows it); the approval, the approver and the version are recorded; launch
remains refused while validation fails."

A review is keyed by the sequence's name (the campaign it launches), and what was reviewed is
a fingerprint (`fingerprint_of`, the one function every path calls): for a sequence in the
content store, the stored version's own content hash, recorded with its number ("version 3
approved by ..."); for a sequence only in files (a .toml path, a name the store lacks), sha256
over the definition and every file of its template folder. An approval lets a launch through
only while the content still has that fingerprint, so a change after approval (a subject line,
a delay, a Spanish text) needs a new one. The shared layouts are the clinic's frame, not a
sequence's words, and are left out.

`launch_check` is the one rule of who may put which content live: `launch` applies it before
campaigns.lifecycle.launch, and `upgrade` before moving a running campaign to a newer version
(campaigns.content_upgrade: a content change too), for the dashboard and the CLI alike. An
owner's launch or move records the owner's approval of that content.
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

from campaigns import content_upgrade, lifecycle
from campaigns.content_render import ensure_valid_version
from campaigns.content_store import current_version, sequence_of
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


def fingerprint_of(sequence: Sequence, version: ContentVersion | None) -> str:
    """What a review of this content records and a launch compares: the stored version's content
    hash (campaigns.content_store.content_hash), else the files' content_fingerprint."""
    return version.content_hash if version is not None else content_fingerprint(sequence)


def short(fingerprint: str) -> str:
    """What staff read and compare: the first 12 hex digits (as git shows a commit)."""
    return fingerprint[:12]


def label(fingerprint: str, number: int | None) -> str:
    """How a reviewed content is named to staff: "version 3", or its short fingerprint."""
    return f"version {number}" if number is not None else f"version {short(fingerprint)}"


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
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    *,
    now: datetime,
    note: str = "",
    version: ContentVersion | None = None,
) -> LaunchReview:
    """Ask an owner to review the content (the stored `version` of the sequence, else its
    files); asking again for the same content is one request, not two."""
    if not can_edit(by.role):
        raise ReviewRefused("only editors and owners can ask for a review")
    fingerprint = fingerprint_of(sequence, version)
    latest = latest_review(session, sequence.name)
    if latest is not None and latest.decision == PENDING and latest.fingerprint == fingerprint:
        return latest
    review = LaunchReview(
        sequence=sequence.name,
        fingerprint=fingerprint,
        version=version.number if version is not None else None,
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
    version: ContentVersion | None,
) -> LaunchReview:
    """The pending request, decided; or a new row when the owner reviews unasked."""
    if not can_approve(by.role):
        raise ReviewRefused("only an owner can approve a sequence or send it back")
    fingerprint = fingerprint_of(sequence, version)
    review = latest_review(session, sequence.name)
    if review is None or review.decision != PENDING:
        review = LaunchReview(sequence=sequence.name, requested_by=by.email, requested_at=now)
        session.add(review)
    review.fingerprint = fingerprint
    review.version = version.number if version is not None else None
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
    version: ContentVersion | None = None,
) -> LaunchReview:
    """Approve the content as it is now (the stored `version`, else the files). `seen` is the
    fingerprint the owner was shown: if the content changed since, the approval is refused
    rather than given to unseen words."""
    if seen and fingerprint_of(sequence, version) != seen:
        raise ReviewRefused(
            f"{sequence.name} changed since you opened it; reload the page and review it again"
        )
    return _decide(session, sequence, by, APPROVED, now, _comment(comment), version)


def send_back(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    *,
    now: datetime,
    comment: str,
    version: ContentVersion | None = None,
) -> LaunchReview:
    """Decline, saying what to change (a comment is required: the editor needs to know)."""
    text = _comment(comment)
    if not text:
        raise InputError("say what should change when sending a sequence back")
    return _decide(session, sequence, by, SENT_BACK, now, text, version)


def launch_check(
    session: Session,
    sequence: Sequence,
    by: Reviewer,
    settings: Settings,
    version: ContentVersion | None = None,
) -> LaunchCheck:
    """The one rule of who may put which content live, by a launch or by moving a running
    campaign to a newer version (validation is checked by the launch or the move itself)."""
    fingerprint = fingerprint_of(sequence, version)
    if not can_edit(by.role):
        return LaunchCheck(False, "your account can view campaigns but not launch them", "", None)
    approval = _approval_of(session, sequence.name, fingerprint)
    if approval is not None:
        when = f"{approval.decided_at:%Y-%m-%d %H:%M} UTC" if approval.decided_at else ""
        named = label(fingerprint, version.number if version is not None else None)
        reason = f"approved by {approval.decided_by} {when} ({named})"
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
        f"({label(latest.fingerprint, latest.version)}): request a new review"
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
    is fingerprinted by its own content hash, so an approval of other content never lets it
    through."""
    if not can_edit(by.role):  # a viewer hears about the role, not about the content
        raise ReviewRefused("cannot launch: your account can view campaigns but not launch them")
    check = launch_check(session, sequence, by, settings, version)
    if not check.allowed:
        if version is None:
            ensure_valid(sequence, settings)
        else:
            ensure_valid_version(session, version, settings)
        raise ReviewRefused(f"cannot launch: {check.reason}")
    if check.approval is None and can_approve(by.role):
        _decide(session, sequence, by, APPROVED, now, "approved at launch", version)
    return lifecycle.launch(
        session,
        sequence,
        now=now,
        starts_at=starts_at,
        settings=settings,
        progress=progress,
        version=version,
    )


def upgrade(
    session: Session,
    name: str,
    by: Reviewer,
    *,
    now: datetime,
    settings: Settings,
    seen: int | None = None,
) -> content_upgrade.UpgradePlan:
    """Move running campaign `name` to its sequence's newest version through the launch rule:
    new words going out are a content change, so the newest version needs an owner's approval
    (an owner's move records it) unless editors may launch without review. Validation problems
    are reported first, as for a launch. `seen` is the version number the person was shown: a
    newer one saved meanwhile refuses the move rather than sending unseen words."""
    if not can_edit(by.role):
        raise ReviewRefused("cannot move: your account can view campaigns but not change them")
    plan = content_upgrade.plan_upgrade(session, name)
    if seen is not None and seen != plan.to_number:
        raise ReviewRefused(
            f"{plan.sequence} has version {plan.to_number} now, not {seen}: reload and look again"
        )
    newest = current_version(session, plan.sequence)
    sequence = sequence_of(newest)
    check = launch_check(session, sequence, by, settings, newest)
    if not check.allowed:
        ensure_valid_version(session, newest, settings)
        raise ReviewRefused(f"cannot move to version {newest.number}: {check.reason}")
    done = content_upgrade.upgrade(session, name, now=now, settings=settings)
    if check.approval is None and can_approve(by.role):
        _decide(session, sequence, by, APPROVED, now, "approved when moving to it", newest)
    return done
