"""`nurture db backup` and `restore`: a backup made while the app holds the database restores to
an identical one (every table's rows); the file is private; a restore never overwrites a
database that has contacts; PostgreSQL gets pg_dump's command without its password."""

from __future__ import annotations

import sqlite3
import stat
import sys
from contextlib import closing
from pathlib import Path

import pytest

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.consent import record_consent
from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.cli.main import main
from staff import accounts
from storage.db import transaction
from storage.models import Contact


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *args: str
) -> tuple[int, str, str]:
    capsys.readouterr()  # what fixtures logged before the command is not its output
    monkeypatch.setenv("NURTURE_DATABASE__URL", url)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys, "argv", ["nurture", "db", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def every_row(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Each table's rows in a fixed order, and the schema itself."""
    with closing(sqlite3.connect(path)) as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        rows = {t: sorted(db.execute(f"SELECT * FROM {t}"), key=repr) for t in tables}
        rows["(schema)"] = sorted(db.execute("SELECT type, name, sql FROM sqlite_master"), key=repr)
    return rows


@pytest.fixture
def busy_app(sqlite_app: NurtureApp) -> NurtureApp:
    """Contacts with consent, a staff account, a launched campaign, messages sent and events."""
    with transaction(sqlite_app.sessions) as session:
        for n in range(3):
            contact = Contact(
                first_name=f"Ana{n}", last_name="T", email=f"ana{n}@example.com", timezone="UTC"
            )
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=sqlite_app.clock(),
            )
        accounts.add_user(session, "editor@clinic.test", "a long enough password", "editor")
        lifecycle.launch(
            session, load_sequence("demo"), now=sqlite_app.clock(), settings=sqlite_app.settings
        )
    sqlite_app.planner.tick()
    assert sqlite_app.dispatcher.tick().sent == 3
    return sqlite_app


def _database(app: NurtureApp) -> Path:
    return Path(app.settings.database.url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("target", ["new", "migrated"])
def test_a_backup_restores_to_an_identical_database(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    busy_app: NurtureApp,
    tmp_path: Path,
    target: str,
) -> None:
    original = _database(busy_app)
    file = tmp_path / "backups" / "nurture.backup"
    file.parent.mkdir()
    url = busy_app.settings.database.url
    with busy_app.sessions() as session:  # the app holds the database open meanwhile
        session.connection()
        code, out, err = run(monkeypatch, capsys, url, "backup", str(file))
    assert code == 0, out + err
    assert f"backed up {original} to {file}" in out and "NURTURE_SECRET_KEY" in out
    assert stat.S_IMODE(file.stat().st_mode) == 0o600

    restored = tmp_path / "restored" / "nurture.db"
    if target == "migrated":  # e.g. made by `nurture db upgrade` on the new machine
        restored.parent.mkdir()
        empty = NurtureApp(settings=load_settings(database={"url": f"sqlite:///{restored}"}))
        empty.migrate()
        empty.dispose()
    code, out, err = run(monkeypatch, capsys, f"sqlite:///{restored}", "restore", str(file))
    assert code == 0, out + err
    assert f"restored {file} into {restored}" in out
    if target == "new":
        assert stat.S_IMODE(restored.stat().st_mode) == 0o600

    expected, got = every_row(original), every_row(restored)
    assert expected["contacts"] and expected["messages"] and expected["staff_users"]
    assert got == expected


def test_restore_refuses_a_database_with_contacts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    busy_app: NurtureApp,
    tmp_path: Path,
) -> None:
    url, original = busy_app.settings.database.url, _database(busy_app)
    file = tmp_path / "nurture.backup"
    assert run(monkeypatch, capsys, url, "backup", str(file))[0] == 0
    with transaction(busy_app.sessions) as session:
        session.add(Contact(first_name="Added", last_name="Later", timezone="UTC"))
    before = every_row(original)

    code, out, err = run(monkeypatch, capsys, url, "restore", str(file))
    assert code == 65, out + err  # EX_DATAERR, like any input we refuse
    line = _one_line(err)
    assert "has contacts" in line and "empty database" in line
    assert every_row(original) == before


def test_backup_never_overwrites_a_file(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    busy_app: NurtureApp,
    tmp_path: Path,
) -> None:
    file = tmp_path / "precious.txt"
    file.write_text("do not lose me")
    code, out, err = run(monkeypatch, capsys, busy_app.settings.database.url, "backup", str(file))
    assert code == 74, out + err  # EX_IOERR, nurture.cli.errors
    assert "File exists" in _one_line(err)
    assert file.read_text() == "do not lose me"


def test_restore_refuses_a_file_that_is_not_a_backup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "notes.db"
    file.write_text("not a database")
    target = tmp_path / "new.db"
    code, out, err = run(monkeypatch, capsys, f"sqlite:///{target}", "restore", str(file))
    assert code == 65, out + err
    assert "is not a Nurture database backup" in _one_line(err)
    assert not target.exists()


@pytest.mark.parametrize(
    ("command", "tool"),
    [("backup", "pg_dump --format=custom"), ("restore", "pg_restore --no-owner")],
)
def test_postgresql_gets_the_command_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    tool: str,
) -> None:
    url = "postgresql+psycopg://nurture:hunter2-secret@db.clinic.test:5433/nurture?sslmode=require"
    file = tmp_path / "nurture.dump"
    code, out, err = run(monkeypatch, capsys, url, command, str(file))
    assert code == 64, out + err  # EX_USAGE: nothing was copied by us
    assert "hunter2" not in out + err
    line = next(line for line in out.splitlines() if tool in line)
    assert "--dbname='postgresql://nurture@db.clinic.test:5433/nurture?sslmode=require'" in line
    assert str(file) in line
    assert _one_line(err)
    assert not file.exists()
