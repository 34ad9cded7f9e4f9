"""`[log] format = "json"`: one JSON object a line (time, level, logger, message, extra fields),
with every email address and phone number masked, wherever in the record it was."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from nurture.cli.common import setup_logging


@pytest.fixture
def json_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """JSON logging set up after capsys, so its handler writes to the captured stderr."""
    monkeypatch.setenv("NURTURE_LOG__FORMAT", "json")
    setup_logging()
    yield
    logging.getLogger().handlers.clear()


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_each_record_is_one_json_object_with_its_extra_fields(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = logging.getLogger("nurture.test")
    log.info("sent %s to %s", "message 41", "maria.lopez@example.com", extra={"message_id": 41})
    log.warning("second line", extra={"to": "+13105550102", "channels": ["sms", "email"]})
    err = capsys.readouterr().err
    first, second = _lines(err)
    assert first["level"] == "INFO" and first["logger"] == "nurture.test"
    assert first["message"] == "sent message 41 to m***@example.com"
    assert first["message_id"] == 41
    assert str(first["time"]).endswith("+00:00")
    assert second["to"] == "+1******0102" and second["channels"] == ["sms", "email"]
    assert "maria.lopez@example.com" not in err and "+13105550102" not in err


def test_an_exception_is_a_field_of_the_same_line_and_masked(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        raise ValueError("bad address pat.jones@example.org")
    except ValueError:
        logging.getLogger("nurture.test").exception("import failed")
    (line,) = _lines(capsys.readouterr().err)
    assert line["level"] == "ERROR" and line["message"] == "import failed"
    assert "ValueError: bad address p***@example.org" in str(line["exception"])
    assert "pat.jones" not in json.dumps(line)


def test_text_stays_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    try:
        logging.getLogger("nurture.test").info("plain")
        err = capsys.readouterr().err
        assert "nurture.test: plain" in err and not err.lstrip().startswith("{")
    finally:
        logging.getLogger().handlers.clear()


def test_the_web_servers_access_lines_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    """The access log has a handler of its own (batched writes); in JSON mode its lines are JSON
    objects like the rest, or a collector would choke on them."""
    from nurture.cli.serve import plain_access_log

    access = logging.getLogger("nurture.web.access")
    saved = access.handlers[:], access.propagate, access.filters[:]
    access.handlers.clear()
    try:
        plain_access_log(json=True)
        access.info("request method=%s path=%s client=%s", "GET", "/l/…", "maria@example.com")
        for handler in access.handlers:
            handler.flush()
        (line,) = _lines(capsys.readouterr().err)
    finally:
        access.handlers[:], access.propagate, access.filters[:] = saved
    assert line["logger"] == "nurture.web.access" and line["level"] == "INFO"
    assert str(line["message"]).startswith("request method=GET path=/l/…")
    assert "maria@example.com" not in str(line["message"])
