"""Unsubscribe (/u/{token}) and preferences (/p/{token}).

A GET never unsubscribes: mail scanners and link previews follow links. The page's button POSTs;
RFC 8058 one-click is a POST with body `List-Unsubscribe=One-Click`, no cookies, answered 200
with no redirect. Either way the opt-out (contacts.optout) is committed before the response is
sent: the one-clicks, which come in floods, many to a transaction (web.group_commit, through
`opt_out_many`), each commit fsynced on SQLite (synchronous=FULL) so it survives a power cut.
A token names a contact and a channel, not a campaign (CAN-SPAM: an opt-out covers all our
commercial messages on that channel) and needs no login. The reports still credit the
unsubscribe to the message that caused it: `opt_out_many` credits a person's own opt-out to the
last message sent to them on that channel within a window (contacts.credit), in one indexed
read per batch, so the route stays as cheap as it was per request.

The pages speak the contact's language (web.pages.page_language), with a switch to the other;
the preference page also lets the person choose the language of our messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from contacts.optout import OptOut, opt_in_again, opt_out, opt_out_many, stopped_by_text
from contacts.suppressions import SELF_LIFTABLE, active_suppression
from core.languages import LANGUAGE_NAMES, SPANISH
from core.redact import mask_address
from storage.db import transaction, writer_turn
from storage.models import Channel, ConsentStatus, Contact
from templates.links import ContactToken, InvalidToken
from web.group_commit import GroupCommitter
from web.links import token_parameter
from web.pages import not_found, page, page_language, with_language
from web.services import WebServices

#: The words the pages' Python side writes, per language (the rest is in web/pages/<language>/).
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "emails": "emails",
        "texts": "text messages",
        "Emails": "Emails",
        "Texts": "Text messages",
        "to": "to",
        "consent": "I agree to receive marketing texts at this number; reply STOP to end.",
        "no address": "no address on file",
        "stopped": "stopped by text: reply START to resume",
        "undeliverable": "messages to this address could not be delivered",
    },
    SPANISH: {
        "emails": "correos electrónicos",
        "texts": "mensajes de texto",
        "Emails": "Correos electrónicos",
        "Texts": "Mensajes de texto",
        "to": "a",
        "consent": (
            "Acepto recibir mensajes de texto promocionales en este número; responda STOP o "
            "PARAR para terminarlos."
        ),
        "no address": "no tenemos esa dirección",
        "stopped": "detenidos por texto: responda START o COMENZAR para reanudarlos",
        "undeliverable": "no se pudieron entregar mensajes a esta dirección",
    },
}
LABELS = {Channel.EMAIL: "emails", Channel.SMS: "texts"}  # keys of WORDS
STOPPED_BY_TEXT = WORDS["en"]["stopped"]
ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
# Under a flood of one-clicks, the writer waits up to this long for as many unsubscribes as its
# last batch held before it commits (GroupCommitter._gather), so that the requests one commit
# answered, back with their next unsubscribe, share the next commit's fsync instead of
# splitting into two groups taking turns. A lone unsubscribe never waits.
BUSY_LINGER = 0.002
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Friendly page: the link is not valid"}
}
# BEGIN IMMEDIATE (the batch reads, then writes) and an fsync at commit (storage.db).
DURABLE = {"sqlite_begin": "IMMEDIATE", "sqlite_synchronous": "FULL"}


class UnsubscribeService:
    """Reads unsubscribe tokens and commits unsubscribes durably, many per transaction."""

    def __init__(self, nurture: WebServices) -> None:
        self.nurture = nurture
        self.writer: GroupCommitter[OptOut] = GroupCommitter(
            "unsubscribe-writer", self.write, busy_linger=BUSY_LINGER
        )

    def read(self, token: str) -> ContactToken | None:
        try:
            parsed = self.nurture.signer.read_unsubscribe(token)
        except InvalidToken:
            return None
        return parsed if parsed.channel is not None else None

    async def unsubscribe(self, parsed: ContactToken, source: str) -> None:
        """Returns once the opt-out is committed (raises if it could not be)."""
        assert parsed.channel is not None
        await self.writer.commit(
            OptOut(
                parsed.contact_id,
                parsed.channel,
                source,
                at=self.nurture.clock(),
                message_id=parsed.message_id,
            )
        )

    def write(self, batch: Sequence[OptOut]) -> None:
        """One transaction for the batch, durable before any of its requests is answered; on
        SQLite, in turn with the other server processes' writers (storage.db.writer_turn)."""
        with writer_turn(self.nurture.engine), durable(self.nurture) as session:
            opt_out_many(session, batch)


@contextmanager
def durable(nurture: WebServices) -> Iterator[Session]:
    """A session in one transaction whose commit survives a power cut (see DURABLE)."""
    with nurture.sessions() as session, session.begin():
        session.connection(execution_options=DURABLE)
        yield session


def _service(request: Request) -> UnsubscribeService:
    return request.app.state.unsubscribes  # type: ignore[no-any-return]  # State is untyped


def _unsubscribe_page(request: Request, parsed: ContactToken, *, done: bool) -> Response:
    """The confirmation page, in the contact's language unless the switch asked for another."""
    app: WebServices = request.app.state.nurture
    assert parsed.channel is not None
    stored = None
    if "lang" not in request.query_params:  # one read by primary key, for a page view only
        with transaction(app.sessions, immediate=False) as session:
            contact = session.get(Contact, parsed.contact_id)
            stored = contact.language if contact is not None else None
    language = page_language(request, stored)
    return page(
        request,
        "unsubscribe.html",
        language=language,
        done=done,
        channel_label=WORDS[language][LABELS[parsed.channel]],
        preferences_url=with_language(app.signer.preferences_url(parsed.contact_id), language),
    )


def unsubscribe_page(request: Request, token: str = Path(description="Signed token")) -> Response:
    parsed = _service(request).read(token)
    if parsed is None or parsed.channel is None:
        return not_found(request)
    return _unsubscribe_page(request, parsed, done=False)


async def unsubscribe(request: Request) -> Response:
    # The token is read from the path, not declared (see web.links.token_parameter).
    service = _service(request)
    parsed = service.read(request.path_params["token"])
    if parsed is None or parsed.channel is None:
        return not_found(request)
    one_click = await _is_one_click(request)
    await service.unsubscribe(parsed, "one-click" if one_click else "unsubscribe page")
    if one_click:
        return one_click_done()
    return _unsubscribe_page(request, parsed, done=True)


def one_click_done() -> Response:
    return PlainTextResponse("Unsubscribed.\n", headers={"Cache-Control": "no-store"})


async def _is_one_click(request: Request) -> bool:
    body = await request.body()
    if body.strip() == ONE_CLICK_BODY:
        return True
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=10)
        except Exception:  # a malformed multipart body is simply not a one-click request
            return False
        return form.get("List-Unsubscribe") == "One-Click"
    return False


def _channel_rows(
    session: Session, contact: Contact, language: str = "en"
) -> list[dict[str, object]]:
    """Each channel as the page shows it, in `language`. Texts stopped by a text are shown as
    such with no control: only START from that phone resumes them
    (contacts.optout.opt_in_again), so a forwarded email cannot put the phone back on the list."""
    words = WORDS[language]
    rows: list[dict[str, object]] = []
    for channel in (Channel.EMAIL, Channel.SMS):
        address = contact.address(channel)
        blocked = None if address is None else active_suppression(session, channel, address)
        permanent = blocked is not None and blocked.reason not in SELF_LIFTABLE
        by_text = (
            channel == Channel.SMS and address is not None and stopped_by_text(session, address)
        )
        name = words["Emails"] if channel == Channel.EMAIL else words["Texts"]
        rows.append(
            {
                "name": str(channel),
                "label": f"{name} {words['to']} {mask_address(address)}" if address else name,
                "consent": words["consent"] if channel == Channel.SMS else "",
                "subscribed": address is not None
                and contact.consent_for(channel) == ConsentStatus.OPTED_IN
                and blocked is None,
                "available": address is not None and not permanent and not by_text,
                "stopped_by_text": by_text,
                "why": words["no address"]
                if address is None
                else words["stopped"]
                if by_text
                else words["undeliverable"],
            }
        )
    return rows


def _contact(request: Request, session: Session, token: str) -> Contact | None:
    app: WebServices = request.app.state.nurture
    try:
        parsed = app.signer.read_preferences(token)
    except InvalidToken:
        return None
    contact = session.get(Contact, parsed.contact_id)
    return None if contact is None or contact.erased_at is not None else contact


def preferences_page(request: Request, token: str = Path(description="Signed token")) -> Response:
    app: WebServices = request.app.state.nurture
    with transaction(app.sessions, immediate=False) as session:
        contact = _contact(request, session, token)
        if contact is None:
            return not_found(request)
        language = page_language(request, contact.language)
        rows = _channel_rows(session, contact, language)
        chosen = contact.language
    return page(
        request,
        "preferences.html",
        language=language,
        channels=rows,
        saved=False,
        languages=LANGUAGE_NAMES,
        contact_language=chosen,
    )


async def save_preferences(
    request: Request, token: str = Path(description="Signed token")
) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    app: WebServices = request.app.state.nurture
    with durable(app) as session:
        contact = _contact(request, session, token)
        if contact is None:
            return not_found(request)
        now = app.clock()
        shown = page_language(request, contact.language)  # the words the person just read
        for row in _channel_rows(session, contact, shown):
            channel, wanted = Channel(str(row["name"])), form.get(str(row["name"])) == "yes"
            if not row["available"] or wanted == row["subscribed"]:
                continue
            if wanted:
                opt_in_again(
                    session,
                    contact,
                    channel,
                    how="preference page",
                    evidence=f"checked '{row['label']}' on the preference page. {row['consent']}",
                    at=now,
                )
            else:
                opt_out(session, contact, channel, source="preference page", at=now)
        wanted_language = form.get("language")
        if wanted_language in LANGUAGE_NAMES and wanted_language != contact.language:
            contact.language = str(wanted_language)  # ours to write in from now on
            shown = contact.language  # and the page's
        rows = _channel_rows(session, contact, shown)
        chosen = contact.language
    return page(
        request,
        "preferences.html",
        language=shown,
        channels=rows,
        saved=True,
        languages=LANGUAGE_NAMES,
        contact_language=chosen,
    )


def install(api: FastAPI) -> None:
    """These routes, on the app's own router rather than through `include_router`: FastAPI
    matches an included router's routes a second time on every request that reaches one
    (about 13 µs a request)."""
    api.add_api_route(
        "/u/{token}",
        unsubscribe_page,
        methods=["GET"],
        tags=["unsubscribe"],
        response_class=HTMLResponse,
        summary="Unsubscribe confirmation page (a GET never unsubscribes)",
        responses=NOT_FOUND,
    )
    api.add_api_route(
        "/u/{token}",
        unsubscribe,
        methods=["POST"],
        tags=["unsubscribe"],
        summary="Unsubscribe: the page's button, or RFC 8058 one-click",
        description=(
            "Suppresses the token's channel for the contact; committed before the response. "
            "RFC 8058 one-click: body `List-Unsubscribe=One-Click` (form-encoded or multipart), "
            "answered 200 text/plain with no redirect and no cookie. Any other POST (the page's "
            "button) answers the confirmation page. Idempotent."
        ),
        responses={
            200: {"description": "Unsubscribed", "content": {"text/plain": {}, "text/html": {}}},
            **NOT_FOUND,
        },
        response_class=Response,
        openapi_extra=token_parameter("Signed token"),
    )
    api.add_api_route(
        "/p/{token}",
        preferences_page,
        methods=["GET"],
        tags=["unsubscribe"],
        response_class=HTMLResponse,
        summary="Preference page",
        responses=NOT_FOUND,
    )
    api.add_api_route(
        "/p/{token}",
        save_preferences,
        methods=["POST"],
        tags=["unsubscribe"],
        response_class=HTMLResponse,
        summary="Save preferences: unchecking unsubscribes, checking re-subscribes explicitly",
        responses=NOT_FOUND,
    )
