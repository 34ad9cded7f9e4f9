"""The offline provider: emails become .eml files with every header, texts become JSON lines.

It is the default, so the demo and a fresh clone never reach a real provider. One object serves
as both the email and the SMS provider; its writes run in a thread, off the event loop.
The files hold whole messages to real people, so `OutboxFiles` erases a forgotten person's
(CCPA right to delete; contacts.forget).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import IO, TYPE_CHECKING

from core.clock import utcnow
from providers.base import FoundMessage, OutgoingEmail, OutgoingSms, SendResult

if TYPE_CHECKING:  # forgetting loads phonenumbers, which a worker never needs
    from contacts.forget import Person


class OutboxChannel:
    name = "outbox"
    #: No provider limit to respect.
    rate_bucket: str | None = None
    #: Writes under way at once (each in the event loop's default thread pool).
    concurrency = 4

    def __init__(self, folder: Path) -> None:
        self.email_dir = folder / "email"
        self.sms_file = folder / "sms.jsonl"
        self.email_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    async def send(self, message: OutgoingEmail | OutgoingSms) -> SendResult:
        if isinstance(message, OutgoingEmail):
            return await asyncio.to_thread(self._write_email, message)
        return await asyncio.to_thread(self._append_sms, message)

    async def aclose(self) -> None:
        """Nothing to release: each write opens and closes its file."""

    async def find_sent(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]:
        """The outbox is its own provider log: the lines of sms.jsonl for `to` in the window."""
        return await asyncio.to_thread(self._texts_to, to, after, before)

    def _texts_to(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]:
        if not self.sms_file.exists():
            return []
        with self.sms_file.open(encoding="utf-8") as handle, _locked(handle):
            lines = handle.readlines()
        found = []
        for line in lines:
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["at"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash mid-write was never a sent text
            if record.get("to") == to and after <= at <= before:
                sender = str(record.get("from") or "")
                service = sender if sender.startswith("MG") else ""
                found.append(
                    FoundMessage(
                        f"outbox-sms-{record.get('message_id')}",
                        to,
                        "" if service else sender,
                        service,
                        "sent",
                        at,
                        str(record.get("body") or ""),
                    )
                )
        return found

    def _write_email(self, email: OutgoingEmail) -> SendResult:
        message = EmailMessage()
        message["From"] = formataddr((email.from_name, email.from_email))
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False)
        message_id = make_msgid(idstring=f"nurture-{email.message_id}", domain="outbox.local")
        message["Message-ID"] = message_id
        if email.reply_to:
            message["Reply-To"] = email.reply_to
        for name, value in email.headers.items():
            message[name] = value
        for name, value in email.custom_args.items():
            header = name.removeprefix("nurture_").replace("_", "-").title()
            message[f"X-Nurture-{header}"] = value  # nurture_message_id -> X-Nurture-Message-Id
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        path = self.email_dir / f"{email.message_id:08d}.eml"
        _write_atomically(path, bytes(message))
        return SendResult(self.name, message_id.strip("<>"))

    def _append_sms(self, sms: OutgoingSms) -> SendResult:
        record = {
            "message_id": sms.message_id,
            "to": sms.to,
            "from": sms.from_number or sms.messaging_service_sid,
            "body": sms.body,
            "segments": sms.segments,
            "status_callback": sms.status_callback,
            "at": utcnow().isoformat(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, self.sms_file.open("a", encoding="utf-8") as handle, _locked(handle):
            handle.write(line)
            handle.flush()  # before the lock is released
        return SendResult(self.name, f"outbox-sms-{sms.message_id}")


class OutboxFiles:
    """The outbox folder, as one of the places `forget` erases a person from: the .eml file of
    each of their messages goes, and sms.jsonl loses the lines of their texts."""

    def __init__(self, folder: Path) -> None:
        self.email_dir = folder / "email"
        self.sms_file = folder / "sms.jsonl"

    def forget(self, person: Person) -> int:
        changed = 0
        for message_id in sorted(person.message_ids):
            path = self.email_dir / f"{message_id:08d}.eml"
            if path.exists():
                path.unlink()
                changed += 1
        return changed + self._forget_texts(person)

    def _forget_texts(self, person: Person) -> int:
        """Rewritten in place under the same lock the senders append under (of another process
        too: a dispatcher may be writing), so no line sent meanwhile is lost."""
        if not self.sms_file.exists():
            return 0
        with self.sms_file.open("r+", encoding="utf-8") as handle, _locked(handle):
            lines = handle.readlines()
            kept = [line for line in lines if not _is_theirs(line, person)]
            if len(kept) == len(lines):
                return 0
            handle.seek(0)
            handle.writelines(kept)
            handle.truncate()
            handle.flush()
        return 1


def _is_theirs(line: str, person: Person) -> bool:
    try:
        message_id = json.loads(line).get("message_id")
    except (ValueError, AttributeError):
        message_id = None
    return message_id in person.message_ids or person.mentioned_in(line)


@contextlib.contextmanager
def _locked(handle: IO[str]) -> Iterator[None]:
    """An exclusive flock on an open file (POSIX advisory; nothing to do where there is none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (Windows)
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
