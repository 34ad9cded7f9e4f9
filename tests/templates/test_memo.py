"""A memoized render sends exactly what a full render sends, and is kept only when it may be."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import css_inline
import pytest

from campaigns.compose import Composer
from campaigns.definitions import load_sequence
from core.settings import load_settings
from nurture.app import NurtureApp
from storage.models import Channel
from templates.memo import RenderMemo, template_reads
from templates.renderer import RenderedEmail, TemplateRenderer, TemplateRenderError
from templates.sms_segments import sms_info

_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
NAMES = ["Pat", "", "A & B", "<b>Bo</b>", "O'Brien", "José", "日本"]


def plain(renderer: TemplateRenderer, name: str, context: dict[str, Any]) -> str:
    """Template.render, and the whole page inlined for HTML: what a message must carry."""
    rendered = renderer.env.get_template(name).render(context)
    return _INLINER.inline(rendered) if name.endswith(".html") else rendered


def plain_email(renderer: TemplateRenderer, base: str, context: dict[str, Any]) -> RenderedEmail:
    return RenderedEmail(
        subject=" ".join(plain(renderer, f"{base}.subject.txt", context).split()),
        html=plain(renderer, f"{base}.html", context),
        text=plain(renderer, f"{base}.txt", context).strip() + "\n",
    )


@pytest.fixture
def jinja_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each template Jinja renders, from renderers made after this fixture."""
    names: list[str] = []
    real = TemplateRenderer._render

    def counting(self: TemplateRenderer, name: str, variables: dict[str, Any]) -> str:
        names.append(name)
        return real(self, name, variables)

    monkeypatch.setattr(TemplateRenderer, "_render", counting)
    return names


def test_real_templates_from_the_memo_are_the_full_render(jinja_renders: list[str]) -> None:
    app = NurtureApp(settings=load_settings())
    composer = Composer(app.settings, TemplateRenderer(), app.signer)
    renderer = composer.renderer
    sequence = load_sequence("spasm-relief")
    folder = sequence.template_folder
    messages, before_last_round = 0, 0
    for round_, step, name in itertools.product(range(3), sequence.steps, NAMES):
        if round_ == 2 and not before_last_round:
            before_last_round = len(jinja_renders)
        messages += 1
        contact = {"first_name": name, "last_name": f"L{messages}", "custom_fields": {}}
        context = composer.context(sequence, step, contact, 1000 * round_ + messages, messages)
        if step.channel == Channel.EMAIL:
            email = renderer.render_email(folder, step.template, context)
            assert email == plain_email(renderer, f"{folder}/{step.template}", context)
            assert context["unsubscribe_url"] in email.html
            assert context["unsubscribe_url"] in email.text
        else:
            sms = renderer.render_sms(folder, step.template, context)
            body = plain(renderer, f"{folder}/{step.template}.sms.txt", context)
            assert sms.body == " ".join(body.split())
            assert sms.info == sms_info(sms.body)
    # Every template reads the first name only: the last round comes from the memo.
    assert before_last_round > 0 and len(renderer.memo) > 0
    assert jinja_renders[before_last_round:] == []


def test_a_kept_render_carries_each_messages_own_urls(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any], jinja_renders: list[str]
) -> None:
    renderer = scratch(
        **{
            "seq/x.subject.txt": "Hi {{ contact.first_name }}",
            "seq/x.html": "<p>{{ contact.first_name }}</p><a href=\"{{ link('booking') }}\">b</a>"
            '<a href="{{ booking_link() }}">c</a><a href="{{ unsubscribe_url }}">u</a>',
            "seq/x.txt": "Book: {{ link('booking') }}\nStop: {{ unsubscribe_url }}",
        }
    )
    for message in range(5):
        context["contact"] = {"first_name": "Maria", "last_name": f"L{message}"}
        context["unsubscribe_url"] = f"https://x.test/u/{message}~e.s?a=1&b=2"
        context["link"] = context["booking_link"] = lambda destination="booking", m=message: (
            f"https://x.test/l/{m}~{destination}"
        )
        email = renderer.render_email("seq", "x", context)
        assert email == plain_email(renderer, "seq/x", context)
        assert f"https://x.test/l/{message}~booking" in email.text
        assert f"https://x.test/u/{message}~e.s?a=1&b=2" in email.text  # not escaped in text
        assert f'href="https://x.test/u/{message}~e.s?a=1&amp;b=2"' in email.html
    # Rendered for the first two messages (the second one's render is kept), never again.
    assert len(jinja_renders) == 2 * 3


@pytest.mark.parametrize(
    ("template", "shared"),
    [
        ("Hi {{ contact.first_name }}", True),
        ("Hi {{ contact['first_name'] }}", True),
        ("Hi {{ contact.first_name }} {{ contact.last_name }}", False),
        ("{% for key, value in contact.items() %}{{ value }}{% endfor %}", False),
        ("{% for value in contact %}{{ value }}{% endfor %}", False),
        ("{{ contact|length }}{{ contact.first_name }}", False),
        ("{% set c = contact %}{{ c.first_name }}", False),
        ("{{ contact.get('last_name') }}", False),
    ],
)
def test_the_key_holds_the_contact_fields_the_template_reads(
    scratch: Callable[..., TemplateRenderer],
    context: dict[str, Any],
    template: str,
    shared: bool,
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": template})
    keys = []
    for last in ("Lopez", "Kim"):
        context["contact"] = {"first_name": "Maria", "last_name": last}
        keys.append(renderer.memo.key("seq/x.sms.txt", renderer._variables(context), {}))
        for _ in range(3):  # seen, kept, then from the memo
            sms = renderer.render_sms("seq", "x", context)
            assert sms.body == " ".join(plain(renderer, "seq/x.sms.txt", context).split())
    assert keys[0] is not None
    assert (keys[0] == keys[1]) is shared


def test_values_that_print_differently_never_share_a_render(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "{{ contact.score }} {{ reason }}"})
    for value in [1, True, 1.0, -0.0, 0.0, 0, False, None, "1", [1], (1,), {"a": 1}] * 3:
        context["contact"] = {"first_name": "Maria", "score": value}
        assert renderer.render_sms("seq", "x", context).body == f"{value} {context['reason']}"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ['a', 'b', 'c']|random }} {{ contact.first_name }}",
        "{% include reason %}{{ contact.first_name }}",
    ],
)
def test_a_template_that_is_not_a_function_of_its_variables_is_never_kept(
    scratch: Callable[..., TemplateRenderer], template: str
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": template})
    assert template_reads(renderer.env, "seq/x.sms.txt") is None
    assert renderer.memo.key("seq/x.sms.txt", {"contact": {"first_name": "M"}}, {}) is None


def test_a_random_choice_is_drawn_for_each_message(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "{{ range(100000)|random }}"})
    for _ in range(3):  # what would have been seen, kept, and then reused
        renderer.render_sms("seq", "x", context)
    bodies = {renderer.render_sms("seq", "x", context).body for _ in range(20)}
    assert len(bodies) > 1


def test_urls_that_coincide_differently_take_the_full_render(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any], jinja_renders: list[str]
) -> None:
    """Kept from messages whose two destinations had two URLs; one where both are the same URL
    cannot be filled from it (one token, not two), so it is rendered in full."""
    renderer = scratch(**{"seq/x.sms.txt": "{{ link('a') }} {{ link('b') }}"})
    for message in range(3):
        context["link"] = lambda destination, m=message: f"https://x.test/{m}/{destination}"
        assert renderer.render_sms("seq", "x", context).body == (
            f"https://x.test/{message}/a https://x.test/{message}/b"
        )
    renders = len(jinja_renders)
    context["link"] = lambda destination: "https://x.test/same"
    body = renderer.render_sms("seq", "x", context).body
    assert body == "https://x.test/same https://x.test/same"
    assert len(jinja_renders) > renders


def test_an_unknown_destination_fails_after_a_render_was_kept(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "Book: {{ link(reason) }}"})
    allowed = {"booking"}

    def link(destination: str) -> str:
        if destination not in allowed:
            raise TemplateRenderError(f"link destination {destination!r} is not registered")
        return f"https://x.test/l/{destination}"

    context.update(link=link, reason="booking")
    for _ in range(3):
        assert renderer.render_sms("seq", "x", context).body == "Book: https://x.test/l/booking"
    allowed.clear()  # the same key, now refused: the replay fails, the full render raises
    with pytest.raises(TemplateRenderError, match="not registered"):
        renderer.render_sms("seq", "x", context)


def test_the_memo_is_bounded_and_keeps_only_keys_seen_twice(tmp_path: Path) -> None:
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "x.sms.txt").write_text("Hi {{ contact.first_name }}", encoding="utf-8")
    renderer = TemplateRenderer(tmp_path)
    renderer.memo = RenderMemo(renderer.env, max_entries=4)
    context = {"contact": {"first_name": "Once"}, "reason": "r"}
    renderer.render_sms("seq", "x", context)
    assert len(renderer.memo) == 0  # seen once: not kept
    for name in [f"N{n}" for n in range(10)] * 2:
        context["contact"] = {"first_name": name}
        assert renderer.render_sms("seq", "x", context).body == f"Hi {name}"
    assert len(renderer.memo) == 4
    kept = renderer.memo.key("seq/x.sms.txt", renderer._variables(context), {})
    assert kept is not None and renderer.memo.get(kept) is not None  # the most recent
