"""Contact search, a contact's page, suppress and mark booked; CSV imports with progress."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from contacts.suppressions import is_suppressed
from nurture.app import NurtureApp
from storage.models import Contact, Event, ImportJob
from tests.admin.conftest import EDITOR, sign_in
from web.app import create_app


def _token(client: TestClient, path: str) -> str:
    return client.get(path).text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def maria(staff_accounts: NurtureApp, make_contact) -> int:
    return make_contact(
        email="maria.lopez@example.com", phone="+13105550102", sms=True, first_name="Maria"
    )


@pytest.fixture
def make_contact(staff_accounts: NurtureApp):
    """Like the shared make_contact, on the dashboard's SQLite app."""
    from contacts.consent import record_consent
    from storage.db import transaction

    def make(*, email: str, phone: str | None = None, sms: bool = False, first_name: str = "Pat"):
        with transaction(staff_accounts.sessions) as session:
            contact = Contact(
                first_name=first_name,
                last_name="Lopez",
                email=email,
                phone=phone,
                timezone="America/Los_Angeles",
            )
            session.add(contact)
            session.flush()
            record_consent(
                session, contact.id, "email", "opted_in", source="t", evidence="f",
                occurred_at=staff_accounts.clock(),
            )  # fmt: skip
            if sms:
                record_consent(
                    session, contact.id, "sms", "opted_in", source="t", evidence="f",
                    occurred_at=staff_accounts.clock(),
                )  # fmt: skip
            return contact.id

    return make


@pytest.mark.parametrize(
    "query", ["maria", "Maria Lop", "MARIA.LOPEZ@example.com", "(310) 555-0102", "310-555-0102"]
)
def test_search_by_name_email_or_phone(viewer: TestClient, maria: int, query: str) -> None:
    page = viewer.get("/admin/contacts", params={"q": query}).text
    assert f'href="/admin/contacts/{maria}"' in page


def test_search_finds_nothing_for_strangers_and_escapes_wildcards(
    viewer: TestClient, maria: int
) -> None:
    assert "No contact matches" in viewer.get("/admin/contacts", params={"q": "zed"}).text
    assert "No contact matches" in viewer.get("/admin/contacts", params={"q": "%"}).text
    page = viewer.get("/admin/contacts", params={"q": "<script>x</script>"}).text
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page


def test_contact_page_shows_consent_and_history(viewer: TestClient, maria: int) -> None:
    page = viewer.get(f"/admin/contacts/{maria}").text
    assert "maria.lopez@example.com" in page and "Consent history" in page
    assert 'id="sms-consent">opted_in<' in page
    assert viewer.get("/admin/contacts/99999").status_code == 404


def test_editor_suppresses_a_channel(
    editor: TestClient, staff_accounts: NurtureApp, maria: int
) -> None:
    page = f"/admin/contacts/{maria}"
    response = editor.post(
        f"{page}/suppress", data={"csrf_token": _token(editor, page), "channel": "sms"}
    )
    assert response.status_code == 303 and response.headers["location"].endswith("done=suppressed")
    shown = editor.get(response.headers["location"]).text
    assert 'id="sms-consent">opted_out<' in shown and "manual" in shown
    with staff_accounts.sessions() as session:
        assert is_suppressed(session, "sms", "+13105550102")
        assert not is_suppressed(session, "email", "maria.lopez@example.com")


def test_suppressing_a_channel_without_an_address_is_explained(
    editor: TestClient, make_contact
) -> None:
    contact = make_contact(email="no.phone@example.com")
    page = f"/admin/contacts/{contact}"
    response = editor.post(
        f"{page}/suppress", data={"csrf_token": _token(editor, page), "channel": "sms"}
    )
    assert response.status_code == 400 and "no sms address" in response.text
    bad = editor.post(
        f"{page}/suppress", data={"csrf_token": _token(editor, page), "channel": "fax"}
    )
    assert bad.status_code == 422


def test_editor_marks_a_contact_booked(
    editor: TestClient, staff_accounts: NurtureApp, maria: int
) -> None:
    page = f"/admin/contacts/{maria}"
    response = editor.post(f"{page}/booked", data={"csrf_token": _token(editor, page)})
    assert response.headers["location"].endswith("done=booked")
    again = editor.post(f"{page}/booked", data={"csrf_token": _token(editor, page)})
    assert again.headers["location"].endswith("done=already-booked")
    with staff_accounts.sessions() as session:
        assert session.get(Contact, maria).booked_at is not None
        assert session.query(Event).filter_by(kind="booked", contact_id=maria).count() == 2


CSV = (
    "first_name,last_name,email,phone,tags,email_consent\n"
    "Ana,Diaz,ana@example.com,,demo,yes\n"
    "Bad,Row,not-an-email,,demo,yes\n"
    "Luis,Ortiz,luis@example.com,,demo,yes\n"
)


def _wait(client: TestClient, job: str) -> dict:
    for _ in range(200):
        status = client.get(f"{job}/progress.json").json()
        if status["status"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_upload_watch_and_download_rejects(editor: TestClient, staff_accounts: NurtureApp) -> None:
    response = editor.post(
        "/admin/imports",
        data={"csrf_token": _token(editor, "/admin/imports"), "source": "spring fair"},
        files={"file": ("fair.csv", CSV.encode(), "text/csv")},
    )
    assert response.status_code == 303
    job = response.headers["location"]
    status = _wait(editor, job)
    assert status["status"] == "finished" and status["total"] == 3
    assert status["counts"]["inserted"] == 2 and status["counts"]["rejected"] == 1
    page = editor.get(job).text
    assert "fair.csv" in page and "Download the rejected rows" in page
    rejects = editor.get(f"{job}/rejects.csv")
    assert rejects.status_code == 200 and "not-an-email" in rejects.text
    assert "attachment" in rejects.headers["content-disposition"]
    with staff_accounts.sessions() as session:
        assert session.query(Contact).filter_by(source="spring fair").count() == 2
        assert session.query(ImportJob).one().finished_at is not None


@pytest.mark.parametrize(
    ("filename", "body", "source", "message"),
    [
        ("contacts.txt", b"email\na@example.com\n", "fair", "Upload a .csv file."),
        ("empty.csv", b"", "fair", "The file is empty."),
        ("ok.csv", b"email\na@example.com\n", "   ", "Say where these contacts came from."),
    ],
)
def test_bad_uploads_are_explained(
    editor: TestClient,
    staff_accounts: NurtureApp,
    filename: str,
    body: bytes,
    source: str,
    message: str,
) -> None:
    response = editor.post(
        "/admin/imports",
        data={"csrf_token": _token(editor, "/admin/imports"), "source": source},
        files={"file": (filename, body, "text/csv")},
    )
    assert response.status_code == 400 and message in response.text
    with staff_accounts.sessions() as session:
        assert session.query(ImportJob).count() == 0


def test_an_import_that_fails_records_why(editor: TestClient) -> None:
    response = editor.post(
        "/admin/imports",
        data={"csrf_token": _token(editor, "/admin/imports"), "source": "fair"},
        files={"file": ("names.csv", b"first_name\nAna\n", "text/csv")},
    )
    status = _wait(editor, response.headers["location"])
    assert status["status"] == "failed" and "email or phone" in status["error"]
    assert editor.get(f"{response.headers['location']}/rejects.csv").status_code == 404


def test_rejects_outside_the_imports_folder_are_never_served(
    editor: TestClient, staff_accounts: NurtureApp, tmp_path
) -> None:
    from storage.db import transaction

    secret = tmp_path / "elsewhere.csv"
    secret.write_text("private\n")
    with transaction(staff_accounts.sessions) as session:
        job = ImportJob(filename="x.csv", source="x", status="finished", rejects_path=str(secret))
        session.add(job)
        session.flush()
        job_id = job.id
    assert editor.get(f"/admin/imports/{job_id}/rejects.csv").status_code == 404


@pytest.fixture
def two_mb_uploads(staff_accounts: NurtureApp) -> Iterator[TestClient]:
    """A signed-in editor on a server whose staff upload limit is 2 MB (requests: 1 MB)."""
    settings = staff_accounts.settings
    web = settings.web.model_copy(update={"max_upload_bytes": 2_097_152})
    staff_accounts.settings = settings.model_copy(update={"web": web})
    with TestClient(create_app(staff_accounts), follow_redirects=False) as client:
        assert sign_in(client, EDITOR).status_code == 303
        yield client


def _upload(client: TestClient, rows: int, token: str = "") -> Response:
    body = b"email\n" + b"someone@example.com\n" * rows
    return client.post(
        "/admin/imports",
        data={"csrf_token": token or _token(client, "/admin/imports"), "source": "fair"},
        files={"file": ("big.csv", body, "text/csv")},
    )


def test_staff_uploads_may_exceed_the_request_limit_up_to_their_own(
    two_mb_uploads: TestClient, staff_accounts: NurtureApp
) -> None:
    page = two_mb_uploads.get("/admin/imports").text
    assert 'data-max-bytes="2097152"' in page and "Up to 2.0 MB per upload" in page
    accepted = _upload(two_mb_uploads, 60_000)  # 1.2 MB: over the 1 MB request limit
    assert accepted.status_code == 303
    assert _wait(two_mb_uploads, accepted.headers["location"])["status"] == "finished"
    refused = _upload(two_mb_uploads, 120_000)  # 2.4 MB
    assert refused.status_code == 413
    with staff_accounts.sessions() as session:
        assert session.query(ImportJob).count() == 1


def test_without_a_staff_session_the_upload_route_keeps_the_request_limit(
    two_mb_uploads: TestClient, staff_accounts: NurtureApp
) -> None:
    token = _token(two_mb_uploads, "/admin/imports")
    two_mb_uploads.cookies.clear()
    assert _upload(two_mb_uploads, 60_000, token).status_code == 413
    assert _upload(two_mb_uploads, 10, token).status_code in (303, 401, 403)
    with staff_accounts.sessions() as session:
        assert session.query(ImportJob).count() == 0
