"""Sign-ups by text: the YES that confirms a pending sign-up, a join keyword, and the email
address we asked for (web.webhooks.twilio calls `answer_signup_text` before its keyword rules).

Text-to-join (CTIA's consumer-initiated opt-in): a keyword from `sms.join_keywords` texted to the
clinic's number (RELIEF; ALIVIO also sets the contact's language, `sms.join_keyword_languages`)
creates a pending SMS sign-up and is answered with the program's disclosure and "Reply YES to
confirm" (web.join.confirm_prompt, the same text the form's first text carries). Only the YES
from that phone opts the number in (TCPA prior express written consent, contacts.signup), and
it enrolls the contact in the running campaign of the keyword's sequence. Its answer asks for an
email address, recorded when one is texted back, with the form's confirmation email: email is
opted in only by its link (contacts.signup.take_emailed_address).

A YES with no pending sign-up is left to contacts.keywords: an ordinary START.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from campaigns.enrollment import enroll_contact
from contacts.intake import IntakeConflict
from contacts.keywords import Classification, Intent
from contacts.signup import (
    ask_for_email,
    confirm_sms,
    join_keyword,
    take_emailed_address,
    text_to_join,
)
from core.errors import InputError
from core.languages import SPANISH
from core.redact import mask_email, mask_phone
from core.settings import Settings
from storage.models import Campaign, CampaignState, Contact
from web.join import ToConfirm, confirm_prompt
from web.services import WebServices

log = logging.getLogger("nurture.web.text_join")


@dataclass(frozen=True)
class TextAnswer:
    """The text we answer, and the confirmation email to send once the change is committed
    (web.join.send_confirmations) in `language`."""

    text: str | None
    email_to_confirm: ToConfirm | None = None
    language: str = "en"


def answer_signup_text(
    app: WebServices,
    session: Session,
    heard: Classification,
    body: str,
    sender: str,
    contact: Contact | None,
) -> TextAnswer | None:
    """The answer when the text is part of a sign-up (the changes made in `session`); None when
    it is not, and the ordinary keyword rules apply."""
    settings, now = app.settings, app.clock()
    within = timedelta(days=settings.signup.unconfirmed_days)
    if heard.intent == Intent.START and contact is not None:
        pending = confirm_sms(session, contact, sender, body=body, at=now, within=within)
        if pending is None:
            return None
        sequence = str(pending.data.get("sequence") or "")
        if sequence:
            enroll_in_running(session, contact, sequence, at=now)
        ask = bool(sequence) and contact.email is None
        if ask:
            ask_for_email(pending)
        log.info("sign-up confirmed by YES from %s", mask_phone(sender))
        return TextAnswer(confirmed_reply(settings, contact.language, ask_email=ask))
    if heard.intent != Intent.OTHER:
        return None
    joined = join_keyword(body, settings.sms.join_keywords)
    if joined is not None:
        prompt = _start(app, session, body, sender, contact, *joined, at=now)
        return TextAnswer(prompt) if prompt is not None else None
    if contact is None:
        return None
    texted = take_emailed_address(session, contact, body, at=now, within=within)
    if texted is None:
        return None
    masked = mask_email(texted.address), mask_phone(sender)
    if texted.pending is None:
        log.info("email %s texted by %s is another contact's: not taken", *masked)
        return TextAnswer(thanks_for_email(settings, contact.language))
    log.info("email %s texted back by %s: confirmation sent", *masked)
    confirm = ToConfirm(texted.address, None, texted.pending.id, None)
    return TextAnswer(thanks_for_email(settings, contact.language), confirm, contact.language)


def _start(
    app: WebServices,
    session: Session,
    body: str,
    sender: str,
    contact: Contact | None,
    word: str,
    sequence: str,
    *,
    at: datetime,
) -> str | None:
    settings = app.settings
    languages = {key.upper(): code for key, code in settings.sms.join_keyword_languages.items()}
    language = languages.get(word, "")
    prompt = confirm_prompt(settings, language or (contact.language if contact else "en"))
    try:
        text_to_join(
            session,
            sender,
            word=word,
            sequence=sequence,
            language=language,
            body=body,
            prompt=prompt,
            default_timezone=settings.clinic.default_timezone,
            at=at,
        )
    except (InputError, IntakeConflict) as exc:  # an erased person, a number we cannot use
        log.info("join keyword from %s not taken: %s", mask_phone(sender), exc)
        return None
    log.info("join keyword %s from %s: asked for YES", word, mask_phone(sender))
    return prompt


def enroll_in_running(session: Session, contact: Contact, sequence: str, *, at: datetime) -> bool:
    """Enroll the contact in the running campaign of `sequence`, once; False when none runs.

    One row, not campaigns.enrollment.enroll_audience: the audience rule (a sequence's required
    consents) may leave out a number that joined by text and has no email yet, and the person
    asked for this sequence. The dispatcher still checks each step's consent at send time."""
    running = session.scalars(select(Campaign).where(Campaign.state == CampaignState.ACTIVE))
    campaign = next(
        (c for c in running if Sequence.from_snapshot(c.definition).name == sequence), None
    )
    if campaign is None:
        log.warning("text-to-join: no running campaign of sequence %s", sequence)
        return False
    return enroll_contact(session, campaign, contact.id, at=at)


def confirmed_reply(settings: Settings, language: str, *, ask_email: bool) -> str:
    """CTIA's opt-in confirmation: the program, how often, that rates may apply, STOP and HELP
    (AYUDA too in Spanish), in GSM-7 and two parts at most (tests/web/test_signup_texts.py):
    the Spanish is worded around á, í, ó, ú, which GSM-7 lacks (é, ñ, ¡ and ¿ it has)."""
    name = settings.clinic.name
    if language == SPANISH:
        ask = " ¿Quiere también nuestros consejos por correo? Responda con su correo." * ask_email
        return (
            f"{name}: ¡Gracias! Su registro queda confirmado. Hasta 4 mensajes al mes. Pueden "
            f"aplicarse tarifas de mensajes y datos. Responda STOP para cancelar, HELP/AYUDA "
            f"para ayuda.{ask}"
        )
    ask = " Want our tips by email too? Reply with your email address." * ask_email
    return (
        f"{name}: Thanks, you are confirmed. Up to 4 msgs/mo. Msg & data rates may apply. "
        f"Reply STOP to cancel, HELP for help.{ask}"
    )


def thanks_for_email(settings: Settings, language: str) -> str:
    """The same words whether or not we could take the address: an answer that differed when
    another contact holds it would tell anyone with a phone who is on the clinic's list."""
    name = settings.clinic.name
    if language == SPANISH:
        return f"{name}: Gracias. Le enviamos un correo con un enlace para confirmarlo."
    return f"{name}: Thanks! We have emailed you a link to confirm your address."
