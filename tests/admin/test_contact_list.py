"""The contacts page lists contacts from the start, newest first and masked, narrowed by tag,
consent on each channel, language and campaign (combined, and with the search box), a page of 50
at a time."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from contacts.listing import PAGE_SIZE, ContactFilter, list_page
from core.errors import InputError
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, Contact, Enrollment

LINK = re.compile(r'href="/admin/contacts/(\d+)"')

PEOPLE = [
    # first name, tags, email consent, sms consent, language, in the campaign
    ("Ana", ["event"], "opted_in", "opted_in", "es", True),
    ("Ben", ["event"], "opted_out", None, "en", True),
    ("Cora", ["web"], "opted_in", "opted_out", "es", False),
    ("Dev", ["web", "event"], None, "opted_in", "en", False),
    ("Eve", [], "opted_in", None, "es", True),
]


@pytest.fixture
def people(staff_accounts: NurtureApp) -> dict[str, int]:
    ids = {}
    with transaction(staff_accounts.sessions) as session:
        campaign = Campaign(name="spasm-relief", definition={}, state="active")
        session.add(campaign)
        session.flush()
        for n, (name, tags, email, sms, language, enrolled) in enumerate(PEOPLE):
            contact = Contact(
                first_name=name,
                last_name="Tester",
                email=f"{name.lower()}@example.com",
                phone=f"+1310555010{n}",
                timezone="America/Los_Angeles",
                email_consent=email,
                sms_consent=sms,
                language=language,
            )
            session.add(contact)
            session.flush()
            contact.add_tags(tags)
            if enrolled:
                session.add(Enrollment(campaign_id=campaign.id, contact_id=contact.id))
            ids[name] = contact.id
        gone = Contact(first_name="Gone", email="gone@example.com", timezone="UTC")
        gone.erased_at = staff_accounts.clock()
        session.add(gone)
    return ids


def _names(client: TestClient, **params: str) -> list[str]:
    page = client.get("/admin/contacts", params=params)
    assert page.status_code == 200, page.text
    body = page.text.split('<table id="results">', 1)[-1] if "results" in page.text else ""
    return re.findall(r'href="/admin/contacts/\d+">(\w+) Tester</a>', body)


def test_the_page_lists_everyone_newest_first_masked(
    viewer: TestClient, people: dict[str, int]
) -> None:
    page = viewer.get("/admin/contacts").text
    assert _names(viewer) == ["Eve", "Dev", "Cora", "Ben", "Ana"]  # the forgotten are left out
    assert "All contacts, newest first" in page
    assert "a***@example.com" in page and "ana@example.com" not in page
    assert "+1******0100" in page and "+13105550100" not in page
    assert f'href="/admin/contacts/{people["Ana"]}"' in page
    assert 'id="older"' not in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tag": "event"}, ["Dev", "Ben", "Ana"]),
        ({"email_consent": "opted_out"}, ["Ben"]),
        ({"email_consent": "none"}, ["Dev"]),
        ({"sms_consent": "opted_in"}, ["Dev", "Ana"]),
        ({"sms_consent": "none"}, ["Eve", "Ben"]),
        ({"language": "es"}, ["Eve", "Cora", "Ana"]),
        ({"campaign": "spasm-relief"}, ["Eve", "Ben", "Ana"]),
        ({"campaign": "spasm-relief", "tag": "event"}, ["Ben", "Ana"]),
        (
            {"campaign": "spasm-relief", "language": "es", "email_consent": "opted_in"},
            ["Eve", "Ana"],
        ),
        ({"tag": "event", "sms_consent": "opted_in", "language": "en"}, ["Dev"]),
        ({"tag": "web", "q": "cora"}, ["Cora"]),
        ({"language": "es", "q": "ben"}, []),
        ({"campaign": "no-such-campaign"}, []),
    ],
)
def test_filters_combine(
    viewer: TestClient, people: dict[str, int], params: dict[str, str], expected: list[str]
) -> None:
    assert _names(viewer, **params) == expected


def test_no_match_says_so_and_a_bad_filter_is_one_line(
    viewer: TestClient, people: dict[str, int]
) -> None:
    assert "No contact matches" in viewer.get("/admin/contacts", params={"tag": "zzz"}).text
    bad = viewer.get("/admin/contacts", params={"email_consent": "maybe"})
    assert bad.status_code == 400 and "email consent must be one of" in bad.text
    with pytest.raises(InputError, match="language must be one of"):
        ContactFilter(language="xx")


def test_paging_walks_every_contact_once(viewer: TestClient, staff_accounts: NurtureApp) -> None:
    total = PAGE_SIZE + 7
    with transaction(staff_accounts.sessions) as session:
        session.add_all(
            Contact(first_name=f"P{n}", email=f"p{n}@example.com", timezone="UTC")
            for n in range(total)
        )
    first = viewer.get("/admin/contacts").text
    ids = [int(i) for i in LINK.findall(first)]
    assert len(ids) == PAGE_SIZE and ids == sorted(ids, reverse=True)
    older = re.search(r'href="([^"]+)" id="older"', first)
    assert older is not None
    second = viewer.get(older.group(1).replace("&amp;", "&")).text
    more = [int(i) for i in LINK.findall(second)]
    assert len(more) == 7 and max(more) < min(ids)
    assert 'id="older"' not in second and 'id="newest"' in second
    with staff_accounts.sessions() as session:
        assert list_page(session, ContactFilter(), before=min(more)).contacts == []


def test_the_list_needs_a_login(client: TestClient) -> None:
    response = client.get("/admin/contacts", params={"tag": "event"})
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/login")
