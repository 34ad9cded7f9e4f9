"""The dispatcher: claim → check → (per sub-batch: render → pace → re-check → mark sending →
send concurrently) → record.

Exactly once: a message is marked "sending" in a committed transaction right before its
provider call and "sent", with the provider's id, after it. A crash in between leaves it
"sending", which recovery turns into "uncertain" (reported, never blindly re-sent); a message
that was only claimed goes back to "planned", because nothing was handed to a provider. At most
IN_FLIGHT sub-batches are "sending" at once, so a crash leaves uncertain only what was in flight.

The rules are checked when a batch is claimed and again right before each sub-batch is handed
over: an unsubscribe or a pause committed while a batch is in flight stops every message not
yet handed over. While sub-batches are on the wire (in the sender process, or on the send
loop's thread for in-process channels), the one before them is recorded and the next one
rendered.

What is handed over may still wait for a connection, and an unsubscribe committed meanwhile
does not stop it. A sub-batch is four connections' worth of calls, so its last calls begin about
four provider round trips after its re-check. By default (`[scheduler]
queue_checked_sub_batches = true`) up to two more sub-batches wait behind it, so that the calls
never wait for the worker: up to about twelve round trips (0.1 s against the benchmark's fake,
a few seconds against a real provider). With false, a sub-batch is re-checked only once every
call before it has begun: about four round trips, at about 25% fewer messages per second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from campaigns.compose import Composer, UnknownDestination
from campaigns.content_render import VersionedContent, version_of
from contacts.state_rules import DAY, rule_for
from core.clock import Clock, utcnow
from core.settings import Settings
from providers.base import EmailProvider, Provider, SmsProvider
from scheduler.checks import (
    SEND,
    Action,
    Facts,
    Row,
    Verdict,
    load_facts,
    refresh_facts,
    texts_per_day,
    texts_since,
    verdict,
)
from scheduler.claims import claim_due, recover_stale, release_worker
from scheduler.outcomes import Tally, apply_verdicts, mark_sending, record_outcomes
from scheduler.pacing import Pacer, Rate
from scheduler.planner import quiet_hours
from scheduler.recording import Recorder
from scheduler.sender_process import SenderProcess, runs_in_sender
from scheduler.sending import Outcome, Outgoing, Pending, SendLoop
from storage.db import is_sqlite, transaction
from templates.renderer import TemplateRenderError

log = logging.getLogger("nurture.dispatch")

#: PostgreSQL: one transaction-scoped advisory lock per texted contact (namespace, contact id),
#: taken in id order so that two workers cannot deadlock on them.
SMS_CAP_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtext('nurture.sms_cap'), id) "
    "FROM (SELECT unnest(CAST(:ids AS integer[])) AS id ORDER BY 1) AS contacts"
)
#: The contact's address changed after the message was rendered for the old one.
ADDRESS_CHANGED = Verdict(Action.RELEASE, "address changed since rendering")
#: Sub-batch size as a multiple of the channel's concurrency.
CHUNK_PER_CONNECTION = 4
#: Sub-batches marked "sending" and not yet recorded, at most, so a crash leaves no more than
#: that uncertain. Queued (the default): one on the wire, two behind it. With one queued, the
#: sender idled whenever the worker paused (a claim, a commit) and the worker whenever the
#: sender did: both were about 78% busy; with two, about 88% (15% more emails/s).
IN_FLIGHT = 3

#: A sub-batch handed to the provider calls, and those calls.
Handed = tuple[list[Outgoing], Pending]

DispatchResult = Tally


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        composer: Composer,
        email: EmailProvider,
        sms: SmsProvider,
        clock: Clock = utcnow,
        worker: str | None = None,
    ) -> None:
        self.settings, self.sessions, self.composer = settings, sessions, composer
        #: pinned content versions, read once each (campaigns.content_render)
        self.content = VersionedContent(composer)
        self.email, self.sms, self.clock = email, sms, clock
        self.channels: dict[str, Provider[Any]] = {"email": email, "sms": sms}
        self.worker = worker or worker_id()
        self.quiet = quiet_hours(settings)
        self.cap = timedelta(hours=settings.scheduler.sms_frequency_cap_hours)
        self.rates = {
            "email": Rate.of(settings.sendgrid.emails_per_second),
            "sms": Rate.of(settings.sms.segments_per_second),
        }
        self.limits = {name: channel.concurrency for name, channel in self.channels.items()}
        self.stopping = threading.Event()
        self.pacer = Pacer(sessions, sleep=self._wait)
        self._buckets: set[str] = set()  # rate buckets known to exist
        self.loop = SendLoop()
        remote = {name: target for name, target in self.channels.items() if runs_in_sender(target)}
        use_child = settings.scheduler.sender_process and remote
        self.sender = SenderProcess(remote, self.limits) if use_child else None
        with sessions() as session:  # (no connection: the session only names its engine)
            overlap = not is_sqlite(session.get_bind())
        self.recorder = Recorder(self._record, overlap=overlap)

    # -- the loop -------------------------------------------------------------------------------
    def tick(self) -> Tally:
        """Dispatch batches until nothing is due (or the worker is stopping). The last
        sub-batch of one batch is still on the wire while the next batch is claimed."""
        total = Tally()
        in_flight: deque[Handed] = deque()
        try:
            while not self.stopping.is_set():
                result, more = self.dispatch_batch(in_flight)
                total.add(result)
                if not more or result.released == result.claimed:
                    break  # nothing more due, or only released (paused mid-batch): next tick
        except BaseException:
            self._settle_after_error(in_flight, total)  # what went out is still recorded
            raise
        self._settle(in_flight, 0, total)
        return total

    def dispatch_batch(self, in_flight: deque[Handed] | None = None) -> tuple[Tally, bool]:
        """One claimed batch, sent in sub-batches; returns its tally and whether more is due.

        Sub-batches still on the wire when it returns stay in `in_flight` (when given) for the
        caller to settle."""
        if in_flight is None:
            handed: deque[Handed] = deque()
            tally, more = self.dispatch_batch(handed)
            self._settle(handed, 0, tally)
            return tally, more
        tally = Tally()
        now = self.clock()
        with transaction(self.sessions) as session:
            ids: list[int] = []
            full = False
            for channel, limit in self._claim_limits().items():
                claimed = claim_due(
                    session, now=now, limit=limit, worker=self.worker, channel=channel
                )
                full = full or len(claimed) == limit
                ids.extend(claimed)
            tally.claimed = len(ids)
            if not ids:
                return tally, False
            rows, facts = self._check(session, ids, now, tally)
        # Rendered after the claim commits, a sub-batch at a time: rendering takes a while, and
        # on SQLite the claiming transaction holds the write lock the web server's unsubscribes
        # need.
        self._send(rows, facts, tally, in_flight)
        return tally, full

    def _claim_limits(self) -> dict[str, int]:
        """A paced channel claims no more than it may send in about one tick, so claimed
        messages never wait long for tokens (and a crash strands few of them)."""
        batch = self.settings.scheduler.batch_size
        horizon = max(1.0, self.settings.scheduler.tick_seconds)
        limits = {}
        for channel, target in self.channels.items():
            paced = target.rate_bucket is not None
            budget = int(self.rates[channel].per_second * horizon) + 1
            limits[channel] = min(batch, budget) if paced else batch
        return limits

    def recover(self) -> tuple[int, int]:
        timeout = timedelta(seconds=self.settings.scheduler.sending_timeout_seconds)
        with transaction(self.sessions) as session:
            replanned, uncertain = recover_stale(session, now=self.clock(), timeout=timeout)
        if uncertain:
            log.warning(
                "%d message(s) left in flight by a stopped worker are now uncertain; "
                "see `nurture campaigns uncertain`",
                uncertain,
            )
        return replanned, uncertain

    def _wait(self, seconds: float) -> None:
        """A pacing wait that shutdown cuts short."""
        self.stopping.wait(seconds)

    def stop(self) -> None:
        """Ask a running tick to finish its current sub-batch and return."""
        self.stopping.set()

    def close(self) -> None:
        """Close the provider pools, the send loop and the sender (claims are left to recovery)."""
        self.loop.close(*self.channels.values())
        if self.sender is not None:
            self.sender.close()
        self.recorder.close()

    def shutdown(self) -> int:
        """Hand back what this worker claimed but never sent, and close the provider pools."""
        self.stopping.set()
        with transaction(self.sessions) as session:
            released = release_worker(session, self.worker)
        self.close()
        return released

    # -- checks in the claiming transaction, then rendering ---------------------------------------
    def _check(
        self, session: Session, ids: list[int], now: datetime, tally: Tally
    ) -> tuple[list[Row], Facts]:
        """The rules for a claimed batch: what may go now, and the rest written back at once."""
        facts = load_facts(session, ids)
        self.content.load(
            session, {version_of(row.content_version_id, facts.pins.get(row.campaign_id))
                      for row in facts.rows}
        )  # fmt: skip
        texted = self._last_texts(session, facts.rows, ids, now)
        verdicts: list[tuple[int, int, Verdict]] = []
        go: list[Row] = []
        for row in facts.rows:
            decided = verdict(row, facts, now, self.quiet)
            if decided is SEND and row.channel == "sms":
                texts = texted.setdefault(row.contact_id, [])
                last = max(texts, default=None)
                if self.cap and last is not None and last + self.cap > now:
                    decided = Verdict(Action.DEFER, "frequency cap", last + self.cap)
                else:  # the clinic's cap allows it; the number's state may not
                    decided = texts_per_day(row, texts, now, facts, self.quiet)
                if decided is SEND:
                    texts.append(now)
            if decided is SEND:
                go.append(row)
            else:
                verdicts.append((row.id, row.enrollment_id, decided))
        apply_verdicts(session, verdicts, now=now, worker=self.worker, tally=tally)
        return go, facts

    def _compose_all(self, rows: list[Row], facts: Facts, tally: Tally) -> list[Outgoing]:
        """Render each message; one that cannot render fails with the template's reason."""
        outgoing: list[Outgoing] = []
        failed: list[tuple[int, int, Verdict]] = []
        for row in rows:
            try:
                outgoing.append(self._compose(row, facts))
            except (TemplateRenderError, UnknownDestination) as exc:
                failed.append((row.id, row.enrollment_id, Verdict(Action.FAIL, f"template: {exc}")))
        if failed:
            with transaction(self.sessions) as session:
                apply_verdicts(session, failed, now=self.clock(), worker=self.worker, tally=tally)
        return outgoing

    def _compose(self, row: Row, facts: Facts) -> Outgoing:
        sequence, composer = facts.sequences[row.campaign_id], self.composer
        version = version_of(row.content_version_id, facts.pins.get(row.campaign_id))
        if version is not None:  # the content the step was planned with
            loaded = self.content.get(version)
            sequence, composer = loaded.sequence, loaded.composer
            steps = sequence.steps
            if row.step_index >= len(steps) or steps[row.step_index].channel != row.channel:
                # planned from a definition an upgrade replaced meanwhile: never send it on a
                # channel whose consent the checks did not read (content_upgrade's race)
                raise TemplateRenderError(
                    f"step {row.step_index + 1} was planned as {row.channel}, and the content "
                    "version it renders with has no such step"
                )
        step = sequence.steps[row.step_index]
        name, _ = facts.campaigns[row.campaign_id]
        contact = {
            "first_name": row.first_name,
            "last_name": row.last_name,
            "custom_fields": row.custom_fields,
            "language": row.language,
        }
        address = row.address(step.channel)
        assert address is not None  # verdict() checked reachability
        payload = composer.compose(
            sequence,
            step,
            contact,
            message_id=row.id,
            contact_id=row.contact_id,
            to=address,
            campaign=name,
        )
        return Outgoing(
            row.id, row.contact_id, row.campaign_id, step.channel, row.attempts + 1, payload
        )

    def _last_texts(
        self, session: Session, rows: list[Row], batch: list[int], now: datetime
    ) -> dict[int, list[datetime]]:
        """Each texted contact's texts across every campaign within the clinic's cap window or,
        for a number under a state rule, the last day (contacts.state_rules: three a day).

        Two workers may claim texts to one contact from two campaigns at the same moment; each
        would miss the other's uncommitted claim and both would send. On PostgreSQL each contact's
        check is serialised (a lock held until the claim commits), so the second worker sees the
        first one's claim. SQLite has one writer, which serialises the claims already.
        """
        stated = {row.contact_id for row in rows if row.channel == "sms" and rule_for(row.phone)}
        capped = {row.contact_id for row in rows if row.channel == "sms"} if self.cap else set()
        contacts = stated | capped
        if not contacts:
            return {}
        if session.get_bind().dialect.name == "postgresql":
            session.execute(SMS_CAP_LOCKS, {"ids": sorted(contacts)})
        lookback = max(self.cap, DAY) if stated else self.cap
        return texts_since(session, contacts, now - lookback, leaving_out=batch)

    # -- sub-batches: render, pace, re-check, mark sending, send, record -------------------------
    def _chunks(self, rows: list[Row]) -> Iterator[list[Row]]:
        for channel in ("email", "sms"):
            items = [row for row in rows if row.channel == channel]
            size = self.limits[channel] * CHUNK_PER_CONNECTION
            if self.channels[channel].rate_bucket is not None:
                size = max(1, min(size, int(self.rates[channel].per_second)))
            for start in range(0, len(items), size):
                yield items[start : start + size]

    def _send(self, rows: list[Row], facts: Facts, tally: Tally, in_flight: deque[Handed]) -> None:
        """Keeps the provider calls busy: a sub-batch is handed over while the one before it is
        still on the wire (queued behind it, unless `queue_checked_sub_batches` is off: then
        once every call before it has begun), and the next one is rendered meanwhile. At most
        IN_FLIGHT of them are "sending" at once, so a crash leaves no more than that uncertain."""
        chunks = self._chunks(rows)
        upcoming = self._render_next(chunks, facts, tally)
        queue = self.settings.scheduler.queue_checked_sub_batches
        while upcoming and not self.stopping.is_set():
            self._settle(in_flight, IN_FLIGHT - 1, tally)
            if in_flight and not queue:  # and, by the same rule, every one before it
                in_flight[-1][1].wait_started()
            live = self._paced_recheck_and_mark(upcoming, facts, tally)
            if live is None:
                break  # woken from a pacing wait by shutdown; still "claimed": released
            if live:
                in_flight.append((live, self._hand_over(live)))
            upcoming = self._render_next(chunks, facts, tally)  # while it is on the wire

    def _settle(self, in_flight: deque[Handed], keep: int, tally: Tally) -> None:
        """Wait for the oldest sub-batches' outcomes and record them, until `keep` are left
        (a sub-batch leaves `in_flight` once handed to the recorder: see scheduler.recording;
        with none left, once recorded)."""
        while len(in_flight) > keep:
            live, calls = in_flight[0]
            self.recorder.submit(list(zip(live, calls.result(), strict=True)), tally)
            in_flight.popleft()
        if keep == 0:
            self.recorder.drain(tally)

    def _settle_after_error(self, in_flight: deque[Handed], tally: Tally) -> None:
        """After a failure mid-tick, record what was handed over, without hiding that failure:
        a sub-batch that cannot be recorded stays "sending" (recovery reports it uncertain),
        and its provider ids are logged so that staff can settle it."""
        with contextlib.suppress(Exception):  # (logged with its provider ids by the recorder)
            self.recorder.drain(tally)
        while in_flight:
            live, calls = in_flight.popleft()
            sent: list[tuple[Outgoing, Outcome]] = []
            try:
                sent = list(zip(live, calls.result(), strict=True))
                self._record(sent, tally)
            except Exception:
                log.exception("could not record the outcomes of %d message(s)", len(live))
                for item, outcome in sent:
                    log.error("message %d: %s", item.message_id, outcome)

    def _render_next(
        self, chunks: Iterator[list[Row]], facts: Facts, tally: Tally
    ) -> list[Outgoing]:
        """The next sub-batch with anything left to send once rendered (or none)."""
        for rows in chunks:
            outgoing = self._compose_all(rows, facts, tally)
            if outgoing:
                return outgoing
        return []

    def _hand_over(self, live: list[Outgoing]) -> Pending:
        """The sub-batch's provider calls, started: in the sender process when its channel
        went there, else on the send loop's thread. Either way, `.result()` waits for them.

        Once the sender has a sub-batch, the worker keeps none of its bodies (about 1 MB of
        emails, up to IN_FLIGHT of them in flight): recording reads only the addresses."""
        if live and self.sender is not None and live[0].channel in self.sender.channels:
            pending = self.sender.submit(live)
            for item in live:
                item.payload = item.payload.without_content()
            return pending
        return self.loop.send(live, self.channels, self.limits)

    def _paced_recheck_and_mark(
        self, chunk: list[Outgoing], claimed: Facts, tally: Tally
    ) -> list[Outgoing] | None:
        """The sub-batch's tokens, then the rules again and the committed "sending" mark, all in
        one transaction unless the bucket makes it wait (then the wait comes first, outside any
        transaction). None when shutdown cut the wait short."""
        channel = chunk[0].channel
        bucket = self.channels[channel].rate_bucket
        rate = self.rates[channel]
        if bucket is not None and bucket not in self._buckets:
            self.pacer.reserve(bucket, 0, rate)  # made once, in its own transaction
            self._buckets.add(bucket)
        with transaction(self.sessions) as session:
            wait = 0.0
            if bucket is not None:
                cost = sum(item.cost for item in chunk)
                wait = self.pacer.reserve_in(session, bucket, cost, rate)
            if wait <= 0:
                return self._recheck_and_mark(session, chunk, claimed, tally)
        self.pacer.sleep(wait)
        if self.stopping.is_set():
            return None
        with transaction(self.sessions) as session:
            return self._recheck_and_mark(session, chunk, claimed, tally)

    def _recheck_and_mark(
        self, session: Session, chunk: list[Outgoing], claimed: Facts, tally: Tally
    ) -> list[Outgoing]:
        """Right before the provider call: the rules again, then the "sending" mark (committed
        by the caller before the sub-batch is handed over)."""
        now = self.clock()
        rendered_for = {item.message_id: item.payload.to for item in chunk}
        facts = refresh_facts(session, claimed, rendered_for)
        verdicts: list[tuple[int, int, Verdict]] = []
        go: list[int] = []
        for row in facts.rows:
            decided = verdict(row, facts, now, self.quiet)
            if decided is SEND and row.address(row.channel) != rendered_for[row.id]:
                decided = ADDRESS_CHANGED  # rendered for the old one: render it again
            if decided is SEND:
                go.append(row.id)
            else:
                verdicts.append((row.id, row.enrollment_id, decided))
        apply_verdicts(session, verdicts, now=now, worker=self.worker, tally=tally)
        marked = mark_sending(session, go, now=now, worker=self.worker)
        return [item for item in chunk if item.message_id in marked]

    def _record(self, sent: list[tuple[Outgoing, Outcome]], tally: Tally) -> None:
        if not sent:
            return
        with transaction(self.sessions) as session:
            record_outcomes(
                session,
                sent,
                now=self.clock(),
                worker=self.worker,
                settings=self.settings.scheduler,
                tally=tally,
            )
