"""What an inbound text asks for: stop, start again, help, or nothing we act on.

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
