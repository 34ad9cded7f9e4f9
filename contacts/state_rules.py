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

Which state: the area code, as the statutes presume. The area codes of the three states are
listed here (AREA_CODES), taken from libphonenumber's geocoding data, the reference for what an
area code names; a test reads the geocoder (`phonenumbers.geocoder.description_for_number`,
public API) for every area code 200-999 and fails when it and this list disagree, so an
overlay added in a phonenumbers release is noticed on upgrade. The list, not the geocoder, is
read at run time: the geocoder's data takes seconds and ~190 MB to load, more than a whole
worker otherwise holds. Any other number (another state, a Canadian province, a Caribbean
island, toll-free, not +1) gets only the default rules. Numbers are checked by phonenumbers when
they enter the system (contacts.normalize), so only the area code is read here.

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

#: The area codes of each state with a rule (libphonenumber's geocoding data, phonenumbers 9;
#: tests/scheduler/test_state_rules.py checks them against the geocoder).
AREA_CODES: dict[str, frozenset[str]] = {
    "FL": frozenset(
        "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 "
        "941 954".split()
    ),
    "OK": frozenset("405 539 572 580 918".split()),
    "MD": frozenset("227 240 301 410 443 667".split()),
}
_state_by_area_code = {code: state for state, codes in AREA_CODES.items() for code in codes}


def state_of(phone: str | None) -> str | None:
    """The state with a text rule (FL, OK, MD) whose area code an E.164 number has, or None."""
    if phone is None or len(phone) != 12 or not phone.startswith("+1"):
        return None
    return _state_by_area_code.get(phone[2:5])


def rule_for(phone: str | None) -> StateRule | None:
    """The state rule that holds for texts to this number; None: only the default rules."""
    state = state_of(phone)
    return RULES.get(state) if state is not None else None
