"""What an inbound text asks for (stop, start again, help, or nothing we act on), in which
language, what we do about it, and what we answer.

CTIA and carriers require the standard keywords to work whatever the case or punctuation
("Stop.", " stop "); Twilio sends `OptOutType` only when Advanced Opt-Out is on, so we classify
ourselves too, and Twilio's own classification wins when it is there. Since April 2025 the FCC
(TCPA revocation rule, 47 CFR 64.1200(a)(10)) counts any reasonable way of saying "stop" as a
revocation, in any language the person uses: plain requests like "please stop texting me" or
"ya no me manden mensajes" stop texts at once too, and are flagged for staff
(web.admin.inbound_pages). Our audience is in Los Angeles and many patients write in Spanish, so
every keyword family has Spanish words, and every answer exists in both languages.

The words, whatever the case, accents or punctuation ("No más.", "¡ALTO!", "Opt-out"):

* stop: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT / OPT OUT; PARAR, PARE,
  ALTO, CANCELAR, BASTA, NO MÁS, BAJA, DETENER;
* start again: START, UNSTOP, YES; SÍ / SI, COMENZAR, REANUDAR, INICIAR (the Spanish words
  carriers' Spanish-language programs document beside START);
* help: HELP, INFO; AYUDA, INFORMACIÓN.

A lone keyword that is also an everyday word is only a keyword when it is the whole message
("Cancel my appointment", "¿Puedo cancelar mi cita?" and "Alto dolor" are not opt-outs).
Ambiguous text ("not now", "stop by tomorrow?", "no puedo ir mañana") is not a revocation: it is
recorded for staff, who can mark it as one.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from contacts.optout import opt_in_again, opt_out
from contacts.suppressions import lift_by_person, suppress
from core.redact import mask_phone
from core.settings import ClinicSettings
from storage.models import Channel, Contact, SuppressionReason


class Intent(enum.StrEnum):
    STOP = "stop"  # a standard opt-out keyword (English or Spanish)
    REVOKE = "revoke"  # free text that plainly asks us to stop: opt out and flag for staff
    START = "start"
    HELP = "help"
    OTHER = "other"


class Language(enum.StrEnum):
    ENGLISH = "en"
    SPANISH = "es"


@dataclass(frozen=True)
class Classification:
    """What a text asks for and the language it asks in (the language of our answer; a later
    change may store it on the contact)."""

    intent: Intent
    language: Language


KEYWORDS: dict[Language, dict[Intent, frozenset[str]]] = {
    Language.ENGLISH: {
        Intent.STOP: frozenset(
            {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
        ),
        Intent.START: frozenset({"START", "UNSTOP", "YES"}),
        Intent.HELP: frozenset({"HELP", "INFO"}),
    },
    Language.SPANISH: {
        Intent.STOP: frozenset(
            {"PARAR", "PARE", "ALTO", "CANCELAR", "BASTA", "NOMAS", "BAJA", "DETENER"}
        ),
        Intent.START: frozenset({"SI", "COMENZAR", "REANUDAR", "INICIAR"}),
        Intent.HELP: frozenset({"AYUDA", "INFORMACION"}),
    },
}
STOP_WORDS = KEYWORDS[Language.ENGLISH][Intent.STOP] | KEYWORDS[Language.SPANISH][Intent.STOP]
OPT_OUT_TYPES = {"STOP": Intent.STOP, "START": Intent.START, "HELP": Intent.HELP}

# The free-text rules run on folded text: lower case, no accents, one space, straight quotes.
# A clause is delimited by the message's ends or punctuation ("Not interested, stop").
_END = r"\s*(?:[,.;:!?]|$)"
_START = r"(?:^|[,.;:!?])\s*"
_THINGS = r"(?:texts?|txts?|messages?|msgs?|sms|alerts?|promos?|promotions?|marketing)"
_REVOCATION = {
    Language.ENGLISH: re.compile(
        rf"""
        \b(?:stop|quit|cease|end)\s+(?:texting|txting|messaging|sending|contacting|spamming
            |bothering)\b
        | \b(?:stop|quit|cease|end|cancel|block)\s+(?:all\s+)?(?:these\s+|the\s+|your\s+|this\s+
            |my\s+|all\s+|any\s+)?{_THINGS}\b
        | \bunsubscrib | \bopt(?:ing|ed)?[\s-]*out\b | \brevok
        | \bwithdraw\w*\s+(?:my\s+)?(?:consent|permission)\b
        | \b(?:opt|take|remove|delete|drop|erase|get)\s+(?:me|my\s+(?:number|phone|cell|info))
            \s+(?:out|off|from)\b
        | \b(?:remove|delete|erase|lose)\s+(?:me\b|my\s+(?:number|phone|cell|info))
        | \b(?:don'?t|do\s+not|never)\s+(?:ever\s+)?(?:text|txt|message|msg|contact|sms)\b
        | \b(?:don'?t|do\s+not|never)\s+send\s+(?:me\s+)?(?:any\s*more|more|{_THINGS}|these)\b
        | \b(?:don'?t|do\s+not|no\s+longer)\s+want\s+(?:to\s+(?:get|receive)\s+)?(?:any\s*more\s+
            |these\s+|your\s+|the\s+|any\s+)?{_THINGS}
        | \bno\s+(?:more|further)\s+(?:{_THINGS}|contact)\b
        | \bleave\s+me\s+alone\b | \bwrong\s+(?:number|person)\b
        | \bnot\s+interested\b(?!\s+in\b)
        | {_START}(?:(?:ok|okay|just|so|please|pls|plz|now)\s+)*stop(?:\s+(?:it|now|already
            |please|pls|plz|thanks|thank\s+you|asap|immediately))*{_END}
        """,
        re.VERBOSE,
    ),
    Language.SPANISH: re.compile(
        rf"""
        \bno\s+mas\s+(?:mensajes?|mensajitos|textos?|msjs?|sms|promociones|correos)\b
        | \bno\s+(?:me\s+|nos\s+)?(?:manden|mande|mandes|envien|envie|envies|escriban|escriba
            |escribas|contacten|contacte|texteen|textee|molesten|moleste|llamen)
            (?:{_END}|\s+(?:mas|mensajes?|textos?|sms|nada|nunca|ya|por\s+favor|porfa)\b)
        | \bdej(?:en|e|a|ar|es)\s+de\s+(?:mandar|enviar|escribir|textear|contactar|molestar)
        | \bpar(?:en|e|ar)\s+de\s+(?:mandar|enviar|escribir|textear|contactar|molestar)
        | \bno\s+quiero\s+(?:recibir\s+|que\s+me\s+\w+\s+)?(?:mas\s+)?(?:mensajes?|textos?|sms
            |promociones|nada)\b
        | \b(?:quit|sac|saqu|borr|elimin)\w*\s+(?:de\s+(?:la|las|su|sus|tu|esta|esa|el)\s+
            (?:lista|listas|sistema|base|programa|mensajes)|mi\s+(?:numero|telefono|celular))\b
        | \b(?:quitenme|quiteme|quitame|saquenme|saqueme|sacame|borrenme|borreme|borrame
            |eliminenme|elimineme|eliminame){_END}
        | \bde\s+baja\b | \bdesuscrib | \bdesinscrib
        | \bcancel\w*\s+(?:la\s+|mi\s+|los\s+|las\s+|sus\s+|el\s+|todos\s+los\s+)?(?:suscripcion
            |subscripcion|mensajes?|textos?|sms|notificaciones|promociones)\b
        | \b(?:revoc|retir)\w*\s+(?:mi\s+|el\s+)?(?:consentimiento|autorizacion|permiso)\b
        | \bnumero\s+equivocado\b
        | \bno\s+(?:me\s+)?interesa\b(?!\s+(?:el|la|ese|esa|esta|este)\b)
        | {_START}(?:(?:ya|por\s+favor|porfa|porfavor|ok|oiga)\s+)*(?:para|pare|paren|parar|alto
            |basta|no\s+mas|detener|detengan)(?:\s+(?:ya|por\s+favor|porfa|porfavor|gracias
            |ahora|de\s+mensajes))*{_END}
        """,
        re.VERBOSE,
    ),
}
# Everyday words that tell the two languages apart when no rule names the language.
_MARKERS = {
    Language.SPANISH: frozenset(
        "el la los las de del que por favor gracias hola puedo quiero mi mis usted ustedes ya "
        "tengo estoy bien buenos buenas dias cita manana hoy cuando donde como cuanto es esta "
        "para con una un pero mas muy dolor espalda si mensajes numero".split()
    ),
    Language.ENGLISH: frozenset(
        "the i you my is are to please thanks thank can could not this that what when where "
        "how do don't want yes with have has will would appointment tomorrow today back pain "
        "number messages texts".split()
    ),
}


def fold(text: str) -> str:
    """Lower case without accents, straight apostrophes and single spaces: "¡No MÁS!" ->
    "¡no mas!" (people type with and without accents, and phones curl quotes)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'").replace("\u2018", "'"))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.lower().split())


def keyword(body: str) -> str:
    """The message as a keyword: letters only, upper case, no accents ("No más!" -> "NOMAS")."""
    return re.sub(r"[^A-Z]", "", fold(body).upper())


def classify(body: str, opt_out_type: str | None = None) -> Classification:
    """The intent of an inbound text and its language; Twilio's own OptOutType wins when present
    (its language is still the message's)."""
    text = fold(body)
    found = _keyword(keyword(body)) or _revocation(text)
    language = found.language if found else _language(text)
    twilio = (opt_out_type or "").strip().upper()
    if twilio in OPT_OUT_TYPES:
        return Classification(OPT_OUT_TYPES[twilio], language)
    return found or Classification(Intent.OTHER, language)


def _keyword(word: str) -> Classification | None:
    for language, families in KEYWORDS.items():
        for intent, words in families.items():
            if word in words:
                return Classification(intent, language)
    return None


def _revocation(text: str) -> Classification | None:
    words = re.findall(r"[a-z]+", text)
    if words and all(word.upper() in STOP_WORDS for word in words):  # "Stop stop", "STOP. END"
        spanish = all(word.upper() in KEYWORDS[Language.SPANISH][Intent.STOP] for word in words)
        return Classification(Intent.STOP, Language.SPANISH if spanish else Language.ENGLISH)
    matched = [language for language, rule in _REVOCATION.items() if rule.search(text)]
    if not matched:
        return None
    return Classification(Intent.REVOKE, matched[0] if len(matched) == 1 else _language(text))


def _language(text: str) -> Language:
    """Spanish when the text has more everyday Spanish words than English ones, or as many and
    an inverted mark ("¿", "¡"); English otherwise (the program's first language)."""
    words = re.findall(r"[a-z']+", text)
    spanish = sum(word in _MARKERS[Language.SPANISH] for word in words)
    english = sum(word in _MARKERS[Language.ENGLISH] for word in words)
    if spanish > english or (spanish == english and re.search(r"[¿¡]", text)):
        return Language.SPANISH
    return Language.ENGLISH


def act_on(
    session: Session, intent: Intent, sender: str, contact: Contact | None, *, at: datetime
) -> None:
    """STOP (or a plain request to stop) opts the number out of texts at once; START opts it
    back in, as a reply from that phone (the only way a text opt-out is lifted:
    contacts.optout.opt_in_again). A number we hold no contact for is suppressed, or its
    suppression lifted."""
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
                replied_from=sender,
            )
        else:
            lift_by_person(session, Channel.SMS, sender, "reply START", at=at)


def reply_to(heard: Classification, clinic: ClinicSettings) -> str | None:
    """The one answer CTIA expects to each keyword, in the sender's language: the opt-out
    confirmation, the re-subscribe confirmation, and the help text (who we are, how to reach
    us, how to stop). The Spanish answers leave out á, í, ó and ú, which are not in the GSM-7
    alphabet: one of them would make the answer UCS-2, 70 characters a segment (é, ñ and ¡
    are GSM-7 and stay)."""
    name, phone = clinic.name, clinic.phone_display
    spanish = heard.language == Language.SPANISH
    if heard.intent in (Intent.STOP, Intent.REVOKE):
        if spanish:
            return (
                f"{name}: Listo, ya no recibira mas mensajes de texto de nosotros. "
                "Responda COMENZAR para volver a suscribirse."
            )
        return (
            f"{name}: You are unsubscribed and will get no more texts from us. "
            "Reply START to resubscribe."
        )
    if heard.intent == Intent.START:
        if spanish:
            return (
                f"{name}: Esta suscrito de nuevo. Pueden aplicarse tarifas de mensajes y datos. "
                "Responda AYUDA para ayuda, PARAR para cancelar."
            )
        return (
            f"{name}: You are subscribed again. Msg & data rates may apply. "
            "Reply HELP for help, STOP to opt out."
        )
    if heard.intent == Intent.HELP:
        if spanish:
            return (
                f"{name}: para ayuda llame al {phone}. Pueden aplicarse tarifas de mensajes y "
                "datos. Responda PARAR para cancelar."
            )
        return clinic.sms_help_text or (
            f"{name}: call {phone} for help. Msg & data rates may apply. Reply STOP to opt out."
        )
    return None
