"""State rules for marketing texts, chosen by the phone number's area code.

Three states' "mini-TCPA" laws are stricter than the federal hours (8:00-21:00) the engine keeps
for every text:

- Florida: Fla. Stat. 501.059 (Florida Telephone Solicitation Act, 2021, amended 2023 by
  HB 761) and 501.616(6)(a)-(b): no telephonic sales call (text messages included) before
  8:00 or after 20:00 in the called party's time zone, and no more than three on the same
  subject matter in 24 hours; a call to a Florida area code is presumed to reach a Floridian.
- Oklahoma: Telephone Solicitation Act of 2022, 15 O.S. 775C.1 ff. (in force 2022-11-01):
  the same hours and the same three in 24 hours, and the same area-code presumption.
- Maryland: Stop the Spam Calls Act of 2023 (SB 90 / HB 37), Md. Code, Com. Law 14-4501 ff.
  (in force 2024-01-01): 8:00-20:00 in the called party's time zone, three calls or texts per
  24 hours on the same subject.

Which state: the area code, as the statutes presume. phonenumbers' geocoder
(`phonenumbers.geocoder.description_for_number`, public API) names a US number's place either
as a state ("Florida") or as "City, ST" ("Miami, FL"); both are read as a state, and anything
else (a Canadian province, a Caribbean island, "" for toll-free and non-geographic numbers, a
number that is not valid, a country other than +1) is "unknown": only the default rules apply.
The answer is cached per area code ("+1NPA"): in libphonenumber's geocoding data (checked on
phonenumbers 9.0) every US area code's entries, 32,000 prefixes, name a single state, except
one exchange of New Jersey's 201 listed as "New York, NY"; no Florida, Oklahoma or Maryland
area code is mixed. A geographic area code never shares toll-free or non-geographic numbers,
so a cache filled by the first valid number of each area code answers for all of them (a
number phonenumbers rejects is never cached). The geocoder's data takes seconds and ~190 MB to
load, so it is loaded once, on first use or by `prepare()` (the planner and dispatcher call it
when built, never inside a transaction).

Local time: the contact's time zone, the engine's one notion of where the recipient is (the
same one the TCPA quiet hours use; scheduler.windows).

Topic: the statutes count calls "on the same subject matter". Every campaign of the clinic
markets the same services, and nothing in a campaign says what its subject is, so topics
cannot be told apart: every marketing text to a contact counts, across all campaigns (one
campaign is one topic at the least; counting them together is the conservative reading).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import phonenumbers

#: The hours all three statutes allow, local time at the recipient.
STATE_EARLIEST, STATE_LATEST = time(8, 0), time(20, 0)
#: Texts on one subject per rolling 24 hours.
TEXTS_PER_DAY = 3
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class StateRule:
    """One state's limits on marketing texts: its hours and how many per rolling day."""

    state: str  # USPS code, "FL"
    name: str
    law: str
    allowed_from: time = STATE_EARLIEST
    allowed_until: time = STATE_LATEST
    texts: int = TEXTS_PER_DAY
    per: timedelta = DAY

    def next_slot(self, texted: Iterable[datetime], at: datetime) -> datetime:
        """The earliest instant >= `at` when fewer than `texts` of the texts `texted` (their
        send times; any order) fall within the `per` before it, so one more keeps the count.

        A text counts while it is less than `per` old: after three at 10:00, 11:00 and 12:00,
        the fourth may go at 10:00 the next day."""
        times = sorted(texted)
        slot = at
        while True:
            recent = [sent for sent in times if slot - self.per < sent <= slot]
            if len(recent) < self.texts:
                return slot
            # Wait until enough of the oldest have aged out to leave room for one more.
            slot = recent[len(recent) - self.texts] + self.per


RULES: dict[str, StateRule] = {
    rule.state: rule
    for rule in (
        StateRule("FL", "Florida", "Fla. Stat. 501.059 and 501.616(6)"),
        StateRule("OK", "Oklahoma", "15 O.S. 775C (Telephone Solicitation Act of 2022)"),
        StateRule("MD", "Maryland", "Md. Code, Com. Law 14-4502 (Stop the Spam Calls Act)"),
    )
}

#: The geocoder's full names of US states (and DC), as it spells them.
_STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Washington D.C.": "DC", "District of Columbia": "DC",
}  # fmt: skip
_STATE_CODES = frozenset(_STATE_NAMES.values())

#: "+1NPA" -> the area code's state (None: not a US state). At most one entry per area code.
_by_area_code: dict[str, str | None] = {}


def prepare() -> None:
    """Load the geocoder's data now (seconds, once per process) rather than on the first text."""
    from phonenumbers import geocoder  # noqa: F401  (imported for its data)


def state_named(description: str) -> str | None:
    """The USPS code in one of the geocoder's descriptions: "Florida" or "Miami, FL"."""
    if description in _STATE_NAMES:
        return _STATE_NAMES[description]
    _, comma, code = description.rpartition(", ")
    return code if comma and code in _STATE_CODES else None


def state_of(phone: str | None) -> str | None:
    """The US state of an E.164 number's area code, or None when it is not known."""
    if phone is None or len(phone) != 12 or not phone.startswith("+1"):
        return None
    area_code = phone[:5]
    try:
        return _by_area_code[area_code]
    except KeyError:
        pass
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None  # not cached: it says nothing about its area code
    prepare()
    from phonenumbers import geocoder

    state = state_named(geocoder.description_for_number(number, "en"))
    _by_area_code[area_code] = state
    return state


def rule_for(phone: str | None) -> StateRule | None:
    """The state rule that holds for texts to this number; None: only the default rules."""
    state = state_of(phone)
    return RULES.get(state) if state is not None else None
