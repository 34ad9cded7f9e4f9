"""What an inbound text asks for (stop, start again, help, or nothing we act on), what we do about
it, and what we answer.

CTIA and carriers require the standard keywords to work whatever the case or punctuation
("Stop.", " stop "); Twilio sends `OptOutType` only when Advanced Opt-Out is on, so we classify
ourselves too. Since April 2025 the FCC (TCPA revocation rule, 47 CFR 64.1200(a)(10)) counts any
reasonable way of saying "stop" as a revocation, so plain requests like "please stop texting me"
stop texts too and are flagged for staff. A lone keyword that is also an everyday word is only a
keyword when it is the whole message ("Cancel my appointment" is not an opt-out).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

from sqlalchemy.orm import Session

from contacts.optout import opt_in_again, opt_out
from contacts.suppressions import lift_by_person, suppress
from core.redact import mask_phone
from core.settings import ClinicSettings
from storage.models import Channel, Contact, SuppressionReason


class Intent(enum.StrEnum):
    STOP = "stop"  # a standard opt-out keyword
    REVOKE = "revoke"  # free text that plainly asks us to stop: opt out and flag for staff
    START = "start"
    HELP = "help"
    OTHER = "other"


STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
OPT_OUT_TYPES = {"STOP": Intent.STOP, "START": Intent.START, "HELP": Intent.HELP}

_REVOCATION = re.compile(
    r"""
    \b(?:stop|quit|cease)\s+(?:texting|txting|messaging|sending|contacting|emailing)\b
    | \b(?:stop|quit|cease|end)\s+(?:these|the|your|all)\s+(?:texts?|txts?|messages?|msgs?|sms)\b
    | \bunsubscribe\b
    | \b(?:opt|take|remove|delete)\s+(?:me|my\s+number)\s+(?:out|off|from)\b
    | \bremove\s+me\b
    | \b(?:don'?t|do\s+not|dont|never)\s+(?:text|txt|message|msg|contact|send|sms)\b
    | \bno\s+more\s+(?:texts?|txts?|messages?|msgs?|sms)\b
    | \bleave\s+me\s+alone\b
    | ^(?:please|pls|plz)\s+stop\b
    | ^stop\s+(?:it|now|please|pls|plz)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


def keyword(body: str) -> str:
    """The message as a keyword: letters only, upper case ("Opt-out!" -> "OPTOUT")."""
    return re.sub(r"[^A-Z]", "", body.upper())


def classify(body: str, opt_out_type: str | None = None) -> Intent:
    """The intent of an inbound text; Twilio's own OptOutType wins when present."""
    if opt_out_type and opt_out_type.strip().upper() in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[opt_out_type.strip().upper()]
    word = keyword(body)
    if word in STOP_WORDS:
        return Intent.STOP
    if word in START_WORDS:
        return Intent.START
    if word in HELP_WORDS:
        return Intent.HELP
    if _REVOCATION.search(" ".join(body.split())):
        return Intent.REVOKE
    return Intent.OTHER


def act_on(
    session: Session, intent: Intent, sender: str, contact: Contact | None, *, at: datetime
) -> None:
    """STOP (or a plain request to stop) opts the number out of texts at once; START opts it
    back in. A number we hold no contact for is suppressed, or its suppression lifted."""
    if intent in (Intent.STOP, Intent.REVOKE):
        source = "reply STOP" if intent == Intent.STOP else "free-text reply asking to stop"
        if contact is not None:
            opt_out(
                session, contact, Channel.SMS, reason=SuppressionReason.STOP, source=source, at=at
            )
        else:
            suppress(session, Channel.SMS, sender, SuppressionReason.STOP, source=source, at=at)
    elif intent == Intent.START:
        if contact is not None:
            opt_in_again(
                session,
                contact,
                Channel.SMS,
                how="reply START",
                evidence=f"texted START from {mask_phone(sender)} to resubscribe",
                at=at,
            )
        else:
            lift_by_person(session, Channel.SMS, sender, "reply START", at=at)


def reply_to(intent: Intent, clinic: ClinicSettings) -> str | None:
    """The one answer CTIA expects to each keyword: the opt-out confirmation, the re-subscribe
    confirmation, and the help text (who we are, how to reach us, how to stop)."""
    if intent in (Intent.STOP, Intent.REVOKE):
        return (
            f"{clinic.name}: You are unsubscribed and will get no more texts from us. "
            "Reply START to resubscribe."
        )
    if intent == Intent.START:
        return (
            f"{clinic.name}: You are subscribed again. Msg & data rates may apply. "
            "Reply HELP for help, STOP to opt out."
        )
    if intent == Intent.HELP:
        return clinic.sms_help_text or (
            f"{clinic.name}: call {clinic.phone_display} for help. Msg & data rates may apply. "
            "Reply STOP to opt out."
        )
    return None
