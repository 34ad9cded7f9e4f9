"""Migration 0010's downgrade (storage/migrations): with a re-entry in the table (entry > 0),
which the older unique (campaign, contact) pair cannot hold, it refuses with a clear message and
changes nothing; without one it downgrades. Run on SQLite files, as tests/foundation's are."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from core.errors import NurtureError
from storage.db import alembic_config, upgrade

_ROWS = """
INSERT INTO campaigns (id, name, definition, state, created_at)
    VALUES (1, 'pre-visit', '{}', 'active', '2026-12-01 00:00:00');
INSERT INTO contacts (id, first_name, last_name, timezone, custom_fields, source, created_at,
                      updated_at)
    VALUES (1, '', '', 'UTC', '{}', 'test', '2026-12-01 00:00:00', '2026-12-01 00:00:00');
INSERT INTO enrollments (campaign_id, contact_id, state, enrolled_at, planned_step, entry)
    VALUES (1, 1, 'exited', '2026-12-01 00:00:00', -1, 0);
"""
_REENTRY = """
INSERT INTO enrollments (campaign_id, contact_id, state, enrolled_at, planned_step, entry)
    VALUES (1, 1, 'active', '2026-12-02 00:00:00', -1, 1)
"""


def _at_0010(path: Path, *, reentry: bool) -> str:
    url = f"sqlite:///{path}"
    upgrade(url, "0010")
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in _ROWS.split(";"):
            if statement.strip():
                connection.execute(text(statement))
        if reentry:
            connection.execute(text(_REENTRY))
    engine.dispose()
    return url


def _state(url: str) -> tuple[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        version: str = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar_one()
        count: int = connection.execute(text("SELECT count(*) FROM enrollments")).scalar_one()
    engine.dispose()
    return version, count


def test_the_downgrade_refuses_clearly_once_someone_entered_again(tmp_path: Path) -> None:
    url = _at_0010(tmp_path / "reentered.db", reentry=True)
    with pytest.raises(NurtureError, match=r"1 enrollment\(s\) are a contact's second"):
        command.downgrade(alembic_config(url), "0009")
    assert _state(url) == ("0010", 2)  # nothing deleted, still at 0010


def test_the_downgrade_runs_without_re_entries(tmp_path: Path) -> None:
    url = _at_0010(tmp_path / "once.db", reentry=False)
    command.downgrade(alembic_config(url), "0009")
    assert _state(url) == ("0009", 1)
