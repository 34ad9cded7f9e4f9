"""The contact's language from an import: `language`, `idioma` or `lang` columns, the words staff
write for a language, a reject for anything else, English when the file says nothing."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact


def languages(app: NurtureApp) -> dict[str, str]:
    with transaction(app.sessions, immediate=False) as session:
        rows = session.execute(select(Contact.email, Contact.language))
        return {str(email): language for email, language in rows}


@pytest.mark.parametrize("column", ["language", "idioma", "Lang", "Preferred Language"])
def test_each_usual_column_name_sets_the_language(
    column: str,
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
) -> None:
    header = ["email", "email_consent", column]
    rows = [
        {"email": "ana@example.com", "email_consent": "yes", column: "es"},
        {"email": "bo@example.com", "email_consent": "yes", column: "ES"},
        {"email": "cruz@example.com", "email_consent": "yes", column: "Spanish"},
        {"email": "dora@example.com", "email_consent": "yes", column: "español"},
        {"email": "eli@example.com", "email_consent": "yes", column: "Espanol"},
        {"email": "fay@example.com", "email_consent": "yes", column: "English"},
        {"email": "gus@example.com", "email_consent": "yes", column: ""},
    ]
    summary = run_import(write_csv(rows, header=header))
    assert (summary.inserted, summary.rejected) == (7, 0)
    assert languages(nurture_app) == {
        "ana@example.com": "es",
        "bo@example.com": "es",
        "cruz@example.com": "es",
        "dora@example.com": "es",
        "eli@example.com": "es",
        "fay@example.com": "en",
        "gus@example.com": "en",  # the file says nothing: English
    }


def test_a_file_without_a_language_column_imports_everyone_in_english(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    rows = [{"email": "ana@example.com", "email_consent": "yes"}]
    run_import(write_csv(rows, header=["email", "email_consent"]))
    assert languages(nurture_app) == {"ana@example.com": "en"}


def test_an_unknown_language_is_rejected_with_a_reason_staff_can_act_on(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    header = ["email", "idioma"]
    rows = [
        {"email": "ana@example.com", "idioma": "es"},
        {"email": "bo@example.com", "idioma": "Klingon"},
        {"email": "cruz@example.com", "idioma": "fr"},
    ]
    summary = run_import(write_csv(rows, header=header))
    assert (summary.inserted, summary.rejected) == (1, 2)
    reasons = {row["line"]: row["reason"] for row in csv.DictReader(summary.rejects_path.open())}
    assert "language 'Klingon' is not one we write in" in reasons["3"]
    assert "language 'fr' is not one we write in" in reasons["4"]
    assert "en or es" in reasons["3"]
    assert languages(nurture_app) == {"ana@example.com": "es"}


def test_a_later_file_that_states_a_language_changes_a_known_contact_and_silence_keeps_it(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    header = ["email", "lang"]
    run_import(write_csv([{"email": "ana@example.com", "lang": ""}], header=header))
    assert languages(nurture_app) == {"ana@example.com": "en"}
    summary = run_import(write_csv([{"email": "ana@example.com", "lang": "es"}], header=header))
    assert summary.updated == 1
    assert languages(nurture_app) == {"ana@example.com": "es"}
    # a file that says nothing about the language leaves it, and changes nothing
    again = run_import(write_csv([{"email": "ana@example.com", "lang": ""}], header=header))
    assert (again.updated, again.unchanged) == (0, 1)
    assert languages(nurture_app) == {"ana@example.com": "es"}
