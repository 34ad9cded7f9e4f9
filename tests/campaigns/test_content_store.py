"""Content versions: written only on change, with author, time and note; the seed happens once;
export -> import into an empty database -> export gives the same bytes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from campaigns import content_folder, content_store
from campaigns.content_folder import ContentFolder
from campaigns.toml_text import dump_toml
from core.clock import FrozenClock
from core.errors import InputError, NotFound
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction


def _spasm_relief() -> tuple[str, dict[str, str]]:
    return content_folder.read_sequence(ContentFolder.at(None), "spasm-relief")


def test_a_version_is_written_only_when_something_changed(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    text, files = _spasm_relief()
    with transaction(sqlite_app.sessions) as session:
        before = content_store.current_version(session, "spasm-relief")  # the seed's
        same, new = content_store.save_version(
            session,
            "spasm-relief",
            definition_text=text,
            templates=files,
            author="ana@clinic.test",
            now=frozen_clock(),
        )
        assert (same.id, new) == (before.id, False)

        frozen_clock.advance(minutes=5)
        edited = {**files, "es/02-cycle.sms.txt": files["es/02-cycle.sms.txt"] + " "}
        version, new = content_store.save_version(
            session,
            "spasm-relief",
            definition_text=text,
            templates=edited,
            author="ana@clinic.test",
            now=frozen_clock(),
        )
        assert new and version.number == before.number + 1
        assert version.author == "ana@clinic.test"
        assert version.created_at == frozen_clock()
        assert version.note == "changed es/02-cycle.sms.txt"
        assert content_store.files_of(session, version) == edited
        assert [v.number for v in content_store.versions(session, "spasm-relief")] == [1, 2]
        assert content_store.current_version(session, "spasm-relief").id == version.id


def test_a_version_from_data_is_written_as_toml_and_checked(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    text, files = _spasm_relief()
    data = tomllib.loads(text)
    data["title"] = "A new title"
    with transaction(sqlite_app.sessions) as session:
        version, new = content_store.save_version(
            session,
            "spasm-relief",
            definition=data,
            templates=files,
            author="ana@clinic.test",
            now=frozen_clock(),
            note="retitled",
        )
        assert new and version.note == "retitled"
        assert tomllib.loads(version.definition_text) == data
        assert content_store.sequence_of(version).title == "A new title"
        del data["steps"]
        with pytest.raises(InputError, match="steps"):
            content_store.save_version(
                session,
                "spasm-relief",
                definition=data,
                templates=files,
                author="a",
                now=frozen_clock(),
            )
        with pytest.raises(InputError, match="not a file name"):
            content_store.save_version(
                session,
                "spasm-relief",
                definition_text=text,
                templates={"../layouts/email.html": "x"},
                author="a",
                now=frozen_clock(),
            )
        with pytest.raises(NotFound):
            content_store.current_version(session, "no-such-sequence")


def test_toml_written_from_data_reads_back_equal() -> None:
    data = {
        "name": "x",
        "title": 'Quotes " and \\ and ünïcode\nnew line',
        "steps": [{"name": "a", "window": {"days": ["mon"], "start": "08:00"}, "max": 2}],
        "audience": {"tags": ["demo"], "enroll_new_contacts": False},
        "translations": {"es": {"reason": "porque sí"}},
        "ratio": 1.5,
    }
    assert tomllib.loads(dump_toml(data)) == data


def test_the_seed_happens_once(sqlite_app: NurtureApp, frozen_clock: FrozenClock) -> None:
    with transaction(sqlite_app.sessions) as session:
        names = content_store.sequence_names(session)
        assert set(names) >= {"demo", "spasm-relief"}  # the app's first migrate seeded them
        first = content_store.current_version(session, "spasm-relief")
        assert (first.number, first.author) == (1, "seed")
        assert content_folder.seed_if_empty(session, None, now=frozen_clock()) == []
    sqlite_app.migrate()  # a second start: nothing seeded again
    with transaction(sqlite_app.sessions) as session:
        assert len(content_store.versions(session, "spasm-relief")) == 1


def test_the_content_folder_setting_names_the_seed(
    tmp_path: Path, frozen_clock: FrozenClock
) -> None:
    from providers.memory import MemoryChannel
    from tests.conftest import build_app

    (tmp_path / "content" / "campaigns").mkdir(parents=True)
    (tmp_path / "content" / "campaigns" / "only.toml").write_bytes(
        (ContentFolder.at(None).campaigns / "demo.toml").read_bytes().replace(b'"demo"', b'"only"')
    )
    (tmp_path / "content" / "campaigns" / "broken.toml").write_text("title = [")  # skipped
    ours = tmp_path / "content" / "templates" / "spasm-relief"
    ours.mkdir(parents=True)
    (ours / "01-welcome.subject.txt").write_bytes(b"Hello\r\n")
    app = build_app(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path,
        frozen_clock,
        MemoryChannel(),
        content={"folder": str(tmp_path / "content")},
    )
    try:
        with transaction(app.sessions) as session:
            assert content_store.sequence_names(session) == ["only"]
            version = content_store.current_version(session, "only")
            assert content_store.files_of(session, version) == {
                "01-welcome.subject.txt": "Hello\r\n"
            }
    finally:
        app.dispose()


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_export_then_import_round_trips_every_version_byte_for_byte(
    nurture_app: NurtureApp, tmp_path: Path, frozen_clock: FrozenClock, channel: MemoryChannel
) -> None:
    from tests.conftest import build_app

    text, files = _spasm_relief()
    with transaction(nurture_app.sessions) as session:
        frozen_clock.advance(hours=1)
        content_store.save_version(
            session,
            "spasm-relief",
            definition_text=text.replace("\n", "\r\n") + "# é\n",
            templates={**files, "es/99-new.sms.txt": "Hola {{ contact.first_name }}\n\n"},
            author="ana@clinic.test",
            now=frozen_clock(),
        )
        content_folder.export_to(session, tmp_path / "first")
    exported = _tree(tmp_path / "first")
    assert "versions/spasm-relief/v2/templates/es/99-new.sms.txt" in exported
    assert exported["campaigns/spasm-relief.toml"].endswith("# é\n".encode())

    fresh = build_app(
        f"sqlite:///{tmp_path / 'fresh.db'}",
        tmp_path / "fresh",
        frozen_clock,
        channel,
        content={"folder": str(tmp_path / "nothing")},  # no seed: an empty content store
    )
    try:
        with transaction(fresh.sessions) as session:
            assert content_store.sequence_names(session) == []
            report = content_folder.import_from(session, tmp_path / "first", now=frozen_clock())
            assert "spasm-relief v2" in report.added and report.skipped == 0
            again = content_folder.import_from(session, tmp_path / "first", now=frozen_clock())
            assert again.added == [] and again.skipped == len(report.added)
            content_folder.export_to(session, tmp_path / "second")
            v2 = content_store.current_version(session, "spasm-relief")
            assert (v2.number, v2.author) == (2, "ana@clinic.test")
            assert v2.created_at == frozen_clock()
    finally:
        fresh.dispose()
    assert _tree(tmp_path / "second") == exported


def test_an_edited_export_imports_as_a_new_version(
    sqlite_app: NurtureApp, tmp_path: Path, frozen_clock: FrozenClock
) -> None:
    with transaction(sqlite_app.sessions) as session:
        content_folder.export_to(session, tmp_path / "out")
    subject = tmp_path / "out" / "templates" / "spasm-relief" / "01-welcome.subject.txt"
    subject.write_bytes(b"A new subject line\n")
    with transaction(sqlite_app.sessions) as session:
        report = content_folder.import_from(session, tmp_path / "out", now=frozen_clock())
        # both sequences that read the spasm-relief folder take the edit
        assert sorted(report.added) == ["demo v2", "spasm-relief v2"]
        version = content_store.current_version(session, "spasm-relief")
        assert version.author == "import"
        assert version.note == "changed 01-welcome.subject.txt"


def test_an_import_refuses_a_broken_manifest(sqlite_app: NurtureApp, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with transaction(sqlite_app.sessions) as session, pytest.raises(InputError, match="manifest"):
        content_folder.import_from(session, tmp_path, now=sqlite_app.clock())


def test_the_note_says_what_changed_in_staff_words(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    text, files = _spasm_relief()
    data = tomllib.loads(text)
    data["title"] = "Another title"
    data["steps"][1]["delay"] = "5d"
    moved = data["steps"][1]["name"]
    with transaction(sqlite_app.sessions) as session:
        version, _ = content_store.save_version(
            session,
            "spasm-relief",
            definition=data,
            templates=files,
            author="a",
            now=frozen_clock(),
        )
        assert version.note == f"definition: title, step {moved}"
        commented, _ = content_store.save_version(
            session,
            "spasm-relief",
            definition_text=version.definition_text + "# a comment\n",
            templates={**files, "extra.txt": "x"},
            author="a",
            now=frozen_clock(),
        )
        assert commented.note == "definition: wording; added extra.txt"
