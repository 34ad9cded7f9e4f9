"""The sequence editor: staff write, check and save a sequence's steps and messages in the browser.

The page holds the draft; the server does every rule. As staff type, the page asks two small
JSON endpoints: `count` (an SMS's characters, encoding and segments: templates.sms_segments, the
one counter, never a JavaScript copy) and `check` (the launch's content rules on the whole
draft, in marketer words: campaigns.drafts). Both are POSTs with the session's CSRF token.
Viewers may open the page and read; only editors and owners may save or send tests.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from jinja2 import TemplateError

from campaigns.compose import Composer
from campaigns.definitions import Sequence, Step
from campaigns.drafts import Draft, DraftMessage, DraftStep, check_draft, parse_draft
from campaigns.plain_words import LANGUAGE_WORDS
from campaigns.validation import SAMPLE_CONTACTS, SAMPLE_ID, SAMPLE_KEY
from core.errors import NurtureError
from core.languages import LANGUAGES
from core.redact import mask_phone
from storage.models import StaffUser
from templates.links import LinkSigner
from templates.markdown_body import allowed_placeholders, plain_template
from templates.renderer import CONTACT_FIELDS
from templates.sms_segments import sms_info
from web.admin.campaign_pages import CampaignName
from web.admin.editor_store import editing, load_draft, save_draft, sequence_exists
from web.admin.render import SECURITY_HEADERS, render
from web.admin.session import Staff, StaffEditor, StaffPoster, StaffReader
from web.services import WebServices

router = APIRouter()

MAX_DRAFT = 200_000  # characters of JSON: a long sequence in two languages is under 50,000
DraftField = Annotated[str, Form(max_length=MAX_DRAFT)]


def answer(data: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=SECURITY_HEADERS)


def read_draft(nurture: WebServices, raw: str) -> Draft:
    """The page's draft as an edit of its sequence: checked and previewed with the settings the
    editor does not show (editor_store.editing), as it will be saved."""
    try:
        draft = parse_draft(json.loads(raw))
    except (ValueError, TypeError):
        return Draft()
    return editing(nurture, draft)


def new_draft() -> Draft:
    """What "New sequence" starts from: three steps, email, text, email, in both languages."""
    text_en = "{{ clinic_name }}: Hi {{ first_name }}, ... Reply STOP to opt out."
    text_es = (
        "{{ clinic_name }}: Hola {{ first_name }}, ... "
        "Responda STOP para dejar de recibir mensajes."
    )
    return Draft(
        steps=[
            DraftStep(name="welcome", channel="email", messages=_blank_email()),
            DraftStep(
                name="reminder",
                channel="sms",
                delay="2d",
                start="10:00",
                end="19:00",
                messages={"en": DraftMessage(text=text_en), "es": DraftMessage(text=text_es)},
            ),
            DraftStep(name="invitation", channel="email", delay="3d", messages=_blank_email()),
        ]
    )


def _blank_email() -> dict[str, DraftMessage]:
    return {language: DraftMessage() for language in LANGUAGES}


def _page(
    request: Request, staff: Staff, draft: Draft, *, existing: bool, note: str = ""
) -> Response:
    placeholders = allowed_placeholders(CONTACT_FIELDS, draft.custom_fields)
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        user = session.get(StaffUser, staff.id)
        phone = user.phone if user is not None else None
    return render(
        request,
        "editor.html",
        staff,
        draft_json=draft.model_dump_json(),
        draft=draft,
        existing=existing,
        note=note,
        test_phone=mask_phone(phone) if phone else "",
        placeholders=placeholders,
        languages={code: LANGUAGE_WORDS.get(code, code) for code in LANGUAGES},
        branches="then" in Step.model_fields,
        nav="campaigns",
    )


@router.get("/sequences/new")
def new_sequence(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff, new_draft(), existing=False)


@router.get("/sequences/{name}/edit")
def edit_sequence(request: Request, staff: StaffReader, name: CampaignName) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        draft, note = load_draft(session, name, nurture.composer.renderer.root)
    return _page(request, staff, draft, existing=True, note=note)


@router.post("/editor/count")
def count_text(
    request: Request,
    staff: StaffPoster,
    text: Annotated[str, Form(max_length=5000)] = "",
    max_segments: Annotated[int, Form(ge=1, le=10)] = 2,
) -> Response:
    """The text's segments as sent to a contact with a typical name (placeholders filled in
    with the sample's values, `booking_link` as long as a real tracked link)."""
    nurture: WebServices = request.app.state.nurture
    smart = nurture.settings.sms.smart_encoding
    try:
        filled = _filled(nurture, text)
    except TemplateError as exc:  # a placeholder refused, or a field the sample lacks
        return answer({"error": exc.message or str(exc)})
    except NurtureError as exc:
        return answer({"error": str(exc)})
    info = sms_info(filled, smart_encoding=smart)
    return answer(
        {
            "characters": len(filled),
            "typed": len(text),
            "encoding": info.encoding,
            "segments": info.segments,
            "units": info.units,
            "forcing": list(info.ucs2_characters),
            "limit": max_segments,
            "over": info.segments > max_segments,
            "as_sent": filled,
            "sample": SAMPLE_CONTACTS[0].first_name,
        }
    )


#: The one-step sequence a text is counted in: the composer's context needs a sequence.
COUNTED = Sequence(
    name="counted",
    title="counted",
    template_folder="counted",
    steps=(Step(name="text", channel="sms", template="text"),),
)


def _filled(nurture: WebServices, text: str) -> str:
    """The text as the composer would fill it for the typical sample contact, with links as
    long as real tracked ones but signed by the validation-only key (they never work)."""
    source = plain_template(text.strip(), "the text")
    web = nurture.settings.web
    signer = LinkSigner(SAMPLE_KEY, web.public_base_url, web.link_ttl_days)
    composer = Composer(nurture.settings, nurture.composer.renderer, signer)
    contact = SAMPLE_CONTACTS[0].as_contact(())
    context = composer.context(COUNTED, COUNTED.steps[0], contact, SAMPLE_ID, SAMPLE_ID)
    rendered = composer.renderer.env.from_string(source).render(context)
    return " ".join(rendered.split())


@router.post("/editor/check")
def check(request: Request, staff: StaffPoster, draft: DraftField = "{}") -> Response:
    nurture: WebServices = request.app.state.nurture
    report = check_draft(read_draft(nurture, draft), nurture.settings)
    return answer(report.as_dict())


@router.post("/editor/save")
def save(
    request: Request,
    staff: StaffEditor,
    draft: DraftField = "{}",
    creating: Annotated[bool, Form()] = False,
) -> Response:
    """Save the draft as a new version. A draft with problems is saved too (staff save work in
    progress); review and launch refuse it until it is clean. A new sequence never takes the
    name of one that exists: its save would replace that sequence's messages."""
    nurture: WebServices = request.app.state.nurture
    parsed = read_draft(nurture, draft)
    if creating and sequence_exists(nurture, parsed.name):
        taken = (
            f"A sequence named {parsed.name!r} already exists: choose another short name, "
            "or open that one from its campaign page."
        )
        return answer({"saved": False, "error": taken}, 409)
    report = check_draft(parsed, nurture.settings)
    if report.sequence is None:
        first = report.problems[0].message if report.problems else "This draft cannot be read."
        return answer({"saved": False, "error": first}, 422)
    try:
        saved = save_draft(nurture, parsed, author=staff.email)
    except NurtureError as exc:
        return answer({"saved": False, "error": str(exc)}, 422)
    return answer({"saved": True, "message": saved, **report.as_dict()})
