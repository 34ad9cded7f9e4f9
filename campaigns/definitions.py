"""Sequence definitions: readable TOML files in campaigns/, parsed into frozen models.

A definition is snapshotted into the campaign row at launch, so editing the file later never
changes what a running campaign sends.
"""

from __future__ import annotations

import re
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from campaigns import CAMPAIGNS_DIR
from core.errors import InputError, NotFound
from core.settings import WebAddress

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: TCPA (47 CFR 64.1200(c)(1)): no marketing text before 8:00 or after 21:00 at the recipient's
#: location. An SMS step without its own window gets exactly these hours.
TCPA_EARLIEST, TCPA_LATEST = time(8, 0), time(21, 0)
DEFAULT_MAX_SEGMENTS = 2
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: str | int | float) -> timedelta:
    """'3d', '1d12h', '90m', '45s' or a number of seconds."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip().lower().replace(" ", "")
    if not text or _DURATION.sub("", text):
        raise ValueError(f"not a duration: {value!r} (use e.g. '3d', '1d12h', '90m')")
    return timedelta(
        seconds=sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))
    )


def parse_clock(value: str | time) -> time:
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
    if not match or int(match[1]) > 24 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise ValueError(f"not a time of day: {value!r} (use HH:MM)")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    return time(23, 59, 59) if hours == 24 else time(hours, minutes, seconds)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SendWindow(Strict):
    """Local days and hours, in the contact's time zone, when a step may go out."""

    days: tuple[str, ...] = WEEKDAYS
    start: time = time(0, 0)
    end: time = time(23, 59, 59)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = _expand_days(value)
        days = tuple(str(day).lower()[:3] for day in value)
        unknown = [day for day in days if day not in WEEKDAYS]
        if unknown or not days:
            raise ValueError(f"unknown weekday(s) {unknown}; use mon..sun or 'mon-fri'")
        return days

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> time:
        return parse_clock(value)

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.start >= self.end:
            raise ValueError("window start must be before its end (same local day)")
        return self

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(day) for day in self.days)


def _expand_days(text: str) -> list[str]:
    text = text.strip().lower()
    if text in ("weekdays", "mon-fri"):
        return list(WEEKDAYS[:5])
    if text in ("every day", "daily", "all", "mon-sun"):
        return list(WEEKDAYS)
    if "-" in text:
        first, last = (part.strip()[:3] for part in text.split("-", 1))
        return list(WEEKDAYS[WEEKDAYS.index(first) : WEEKDAYS.index(last) + 1])
    return [part.strip() for part in text.split(",")]


#: A branch or `next` target that ends the sequence instead of naming a step.
END = "end"
_TARGET = r"^[a-z0-9][a-z0-9-]*$"


class Branch(Strict):
    """Where a step's contacts go next, by what they did within `within` of its send.

    `clicked`: they clicked the booking link of one of this sequence's messages since the step
    was sent; `replied`: they texted back something that is not a keyword (texts only).
    `otherwise`: neither happened within the time. Each names a step, or "end". The target's
    delay counts from that moment: the click, the reply, or the send plus `within`.
    """

    within: timedelta
    otherwise: str = Field(pattern=_TARGET)
    clicked: str | None = Field(None, pattern=_TARGET)
    replied: str | None = Field(None, pattern=_TARGET)

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and value.upper().startswith("P"):
            return value  # ISO 8601 from a snapshot: pydantic parses it
        return parse_duration(value)

    @model_validator(mode="after")
    def _waits_for_something(self) -> Branch:
        if self.within <= timedelta(0):
            raise ValueError("`within` must be a positive time, e.g. '2d'")
        if self.clicked is None and self.replied is None:
            raise ValueError("a branch waits for `clicked` or `replied` (or both)")
        return self

    def targets(self) -> dict[str, str]:
        """What happened -> where it leads: clicked, replied, otherwise (those given)."""
        found = {"clicked": self.clicked, "replied": self.replied, "otherwise": self.otherwise}
        return {event: target for event, target in found.items() if target is not None}


class Step(Strict):
    """One message of a sequence. `max_segments` caps a text's billed parts (each part costs).

    After it, the contact goes to `then`'s branch if it has one, else to `next` (a step's name
    or "end") if given, else to the next step in the file (the last one ends the sequence).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    channel: Literal["email", "sms"]
    template: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    delay: timedelta = timedelta(0)
    window: SendWindow = SendWindow()
    max_lateness: timedelta | None = None
    max_segments: int = Field(DEFAULT_MAX_SEGMENTS, ge=1, le=10)
    #: Due this long before the booked visit, when a booking gave its time (scheduler.appointments);
    #: otherwise `delay` after the previous step, as any step.
    before_appointment: timedelta | None = None
    then: Branch | None = None
    next: str | None = Field(None, pattern=_TARGET)

    @model_validator(mode="after")
    def _one_way_on(self) -> Step:
        if self.then is not None and self.next is not None:
            raise ValueError("a step has `then` (a branch) or `next`, not both")
        return self

    @model_validator(mode="before")
    @classmethod
    def _texts_default_to_tcpa_hours(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("channel") == "sms" and "window" not in data:
            return {**data, "window": {"start": TCPA_EARLIEST, "end": TCPA_LATEST}}
        return data

    @field_validator("delay", "max_lateness", "before_appointment", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.upper().startswith("P")):
            return value  # None, or ISO 8601 from a snapshot: pydantic parses it
        return parse_duration(value)


class Audience(Strict):
    tags: tuple[str, ...] = ()
    require_consent: tuple[Literal["email", "sms"], ...] = ()
    enroll_new_contacts: bool = True


class ExitConditions(Strict):
    booked: bool = True
    unsubscribed_everywhere: bool = True


class Translation(Strict):
    """What a sequence says outside its templates, in another language: the footer's reason."""

    reason: str = Field(min_length=8)


class Sequence(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    template_folder: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    # Completes the email footer's "You are receiving this email because ..." (CAN-SPAM context).
    reason: str = Field("you asked us to keep in touch", min_length=8)
    audience: Audience = Audience()
    exit: ExitConditions = ExitConditions()
    #: Tracked-link targets by name: http(s) addresses only, as the clinic's (core.settings).
    link_destinations: dict[str, WebAddress] = Field(default_factory=dict)
    custom_fields: tuple[str, ...] = ()
    #: by language code, e.g. [translations.es] reason = "..." (English is `reason` itself)
    translations: dict[str, Translation] = Field(default_factory=dict)
    #: A text reply that is not a keyword pauses the contact's enrollment until staff resume or
    #: end it from the inbox (a question deserves a person, not the next scheduled text).
    pause_on_reply: bool = True
    #: What enrolls a contact: `launch` enrolls the audience when the campaign starts; a booking
    #: event (`booked`, `cancelled`, `no_show`) enrolls one contact when it arrives
    #: (campaigns.triggers), one sequence of a kind at a time.
    trigger: Literal["launch", "booked", "cancelled", "no_show"] = "launch"
    #: A contact may enter this sequence again this long after their last entry; None: never again.
    reenter_after: timedelta | None = None
    steps: tuple[Step, ...] = Field(min_length=1)

    @field_validator("reenter_after", mode="before")
    @classmethod
    def _reentry(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.upper().startswith("P")):
            return value  # None, or ISO 8601 from a snapshot: pydantic parses it
        return parse_duration(value)

    @model_validator(mode="after")
    def _unique_steps(self) -> Sequence:
        names = [step.name for step in self.steps]
        if len(names) != len(set(names)):
            raise ValueError("step names must be unique")
        return self

    @model_validator(mode="after")
    def _started_by_an_event_not_ended_by_booking(self) -> Sequence:
        """The booking exit reads "has this person ever booked" (scheduler.checks): a sequence
        a booking event starts would end at once. Its ends are campaigns.triggers' instead."""
        if self.trigger != "launch" and self.exit.booked:
            raise ValueError(
                f"a sequence started by `{self.trigger}` must say [exit] booked = false: its "
                "contacts have booked (a new booking ends a re-booking sequence by itself)"
            )
        timed = [step.name for step in self.steps if step.before_appointment is not None]
        if timed and self.trigger != "booked":
            raise ValueError(
                f"step {timed[0]!r} is timed before_appointment, which only a sequence started "
                'by a booking (trigger = "booked") knows'
            )
        return self

    def reason_in(self, language: str) -> str:
        """The footer's reason in `language`; the English one where there is no translation."""
        translation = self.translations.get(language)
        return translation.reason if translation else self.reason

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(step.channel for step in self.steps)

    def snapshot(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Sequence:
        return cls.model_validate(data)


def definition_path(name: str, folder: Path = CAMPAIGNS_DIR) -> Path:
    return folder / f"{name}.toml"


def load_sequence(name_or_path: str | Path, folder: Path = CAMPAIGNS_DIR) -> Sequence:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = definition_path(str(name_or_path), folder)
    if not path.is_file():
        raise NotFound(f"no sequence definition {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Sequence.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        ]
        raise InputError(f"{path}: " + "; ".join(problems)) from None


def list_sequences(folder: Path = CAMPAIGNS_DIR) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.toml"))
