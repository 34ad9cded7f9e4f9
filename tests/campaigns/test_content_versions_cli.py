"""`nurture content export|import|history` and `nurture campaigns upgrade` as a person runs them."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from campaigns import content_store, lifecycle
from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.cli.main import main
from storage.db import transaction


def _run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["nurture", *args])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("NURTURE_DATABASE__URL", url)
    monkeypatch.setenv("NURTURE_OUTBOX__DIR", str(tmp_path / "outbox"))
    return url


def test_history_export_and_import(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(monkeypatch, capsys, "content", "history", "spasm-relief")
    assert code == 0 and "v1" in out and "seed" in out

    code, out, _ = _run(monkeypatch, capsys, "content", "export", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "campaigns" / "spasm-relief.toml").is_file()
    code, _, err = _run(monkeypatch, capsys, "content", "export", str(tmp_path / "out"))
    assert code == 65 and "not empty" in err

    code, out, _ = _run(monkeypatch, capsys, "content", "import", str(tmp_path / "out"))
    assert code == 0 and "0 version(s) added" in out

    code, _, err = _run(monkeypatch, capsys, "content", "history", "no-such")
    assert code == 66 and "no sequence named 'no-such'" in err


def test_upgrade_says_whom_it_reaches_then_moves_on(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = NurtureApp(settings=load_settings())
    app.migrate()
    with transaction(app.sessions) as session:
        version = content_store.current_version(session, "demo")
        lifecycle.launch(
            session, content_store.sequence_of(version), now=app.clock(), settings=app.settings,
            version=version,
        )  # fmt: skip
        files = content_store.files_of(session, version)
        files["01-welcome.subject.txt"] = "New: " + files["01-welcome.subject.txt"]
        content_store.save_version(
            session, "demo", definition_text=version.definition_text, templates=files,
            author="ana@clinic.test", now=app.clock(),
        )  # fmt: skip
    app.dispose()

    code, out, _ = _run(monkeypatch, capsys, "campaigns", "upgrade", "demo")  # answered no
    assert code == 1 and "demo: version 1 -> 2; 0 contact(s)" in out
    assert "v2: changed 01-welcome.subject.txt" in out
    code, out, _ = _run(monkeypatch, capsys, "campaigns", "upgrade", "demo", "--yes")
    assert code == 0 and "demo runs version 2" in out
    code, _, err = _run(monkeypatch, capsys, "campaigns", "upgrade", "demo", "--yes")
    assert code == 65 and "already runs the newest version" in err


def test_launch_by_name_pins_the_stored_current_version(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "true")
    app = NurtureApp(settings=load_settings())
    app.migrate()
    with transaction(app.sessions) as session:
        seeded = content_store.current_version(session, "demo")
        files = content_store.files_of(session, seeded)
        files["01-welcome.subject.txt"] = "Edited in the database\n"
        edited, _ = content_store.save_version(
            session, "demo", definition_text=seeded.definition_text, templates=files,
            author="ana@clinic.test", now=app.clock(),
        )  # fmt: skip
        edited_id = edited.id
    app.dispose()

    code, _, err = _run(monkeypatch, capsys, "campaigns", "launch", "demo")
    assert code == 0, err
    app = NurtureApp(settings=load_settings())
    try:
        with transaction(app.sessions) as session:
            campaign = lifecycle.get_campaign(session, "demo")
            assert campaign.content_version_id == edited_id
    finally:
        app.dispose()


def test_validate_checks_the_stored_version_and_still_takes_a_file(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.settings import REPO_ROOT

    app = NurtureApp(settings=load_settings())
    app.migrate()
    with transaction(app.sessions) as session:
        seeded = content_store.current_version(session, "demo")
        files = content_store.files_of(session, seeded)
        files["01-welcome.subject.txt"] = "Hello {{ contact.diagnosis }}\n"
        content_store.save_version(
            session, "demo", definition_text=seeded.definition_text, templates=files,
            author="ana@clinic.test", now=app.clock(),
        )  # fmt: skip
    app.dispose()

    code, out, err = _run(monkeypatch, capsys, "campaigns", "validate", "demo")
    assert code == 65 and "demo: stored version 2 (ana@clinic.test)" in out
    assert "01-welcome.subject.txt" in err
    code, out, err = _run(
        monkeypatch, capsys, "campaigns", "validate", str(REPO_ROOT / "campaigns" / "demo.toml")
    )
    assert code == 0, err
    assert "stored version" not in out and "✓ demo: valid" in out


def test_preview_renders_the_stored_version(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = NurtureApp(settings=load_settings())
    app.migrate()
    with transaction(app.sessions) as session:
        seeded = content_store.current_version(session, "demo")
        files = content_store.files_of(session, seeded)
        files["01-welcome.subject.txt"] = "A subject only the database has\n"
        content_store.save_version(
            session, "demo", definition_text=seeded.definition_text, templates=files,
            author="ana@clinic.test", now=app.clock(),
        )  # fmt: skip
    app.dispose()
    args = ("campaigns", "preview", "demo", "--step", "1", "--out", str(tmp_path / "p"))
    code, out, err = _run(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "stored version 2" in out and "A subject only the database has" in out
