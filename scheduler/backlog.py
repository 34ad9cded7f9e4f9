"""What is waiting for a worker: planned messages whose time has come.

`nurture status` prints it beside the workers that are alive, and the campaign page names it
when no worker is: due messages with nobody to send them are the failure staff cannot see
otherwise (a campaign that "enrolled three contacts" and then never sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Message, MessageState


@dataclass(frozen=True)
class DueBacklog:
    count: int
    oldest_due_at: datetime | None


def due_backlog(session: Session, *, now: datetime, campaign_id: int | None = None) -> DueBacklog:
    """Planned messages due by `now` (ix_message_due: state, due_at), optionally of one
    campaign."""
    query = select(func.count(), func.min(Message.due_at)).where(
        Message.state == MessageState.PLANNED, Message.due_at <= now
    )
    if campaign_id is not None:
        query = query.where(Message.campaign_id == campaign_id)
    count, oldest = session.execute(query).one()
    return DueBacklog(int(count or 0), oldest)
