"""The dashboard's sign-up form page: hosted links and the website snippet, behind the login."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from fastapi.testclient import TestClient

VIEWER = "viewer@clinic.test"
SNIPPET = re.compile(r'<textarea id="snippet-(\w+)"[^>]*>([^<]*)</textarea>')


def test_the_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/admin/sign-up-form")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


def test_it_shows_the_hosted_links_and_an_iframe_snippet_per_language(
    client: TestClient, login: Callable[..., object]
) -> None:
    login(client, VIEWER)  # reading the page is enough: it changes nothing
    page = client.get("/admin/sign-up-form")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1
    assert 'href="http://127.0.0.1:8000/join?lang=en"' in page.text
    assert 'href="http://127.0.0.1:8000/join?lang=es"' in page.text
    snippets = {code: html.unescape(text) for code, text in SNIPPET.findall(page.text)}
    assert set(snippets) == {"en", "es"}
    for code, snippet in snippets.items():
        source = re.fullmatch(
            r'<iframe src="([^"]+)" title="[^"]+" style="[^"]+" loading="lazy">'
            r"</iframe>",
            snippet,
        )
        assert source, snippet
        assert html.unescape(source.group(1)) == f"http://127.0.0.1:8000/join?lang={code}&embed=1"
    assert "<code>https://spinaldecompressionla.com</code>" in page.text
    assert 'aria-current="page">Sign-up form' in page.text


def test_the_snippet_frames_a_page_the_clinics_site_may_show(
    client: TestClient, login: Callable[..., object]
) -> None:
    login(client, VIEWER)
    snippet = html.unescape(SNIPPET.findall(client.get("/admin/sign-up-form").text)[1][1])
    source = html.unescape(re.search(r'src="([^"]+)"', snippet).group(1))  # type: ignore[union-attr]
    framed = client.get(source.removeprefix("http://127.0.0.1:8000"))
    assert framed.status_code == 200 and "Acepto recibir mensajes" in framed.text
    assert framed.headers["content-security-policy"] == (
        "frame-ancestors https://spinaldecompressionla.com"
    )
