"""Log lines as JSON objects, one a line, for a log collector (`[log] format = "json"`).

Each line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, the record's extra fields
(`log.info("sent", extra={"message_id": 41})`) and `exception` when there is one. The message
has already passed core.redact's RedactingFilter on the handler; extra fields and exception
text pass through the same `redact` here, so no full email address or phone number is written
whichever part of a record carries it.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from core.redact import redact

#: Attributes every LogRecord has: whatever else a record holds came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is written, as the rich console does
    (pytest's capture and a redirected stderr replace it after logging is set up)."""

    @property  # read-only: sys.stderr, always
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES and key not in line:
                line[key] = _clean(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


def _clean(value: Any) -> Any:
    """Extra fields as JSON values, every string in them redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    return redact(str(value))
