"""The embeddable sign-up form: /join?embed=1 may be framed by the clinic's site, nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.clock import FrozenClock
from core.errors import ConfigError
from core.settings import load_settings
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Event
from web.app import create_app

SITE = "frame-ancestors https://spinaldecompressionla.com"


def _token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "the form carries a signed token"
    return found.group(1)


def test_the_embedded_form_may_be_framed_only_by_the_clinics_website(client: TestClient) -> None:
    for lang in ("en", "es"):
        response = client.get(f"/join?lang={lang}&embed=1")
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == SITE
        assert "x-frame-options" not in response.headers
        assert '<body class="embed">' in response.text
        assert f'action="/join?lang={lang}&amp;embed=1"' in response.text
        assert _token(response.text)
        assert (
            'target="_blank" rel="noopener"' in response.text
        )  # the privacy link leaves the frame


@pytest.mark.parametrize("path", ["/join", "/join?lang=es", "/join?embed=0", "/join?embed=yes"])
def test_the_hosted_pages_still_refuse_every_frame(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<body>" in response.text and "embed=1" not in response.text


def test_other_pages_keep_their_deny(client: TestClient) -> None:
    response = client.get("/join/confirm/not-a-token?embed=1")
    assert response.status_code == 404
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors" not in response.headers.get("content-security-policy", "")


def test_a_sign_up_sent_from_the_frame_stays_framable_and_says_where_it_came_from(
    client: TestClient, nurture_app: NurtureApp, frozen_clock: FrozenClock, channel: MemoryChannel
) -> None:
    token = _token(client.get("/join?lang=es&embed=1").text)
    frozen_clock.advance(seconds=5)
    fields = {"token": token, "email": "rosa@example.com", "first_name": "Rosa", "website": ""}
    answer = client.post("/join?lang=es&embed=1", data=fields)
    assert answer.status_code == 200 and '<body class="embed">' in answer.text
    assert answer.headers["content-security-policy"] == SITE
    assert len(channel.emails) == 1
    with transaction(nurture_app.sessions) as session:
        event = session.scalars(select(Event).where(Event.kind == "signup_pending")).one()
        assert event.data["form_url"] == "http://127.0.0.1:8000/join?lang=es&embed=1"


def test_a_refused_frame_post_is_answered_in_the_frame(client: TestClient) -> None:
    answer = client.post("/join?embed=1", data={"token": "forged", "email": "x@example.com"})
    assert answer.status_code == 400
    assert answer.headers["content-security-policy"] == SITE
    assert "x-frame-options" not in answer.headers


@pytest.fixture
def configured(
    sqlite_url: str, tmp_path: Path, frozen_clock: FrozenClock, channel: MemoryChannel
) -> Iterator[TestClient]:
    origins = ["https://www.clinic.example/", "http://localhost:8080"]
    settings = load_settings(
        database={"url": sqlite_url},
        outbox={"dir": str(tmp_path / "outbox")},
        signup={"embed_origins": origins},
    )
    app = NurtureApp(settings=settings, clock=frozen_clock, email_override=channel)
    app.migrate()
    yield TestClient(create_app(app), follow_redirects=False)
    app.dispose()


def test_the_configured_origins_are_the_ones_allowed(configured: TestClient) -> None:
    response = configured.get("/join?embed=1")
    assert response.headers["content-security-policy"] == (
        "frame-ancestors https://www.clinic.example http://localhost:8080"
    )


@pytest.mark.parametrize(
    "origin",
    ["https://clinic.example/form", "javascript:alert(1)", "https://a.example; script-src *"],
)
def test_an_origin_that_is_no_origin_is_refused_when_settings_load(origin: str) -> None:
    with pytest.raises(ConfigError, match="embed_origins"):
        load_settings(signup={"embed_origins": [origin]})
