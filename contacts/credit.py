"""Which message an opt-out is credited to, when the request itself does not name one.

Unsubscribe links sent since issue 18 name the message that carried them (templates.links); the
preferences page, links sent before, and a STOP reply name none. A person's own opt-out naming
no stored message (a link, a page, a reply: reasons unsubscribed and stop) is credited to the
last message we sent them on that channel within `CREDIT_WINDOWS`, so the funnel shows it on
the campaign and step that most likely caused it. Staff suppressions are not guessed, and
provider outcomes name their message already. One statement per batch, over the (contact,
channel, sent_at) index.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from storage.models import Channel, Message, SuppressionReason

#: How long after a message an opt-out on its channel is still its doing. A STOP answers the
#: last text within days (7); an email's unsubscribe link is often used when the mail is read
#: again or cleared out weeks later (30). Older opt-outs are counted, but on no campaign.
CREDIT_WINDOWS: dict[Channel, timedelta] = {
    Channel.SMS: timedelta(days=7),
    Channel.EMAIL: timedelta(days=30),
}
#: The person's own requests; others (staff, bounces, complaints) are not credited by guess.
CREDITED_REASONS = frozenset({SuppressionReason.UNSUBSCRIBED, SuppressionReason.STOP})


# Built once (see contacts.optout): the batch's reads, with their lists bound when run.
_LAST_SENT = (
    select(
        Message.id,
        Message.contact_id,
        Message.channel,
        Message.campaign_id,
        Message.step_index,
        Message.sent_at,
    )
    .where(
        Message.contact_id.in_(bindparam("contacts", expanding=True)),
        Message.channel.in_(bindparam("channels", expanding=True)),
        Message.sent_at >= bindparam("since"),
        Message.sent_at <= bindparam("at"),
    )
    .order_by(Message.sent_at, Message.id)
)
_SENT = select(Message.id, Message.campaign_id, Message.step_index).where(
    Message.id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class SentMessage:
    """The facts an event needs to be counted on a campaign's step."""

    message_id: int
    campaign_id: int
    step_index: int


def last_sent(
    session: Session, wanted: Collection[tuple[int, Channel]], at: datetime
) -> dict[tuple[int, Channel], SentMessage]:
    """For each (contact, channel), the last message sent to it within the channel's window
    before `at`; pairs with none are absent."""
    if not wanted:
        return {}
    since = at - max(CREDIT_WINDOWS.values())
    rows = session.execute(
        _LAST_SENT,
        {
            "contacts": sorted({contact for contact, _ in wanted}),
            "channels": sorted({str(channel) for _, channel in wanted}),
            "since": since,
            "at": at,
        },
    )
    pairs = set(wanted)
    found: dict[tuple[int, Channel], SentMessage] = {}
    for row in rows:  # ordered by time: the last one wins
        key = (row.contact_id, Channel(row.channel))
        if key in pairs and row.sent_at >= at - CREDIT_WINDOWS[key[1]]:
            found[key] = SentMessage(row.id, row.campaign_id, row.step_index)
    return found


def sent_messages(session: Session, ids: Collection[int]) -> dict[int, SentMessage]:
    """The named messages' campaign and step, by primary key (a provider's unsubscribe names
    its message but not the step)."""
    if not ids:
        return {}
    rows = session.execute(_SENT, {"ids": sorted(ids)})
    return {row.id: SentMessage(row.id, row.campaign_id, row.step_index) for row in rows}
