"""State rules for texts (contacts.state_rules): Florida, Oklahoma and Maryland numbers get
marketing texts only 08:00-20:00 local and three a day across campaigns, in the planner and at
the send; a California number only follows the clinic's own settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from campaigns import lifecycle
from campaigns.definitions import Sequence
from contacts.state_rules import AREA_CODES, RULES, rule_for, state_of
from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp
from providers.fakeserver import RunningFake
from scheduler.planner import quiet_hours
from scheduler.simulate import simulate
from storage.db import transaction
from storage.models import ConsentStatus, Contact, Message, MessageState

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # the frozen clock: 13:00 in Miami, 10:00 in LA
NEW_YORK = ZoneInfo("America/New_York")
FLORIDA, CALIFORNIA = "+13055550123", "+13105550124"
#: The clinic's own one-text-a-day cap off, so that only the state rule limits the count.
NO_CAP = {"scheduler": {"sms_frequency_cap_hours": 0}}
CAMPAIGNS = ("state-a", "state-b", "state-c", "state-d")


@pytest.mark.parametrize(
    ("phone", "state", "limited"),
    [
        ("+13055550100", "FL", True),  # Miami
        ("+17865550100", "FL", True),  # Miami overlay
        ("+18505550100", "FL", True),  # the panhandle, Central time
        ("+14055550100", "OK", True),  # Oklahoma City
        ("+19185550100", "OK", True),  # Tulsa
        ("+13015550100", "MD", True),  # western Maryland
        ("+14105550100", "MD", True),  # Baltimore
        ("+13105550100", None, False),  # Los Angeles: only the clinic's rules
        ("+12125550100", None, False),  # New York: no rule of its own for texts
        ("+18005550100", None, False),  # toll-free: no state
        ("+14165550100", None, False),  # Toronto: a province, not a state
        ("+12425550100", None, False),  # the Bahamas share +1
        ("+442079460000", None, False),  # not NANP
        ("+1305555", None, False),  # not a whole number
        ("+15555550100", None, False),  # no such area code
        (None, None, False),
    ],
)
def test_the_state_comes_from_the_area_code(
    phone: str | None, state: str | None, limited: bool
) -> None:
    assert state_of(phone) == state
    rule = rule_for(phone)
    assert (rule is not None) == limited
    if rule is not None:
        assert rule.state == state and (rule.allowed_from.hour, rule.allowed_until.hour) == (8, 20)
        assert rule.texts == 3 and rule.per == timedelta(hours=24)


def test_every_number_of_a_state_area_code_is_that_state() -> None:
    """The rule is per area code: any exchange of 305 (Miami) or 918 (Tulsa) is its state."""
    for exchange in ("201", "347", "555", "633", "987"):
        assert state_of(f"+1305{exchange}0199") == "FL"
        assert state_of(f"+1918{exchange}0199") == "OK"
        assert state_of(f"+1410{exchange}0199") == "MD"


def test_three_texts_a_day_then_the_fourth_waits_for_the_first_to_age_a_day() -> None:
    rule = RULES["FL"]
    first = NOW
    sent = [first, first + timedelta(hours=1), first + timedelta(hours=2)]
    at = first + timedelta(hours=3)
    assert rule.next_slot(sent[:2], at) == at  # two in the day: a third may go
    assert rule.next_slot(sent, at) == first + timedelta(hours=24)
    assert rule.next_slot(sent, first + timedelta(hours=25)) == first + timedelta(hours=25)
    # Texts older than a day do not count; order does not matter.
    old = [first - timedelta(hours=30), first - timedelta(hours=24)]
    assert rule.next_slot([*reversed(sent[:2]), *old], at) == at


def _contact(app: NurtureApp, phone: str, zone: str) -> int:
    with transaction(app.sessions) as session:
        contact = Contact(
            first_name="Pat",
            last_name=phone[-4:],
            email=f"pat{phone[-4:]}@example.com",
            phone=phone,
            timezone=zone,
            email_consent=ConsentStatus.OPTED_IN,
            sms_consent=ConsentStatus.OPTED_IN,
        )
        session.add(contact)
        session.flush()
        return contact.id


def _texts(app: NurtureApp, contact: int) -> list[Message]:
    with transaction(app.sessions, immediate=False) as session:
        found = session.scalars(select(Message).where(Message.contact_id == contact))
        return sorted(found, key=lambda message: (message.due_at, message.id))


@pytest.mark.parametrize("batch_size", [1, 100])
def test_the_fourth_text_in_a_day_across_campaigns_is_deferred_at_the_send(
    h: Any,
    provider_app: Callable[..., NurtureApp],
    frozen_clock: FrozenClock,
    fake: RunningFake,
    batch_size: int,
) -> None:
    app = provider_app(scheduler={"sms_frequency_cap_hours": 0, "batch_size": batch_size})
    florida = _contact(app, FLORIDA, "America/New_York")
    california = _contact(app, CALIFORNIA, "America/Los_Angeles")
    for name in CAMPAIGNS:
        h.seed(app, texts=2, due=NOW, campaign=name, contacts=[florida, california])
    total = app.dispatcher.tick()
    assert total.sent == 7 and total.deferred == 1  # the fourth to Florida waits
    fourth = [m for m in _texts(app, florida) if m.state == MessageState.PLANNED]
    assert len(fourth) == 1 and fourth[0].skip_reason is None
    assert fourth[0].due_at == NOW + timedelta(hours=24)  # 13:00 in Miami the next day
    assert {m.state for m in _texts(app, california)} == {MessageState.SENT}
    frozen_clock.advance(hours=23, minutes=59)
    assert app.dispatcher.tick().sent == 0
    frozen_clock.advance(minutes=1)
    assert app.dispatcher.tick().sent == 1
    assert {m.state for m in _texts(app, florida)} == {MessageState.SENT}


def test_texts_to_florida_oklahoma_and_maryland_wait_for_8am_local_at_the_send(
    h: Any, provider_app: Callable[..., NurtureApp], frozen_clock: FrozenClock
) -> None:
    frozen_clock.now = datetime(2026, 12, 1, 20, 30, tzinfo=NEW_YORK)  # 19:30 Chicago, 17:30 LA
    app = provider_app()
    people = {
        "FL": _contact(app, FLORIDA, "America/New_York"),
        "MD": _contact(app, "+14105550125", "America/New_York"),
        "OK": _contact(app, "+14055550126", "America/Chicago"),
        "CA": _contact(app, CALIFORNIA, "America/Los_Angeles"),
    }
    h.seed(app, texts=4, due=frozen_clock(), campaign="evening", contacts=list(people.values()))
    result = app.dispatcher.tick()
    assert result.sent == 2 and result.deferred == 2
    tomorrow_8am = datetime(2026, 12, 2, 8, 0, tzinfo=NEW_YORK)
    for state, contact in people.items():
        [text] = _texts(app, contact)
        if state in ("FL", "MD"):  # 20:30 there: past the state's 20:00, not TCPA's 21:00
            assert text.state == MessageState.PLANNED and text.due_at == tomorrow_8am
        else:  # Oklahoma at 19:30 and California: inside their hours
            assert text.state == MessageState.SENT


def _launch_texts(app: NurtureApp, h: Any, now: datetime, names: tuple[str, ...]) -> None:
    with transaction(app.sessions) as session:
        for name in names:
            lifecycle.launch(session, h.sequence(name, "sms"), now=now, settings=app.settings)


def test_the_planner_puts_the_fourth_text_in_a_day_across_campaigns_a_day_later(
    h: Any, provider_app: Callable[..., NurtureApp], frozen_clock: FrozenClock
) -> None:
    app = provider_app(**NO_CAP)
    florida = _contact(app, FLORIDA, "America/New_York")
    california = _contact(app, CALIFORNIA, "America/Los_Angeles")
    _launch_texts(app, h, NOW, CAMPAIGNS[:2])
    assert app.planner.tick().planned == 4
    _launch_texts(app, h, NOW, CAMPAIGNS[2:])  # later launches count the texts planned before
    assert app.planner.tick().planned == 4
    assert [m.due_at for m in _texts(app, florida)] == [NOW] * 3 + [NOW + timedelta(hours=24)]
    assert [m.due_at for m in _texts(app, california)] == [NOW] * 4
    assert app.dispatcher.tick().sent == 7  # the fourth to Florida is not due yet


def test_the_planner_counts_texts_already_sent_and_keeps_the_state_hours(
    h: Any, provider_app: Callable[..., NurtureApp], frozen_clock: FrozenClock
) -> None:
    """Three texts sent in the afternoon: a fourth campaign launched in the evening is due when
    the first of them is a day old, and a text launched after 20:00 in Miami waits for 8:00."""
    app = provider_app(**NO_CAP)
    florida = _contact(app, FLORIDA, "America/New_York")
    h.seed(app, texts=1, due=NOW, campaign="sent-a", contacts=[florida])
    h.seed(app, texts=1, due=NOW + timedelta(hours=1), campaign="sent-b", contacts=[florida])
    h.seed(app, texts=1, due=NOW + timedelta(hours=2), campaign="sent-c", contacts=[florida])
    assert app.dispatcher.tick().sent == 1
    frozen_clock.advance(hours=1)
    assert app.dispatcher.tick().sent == 1
    frozen_clock.advance(hours=1)
    assert app.dispatcher.tick().sent == 1
    evening = datetime(2026, 12, 1, 20, 30, tzinfo=NEW_YORK)  # 17:30 in Los Angeles
    frozen_clock.now = evening
    _launch_texts(app, h, evening, ("evening",))
    assert app.planner.tick().planned == 1
    [planned] = [m for m in _texts(app, florida) if m.state == MessageState.PLANNED]
    assert planned.due_at == NOW + timedelta(hours=24)  # the first text a day old: 13:00 Miami


def test_a_text_launched_after_8pm_in_florida_is_due_at_8am_and_california_now(
    h: Any, provider_app: Callable[..., NurtureApp], frozen_clock: FrozenClock
) -> None:
    evening = datetime(2026, 12, 1, 20, 30, tzinfo=NEW_YORK)
    frozen_clock.now = evening
    app = provider_app()
    florida = _contact(app, FLORIDA, "America/New_York")
    california = _contact(app, CALIFORNIA, "America/New_York")  # a Californian in New York
    _launch_texts(app, h, evening, ("evening",))
    assert app.planner.tick().planned == 2
    [text] = _texts(app, florida)
    assert text.due_at == datetime(2026, 12, 2, 8, 0, tzinfo=NEW_YORK)
    [text] = _texts(app, california)
    assert text.due_at == evening  # the clinic's hours (to 21:00) only


def _texting_sequence(name: str, texts: int) -> Sequence:
    return Sequence.model_validate(
        {
            "name": name,
            "title": name,
            "template_folder": "spasm-relief",
            "steps": [
                {"name": f"text-{n}", "channel": "sms", "template": "02-cycle", "delay": "1h"}
                for n in range(texts)
            ],
        }
    )


def test_simulate_moves_florida_texts_into_the_state_rules_and_says_so(
    nurture_app: NurtureApp,
) -> None:
    florida = _contact(nurture_app, FLORIDA, "America/New_York")
    california = _contact(nurture_app, CALIFORNIA, "America/New_York")
    start = datetime(2026, 12, 1, 14, 0, tzinfo=NEW_YORK)  # texts at 15, 16, 17, 18:00 local
    with transaction(nurture_app.sessions, immediate=False) as session:
        rows = simulate(
            session,
            _texting_sequence("four-texts", 4),
            campaign=None,
            start=start,
            days=3,
            quiet=quiet_hours(nurture_app.settings),
            sms_cap=timedelta(0),
        )
    mine = [row for row in rows if row.contact_id == florida]
    theirs = [row for row in rows if row.contact_id == california]
    assert [row.at for row in theirs] == [start + timedelta(hours=n) for n in range(1, 5)]
    assert all(row.state_rule == "" for row in theirs)
    assert [row.at for row in mine[:3]] == [row.at for row in theirs[:3]]
    assert mine[3].at == start + timedelta(hours=25) and mine[3].state_rule == "FL"
    assert not any(row.skipped for row in mine)


def test_cli_simulate_counts_the_texts_the_state_rules_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nurture.cli.main import app as cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("NURTURE_DATABASE__URL", url)
    monkeypatch.setenv("COLUMNS", "160")
    seeded = NurtureApp(settings=load_settings(database={"url": url}))
    seeded.migrate()
    for phone in (FLORIDA, CALIFORNIA, "+14105550125"):
        contact = _contact(seeded, phone, "America/New_York")
        with transaction(seeded.sessions) as session:
            session.get_one(Contact, contact).add_tags(["demo"])
    seeded.dispose()
    evening = "2026-12-01T20:30-05:00"  # the demo's text, 15 s later, is past 20:00 in Miami
    result = CliRunner().invoke(cli, ["campaigns", "simulate", "demo", "--start", evening])
    assert result.exit_code == 0, result.output
    assert "2 text(s) moved later by state rules (FL 1, MD 1)" in result.output


def test_the_area_codes_with_a_rule_are_the_ones_the_phonenumbers_geocoder_names() -> None:
    """The run-time list (contacts.state_rules.AREA_CODES) against the reference data: every
    area code 200-999 whose valid numbers the geocoder places in Florida, Oklahoma or Maryland
    is listed under that state, and nothing else is. A new overlay in a phonenumbers release
    fails here until it is added to the list."""
    import phonenumbers
    from phonenumbers import geocoder

    names = {"Florida": "FL", "Oklahoma": "OK", "Maryland": "MD"}
    found: dict[str, set[str]] = {state: set() for state in AREA_CODES}
    for area_code in range(200, 1000):
        for exchange, line in (("200", "0100"), ("345", "4567"), ("555", "0100"), ("678", "4567")):
            number = phonenumbers.parse(f"+1{area_code}{exchange}{line}", None)
            if not phonenumbers.is_valid_number(number):
                continue
            place = geocoder.description_for_number(number, "en")
            state = names.get(place) or place.rpartition(", ")[2]
            if state in found:
                found[state].add(str(area_code))
    assert {state: frozenset(codes) for state, codes in found.items()} == AREA_CODES
