"""What a campaign's page shows about review before launch (campaigns.review): the version of
its content now, whether this staff member may launch it and why (not), and recent reviews; and
for a running campaign whose sequence has a newer version, what moving to it would do."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaigns import review
from campaigns.content_render import validate_version
from campaigns.content_store import current_version, sequence_of
from campaigns.content_upgrade import UpgradePlan, plan_upgrade
from campaigns.definitions import Sequence
from core.errors import NurtureError
from core.settings import Settings
from storage.models import ContentVersion, LaunchReview
from web.admin.session import Staff


@dataclass(frozen=True)
class ReviewPanel:
    """What the campaign page shows about review before launch (or before a running campaign
    moves to a newer version: the same rule)."""

    version: str  # the full fingerprint of the content now (the approve form sends it back)
    number: int | None  # the stored version's number; None for a sequence only in files
    check: review.LaunchCheck  # may this staff member launch it now, and why (not)
    history: list[LaunchReview]  # newest first

    @property
    def short_version(self) -> str:
        return review.short(self.version)

    @property
    def label(self) -> str:
        """ "version 3" (stored), or the short fingerprint of a sequence's files."""
        return review.label(self.version, self.number)

    @property
    def waiting(self) -> bool:
        return bool(self.history) and self.history[0].decision == review.PENDING


def review_panel(
    session: Session,
    sequence: Sequence,
    version: ContentVersion | None,
    staff: Staff,
    settings: Settings,
) -> ReviewPanel:
    """The panel for `sequence` as a launch reads it: its stored `version`, else its files."""
    who = review.Reviewer(staff.email, staff.role)
    check = review.launch_check(session, sequence, who, settings, version)
    fingerprint = check.fingerprint or review.fingerprint_of(sequence, version)
    number = version.number if version is not None else None
    return ReviewPanel(fingerprint, number, check, review.reviews(session, sequence.name, limit=5))


@dataclass(frozen=True)
class UpgradePanel:
    """A running campaign whose sequence has a newer stored version: what moving to it would do
    (campaigns.content_upgrade.plan_upgrade), or why it cannot, and what stops it now."""

    to_number: int
    plan: UpgradePlan | None  # None: it cannot move (`refused` says why)
    refused: str | None
    problems: list[str]  # the newest version's validation problems: the move is refused


def upgrade_panel(
    session: Session, campaign: str, pinned: ContentVersion | None, staff: Staff, settings: Settings
) -> dict[str, object]:
    """The page's `upgrade` and `review` (of the newest version: approving it is what lets the
    campaign move, the launch's rule) for a running campaign; nothing when it runs the newest
    version, or was launched from files."""
    if pinned is None:
        return {}
    newest = current_version(session, pinned.sequence)
    if newest.id == pinned.id:
        return {}
    plan, refused = None, None
    try:
        plan = plan_upgrade(session, campaign)
    except NurtureError as exc:
        refused = str(exc)
    problems = validate_version(session, newest, settings).problems
    return {
        "upgrade": UpgradePanel(newest.number, plan, refused, list(problems)),
        "review": review_panel(session, sequence_of(newest), newest, staff, settings),
    }
