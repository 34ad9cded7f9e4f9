"""What a campaign's page shows about review before launch (campaigns.review): the version of
its content now, whether this staff member may launch it and why (not), and recent reviews."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaigns import review
from campaigns.definitions import Sequence
from core.settings import Settings
from storage.models import LaunchReview
from web.admin.session import Staff


@dataclass(frozen=True)
class ReviewPanel:
    """What the campaign page shows about review before launch."""

    version: str  # the full fingerprint of the content now (the approve form sends it back)
    check: review.LaunchCheck  # may this staff member launch it now, and why (not)
    history: list[LaunchReview]  # newest first

    @property
    def short_version(self) -> str:
        return review.short(self.version)

    @property
    def waiting(self) -> bool:
        return bool(self.history) and self.history[0].decision == review.PENDING


def review_panel(
    session: Session, sequence: Sequence, staff: Staff, settings: Settings
) -> ReviewPanel:
    who = review.Reviewer(staff.email, staff.role)
    check = review.launch_check(session, sequence, who, settings)
    version = check.fingerprint or review.content_fingerprint(sequence)
    return ReviewPanel(version, check, review.reviews(session, sequence.name, limit=5))
