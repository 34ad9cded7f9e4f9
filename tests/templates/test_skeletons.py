"""The page-skeleton cache sends exactly what rendering and inlining each email in full sends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import css_inline
import pytest

import templates.renderer as renderer_module
from campaigns.compose import Composer, UnknownDestination
from campaigns.definitions import load_sequence
from core.settings import load_settings
from nurture.app import NurtureApp
from storage.models import Channel
from templates.renderer import RenderedEmail, TemplateRenderer, TemplateRenderError
from templates.skeletons import Skeletons

NAMES = ["Pat", "", "A & B", "<b>Bo</b>", 'Ann "Annie"', "O'Brien", "José", "Zoë Øster", "日本"]
LONG_URL = "https://x.test/u/49~e.awuNlw.6urMa_H_n2516hXXccySYU_T5PI"
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def plain_email(renderer: TemplateRenderer, folder: str, step: str, context: Any) -> RenderedEmail:
    """The path without the cache, as it was: Template.render per part, the whole page inlined."""

    def render(name: str) -> str:
        return renderer.env.get_template(f"{folder}/{step}.{name}").render(context)

    return RenderedEmail(
        subject=" ".join(render("subject.txt").split()),
        html=_INLINER.inline(render("html")),
        text=render("txt").strip() + "\n",
    )


@pytest.fixture
def inlined(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every page css-inline sees, from renderers made after this fixture."""
    pages: list[str] = []

    def counting(html: str) -> str:
        pages.append(html)
        return _INLINER.inline(html)

    monkeypatch.setattr(renderer_module, "_inline_css", counting)
    return pages


def email_files(html: str) -> dict[str, str]:
    return {"seq/x.subject.txt": "Hello", "seq/x.html": html, "seq/x.txt": "Hello"}


PAGE = (
    "<html><head><style>.f { color: #5b6b7a; } a { color: red; }</style></head><body>"
    '<p>Hi {{ contact.first_name }}</p><p class="f">{BODY}</p>'
    '<a href="{{ link(\'booking\') }}">Book</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    "</body></html>"
)


def page(body: str) -> str:
    return PAGE.replace("{BODY}", body)


def test_real_templates_send_what_the_plain_path_sends(inlined: list[str]) -> None:
    app = NurtureApp(settings=load_settings())
    composer = Composer(app.settings, TemplateRenderer(), app.signer)
    sequence = load_sequence("spasm-relief")
    emails = [step for step in sequence.steps if step.channel == Channel.EMAIL]
    sent = 0
    for round_ in range(2):  # the first round fills the cache, the second hits it
        for message, (step, name) in enumerate((s, n) for s in emails for n in NAMES):
            contact = {"first_name": name, "last_name": name[::-1], "custom_fields": {}}
            context = composer.context(sequence, step, contact, 100 * round_ + message, message)
            email = composer.renderer.render_email(sequence.template_folder, step.template, context)
            assert email == plain_email(composer.renderer, "spasm-relief", step.template, context)
            unsubscribe = context["unsubscribe_url"]
            assert unsubscribe in email.html and unsubscribe in email.text
            sent += 1
    assert len(inlined) == len(emails) * len(NAMES) < sent  # one inlining per distinct page


def test_a_hit_does_not_inline_and_carries_this_messages_urls(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any], inlined: list[str]
) -> None:
    renderer = scratch(**email_files(page("Body")))
    for message in range(6):
        context["contact"] = {"first_name": ("Maria", "Aiko")[message % 2], "last_name": ""}
        context["unsubscribe_url"] = f"https://x.test/u/{message}~e.sig-_{message}?a=1&b=2"
        context["link"] = lambda destination="booking", m=message: (
            f"https://x.test/l/{m}~{destination}"
        )
        email = renderer.render_email("seq", "x", context)
        assert email == plain_email(renderer, "seq", "x", context)
        assert f'href="https://x.test/u/{message}~e.sig-_{message}?a=1&amp;b=2"' in email.html
        assert f'href="https://x.test/l/{message}~booking"' in email.html
    assert len(inlined) == 2 and len(renderer.skeletons) == 2


@pytest.mark.parametrize(
    "body",
    [
        "{{ unsubscribe_url[:20] }}",
        "{{ unsubscribe_url|truncate(20) }}",
        "{{ unsubscribe_url|upper }}",
        "{{ (unsubscribe_url|e)[:20] }}",
        "{{ unsubscribe_url|length }}",
        "{% set u = unsubscribe_url %}{{ u }}",
        "{% filter upper %}{{ link('booking') }}{% endfilter %}",
        "{% macro m() %}{{ link('booking') }}{% endmacro %}{{ m()|upper }}",
        "{% set s %}{{ unsubscribe_url }}{% endset %}{{ s[:20] }}",
        "{% autoescape false %}{{ unsubscribe_url }}{% endautoescape %}",
        "{% if unsubscribe_url.startswith('https') %}yes{% endif %}",
    ],
)
def test_a_template_that_reworks_a_url_takes_the_plain_path(
    body: str,
    scratch: Callable[..., TemplateRenderer],
    context: dict[str, Any],
    inlined: list[str],
) -> None:
    renderer = scratch(**email_files(page(body)))
    context["unsubscribe_url"] = LONG_URL
    email = renderer.render_email("seq", "x", context)
    assert email == plain_email(renderer, "seq", "x", context)
    assert len(renderer.skeletons) == 0 and inlined == [inlined[0]]
    assert renderer.skeletons.nonce not in inlined[0]  # inlined with the real values


@pytest.mark.parametrize(
    "html",
    [
        # styles that could tell a token from the URL: an attribute selector, CSS holding a URL
        page("Body").replace("a { color: red; }", 'a[href^="https"] { color: red; }'),
        page("Body").replace("a { color: red; }", "p { background: url({{ link('booking') }}) }"),
        page('<span style="background: url({{ unsubscribe_url }})">x</span>'),
        # where the parser reads a URL unlike digits: a tag or attribute name, after `&` or `<`
        page("<a {{ unsubscribe_url }}>x</a>"),
        page("&am{{ unsubscribe_url }}"),
        page("<{{ unsubscribe_url }}"),
        page('<a title="a>b" {{ unsubscribe_url }}>x</a>'),
        page('<a title="{{ unsubscribe_url }}{{ unsubscribe_url }}">x</a>').replace(
            'title="', 'title="&'
        ),
        # an attribute the selector engine reads, and a tag css-inline drops
        page('<p class="{{ unsubscribe_url }}">x</p>'),
        page('<link rel="stylesheet" href="{{ unsubscribe_url }}">'),
    ],
)
def test_a_page_the_checks_refuse_takes_the_plain_path(
    html: str,
    scratch: Callable[..., TemplateRenderer],
    context: dict[str, Any],
    inlined: list[str],
) -> None:
    renderer = scratch(**email_files(html))
    context["unsubscribe_url"] = "https://X.test/U/Ab~e"
    for _ in range(2):
        email = renderer.render_email("seq", "x", context)
        assert email == plain_email(renderer, "seq", "x", context)
    assert list(renderer.skeletons._pages.values()) == [None]  # refused once, remembered
    assert renderer.skeletons.nonce not in inlined[-1]


@pytest.mark.parametrize(
    "url", ["https://x.test/u/it's", 'https://x.test/u/"q"', "https://x.test/u/a\u00a0b", "", 7]
)
def test_a_url_the_serializer_writes_otherwise_takes_the_plain_path(
    url: object,
    scratch: Callable[..., TemplateRenderer],
    context: dict[str, Any],
    inlined: list[str],
) -> None:
    """css-inline writes `'` as is where Jinja wrote `&#39;`, `"` as `&quot;`, a no-break space as
    `&nbsp;`; an empty or non-string value is no URL: the page is inlined with the value."""
    renderer = scratch(**email_files(page("Body")))
    context["unsubscribe_url"] = url
    email = renderer.render_email("seq", "x", context)
    assert email == plain_email(renderer, "seq", "x", context)
    assert len(renderer.skeletons) == 0 and renderer.skeletons.nonce not in inlined[0]


def test_a_name_with_markup_and_entities_is_only_in_the_skeleton(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any], inlined: list[str]
) -> None:
    renderer = scratch(**email_files(page("<b>{{ contact.first_name }}</b> &middot; &amp;")))
    for name in ["&amp;", "<i>x</i>", "a\u00a0b", "it's", "1234567890123456789"]:
        context["contact"] = {"first_name": name, "last_name": ""}
        assert renderer.render_email("seq", "x", context) == plain_email(
            renderer, "seq", "x", context
        )
    assert len(renderer.skeletons) == 5 and None not in renderer.skeletons._pages.values()


def test_the_cache_is_bounded_and_keeps_the_recent_pages(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**email_files(page("Body")))
    renderer.skeletons = Skeletons(renderer_module._inline_css, max_pages=3)
    for name in ["A", "B", "C", "A", "D"]:  # A is used again, so B is the oldest when D comes
        context["contact"] = {"first_name": name, "last_name": ""}
        renderer.render_email("seq", "x", context)
    assert len(renderer.skeletons) == 3
    assert ["<p>Hi A</p>" in key for key in renderer.skeletons._pages] == [False, True, False]
    assert not any("<p>Hi B</p>" in key for key in renderer.skeletons._pages)

    renderer.skeletons = Skeletons(renderer_module._inline_css, max_chars=2_500)
    for name in "ABCDEFGH":
        context["contact"] = {"first_name": name, "last_name": ""}
        renderer.render_email("seq", "x", context)
    assert 0 < len(renderer.skeletons) < 8 and renderer.skeletons.chars <= 2_500


def test_an_unknown_destination_still_fails(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    def link(destination: str = "booking") -> str:
        if destination != "booking":
            raise UnknownDestination(f"link destination {destination!r} is not registered")
        return "https://x.test/l/booking"

    renderer = scratch(**email_files(page("{{ link('elsewhere') }}")))
    context["link"] = link
    for _ in range(2):
        with pytest.raises(TemplateRenderError) as caught:
            renderer.render_email("seq", "x", context)
        assert str(caught.value) == "seq/x.html: link destination 'elsewhere' is not registered"


def test_errors_in_the_html_part_keep_their_messages(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**email_files(page("{{ contact.nickname }}")))
    with pytest.raises(TemplateRenderError, match=r"^seq/x\.html: missing variable: .*nickname"):
        renderer.render_email("seq", "x", context)


def test_tokens_are_digits_from_a_secret_nonce(tmp_path: Path) -> None:
    first, second = TemplateRenderer(tmp_path).skeletons, TemplateRenderer(tmp_path).skeletons
    assert first.nonce.isdigit() and len(first.nonce) >= 12 and first.nonce != second.nonce
    assert first.nonce[0] not in first.nonce[1:]  # tokens side by side split unambiguously
