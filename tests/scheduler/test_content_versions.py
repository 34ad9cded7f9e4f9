"""A launch pins the current content version; an edit after launch is a new version that only
steps not yet planned use, after `upgrade`; the worker reads a version once, not per message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, update

from campaigns import content_store, content_upgrade, lifecycle
from campaigns.content_store import sequence_of
from campaigns.definitions import load_sequence
from core.errors import InputError
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Campaign, ContentVersion, Message

NAME = "three-emails"
TEMPLATES = ("01-welcome", "03-cycle", "04-decompression")


def _definition(session: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Three emails an hour apart, on the seeded spasm-relief version's files."""
    seeded = content_store.current_version(session, "spasm-relief")
    data = {key: value for key, value in seeded.definition.items() if key != "steps"}
    data.update(name=NAME, title="Three emails", audience={"tags": ["three"]})
    data["steps"] = [
        {"name": f"email-{number}", "channel": "email", "template": template,
         "delay": "0h" if number == 1 else "1h"}
        for number, template in enumerate(TEMPLATES, start=1)
    ]  # fmt: skip
    return data, content_store.files_of(session, seeded)


def _save(app: NurtureApp, data: dict[str, Any], files: dict[str, str]) -> ContentVersion:
    with transaction(app.sessions) as session:
        version, _ = content_store.save_version(
            session, NAME, definition=data, templates=files, author="ana@clinic.test",
            now=app.clock(),
        )  # fmt: skip
        return version


def _launch(app: NurtureApp) -> ContentVersion:
    with transaction(app.sessions) as session:
        version = content_store.current_version(session, NAME)
        campaign, enrolled = lifecycle.launch(
            session, sequence_of(version), now=app.clock(), settings=app.settings, version=version
        )
        assert (campaign.content_version_id, enrolled) == (version.id, 1)
        return version


def _run(app: NurtureApp, hours: float = 0) -> None:
    app.clock.advance(hours=hours)  # type: ignore[attr-defined]  # the tests' FrozenClock
    app.planner.tick()
    app.dispatcher.tick()
    app.planner.tick()  # the next step, once this one is sent


@pytest.fixture
def launched(nurture_app: NurtureApp, make_contact: Callable[..., int]) -> ContentVersion:
    make_contact(email="pat@example.com", tags=("three",))
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    _save(nurture_app, data, files)
    return _launch(nurture_app)


def test_planned_steps_keep_their_version_and_later_ones_take_the_upgrade(
    nurture_app: NurtureApp, channel: MemoryChannel, launched: ContentVersion
) -> None:
    _run(nurture_app)  # email 1 sent, email 2 planned with version 1
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
        files = {**files}
        for template in TEMPLATES[1:]:
            files[f"{template}.subject.txt"] = "Version two: " + files[f"{template}.subject.txt"]
    edited = _save(nurture_app, data, files)
    assert edited.number == launched.number + 1
    assert edited.note == "changed 03-cycle.subject.txt, 04-decompression.subject.txt"

    with transaction(nurture_app.sessions) as session:
        plan = content_upgrade.plan_upgrade(session, NAME)
        assert (plan.from_number, plan.to_number, plan.contacts_touched) == (1, 2, 1)
        assert plan.changes == (f"v2: {edited.note}",)
        content_upgrade.upgrade(
            session, NAME, now=nurture_app.clock(), settings=nurture_app.settings
        )

    _run(nurture_app, hours=1)  # email 2: planned before the upgrade, so version 1
    _run(nurture_app, hours=1)  # email 3: planned after it, so version 2
    subjects = [email.subject for email in channel.emails]
    assert len(subjects) == 3
    assert not subjects[0].startswith("Version two") and not subjects[1].startswith("Version two")
    assert subjects[2].startswith("Version two: ")
    with transaction(nurture_app.sessions) as session:
        rows = session.execute(select(Message.step_index, Message.content_version_id))
        stamped = {step: version for step, version in rows}
        assert stamped == {0: launched.id, 1: launched.id, 2: edited.id}  # as planned
        campaign = session.scalar(select(Campaign).where(Campaign.name == NAME))
        assert campaign is not None and campaign.content_version_id == edited.id


def test_an_upgrade_refuses_to_move_a_planned_step(
    nurture_app: NurtureApp, launched: ContentVersion
) -> None:
    _run(nurture_app)  # steps 1 and 2 have messages
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    data["steps"] = [data["steps"][0], data["steps"][2]]
    _save(nurture_app, data, files)
    with transaction(nurture_app.sessions) as session, pytest.raises(InputError, match="step 2"):
        content_upgrade.plan_upgrade(session, NAME)


def test_an_upgrade_needs_a_newer_version_and_a_pinned_campaign(
    nurture_app: NurtureApp, launched: ContentVersion, make_contact: Callable[..., int]
) -> None:
    with transaction(nurture_app.sessions) as session, pytest.raises(InputError, match="newest"):
        content_upgrade.plan_upgrade(session, NAME)
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(
            session, load_sequence("demo"), now=nurture_app.clock(), settings=nurture_app.settings
        )
    with transaction(nurture_app.sessions) as session, pytest.raises(InputError, match="files"):
        content_upgrade.plan_upgrade(session, "demo")


def test_the_worker_reads_a_version_once_not_per_message(
    nurture_app: NurtureApp, make_contact: Callable[..., int], channel: MemoryChannel
) -> None:
    for _ in range(5):
        make_contact(tags=("three",))
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    _save(nurture_app, data, files)
    with transaction(nurture_app.sessions) as session:
        version = content_store.current_version(session, NAME)
        lifecycle.launch(
            session, sequence_of(version), now=nurture_app.clock(), settings=nurture_app.settings,
            version=version,
        )  # fmt: skip
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "content_files" in statement:
            reads.append(statement)

    event.listen(nurture_app.engine, "before_cursor_execute", count)
    try:
        _run(nurture_app)
        _run(nurture_app, hours=1)
    finally:
        event.remove(nurture_app.engine, "before_cursor_execute", count)
    assert len(channel.emails) == 10
    assert len(reads) == 1


def test_a_step_planned_from_a_replaced_definition_never_goes_on_another_channel(
    nurture_app: NurtureApp, channel: MemoryChannel, launched: ContentVersion
) -> None:
    """Made by hand: the campaign's pin moves to a version whose step 2 is a text while a message
    for step 2 (an email) is planned without a stamp (as before the planner stamped them)."""
    from storage.models import MessageState

    _run(nurture_app)  # email 1 sent, email 2 planned
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    data["steps"][1].update(channel="sms", template="02-cycle")
    texting = _save(nurture_app, data, files)
    with transaction(nurture_app.sessions) as session:
        campaign = lifecycle.get_campaign(session, NAME)
        campaign.content_version_id = texting.id
        session.execute(update(Message).values(content_version_id=None))
    _run(nurture_app, hours=1)
    assert len(channel.emails) == 1 and channel.texts == []
    with transaction(nurture_app.sessions) as session:
        message = session.scalar(select(Message).where(Message.step_index == 1))
        assert message is not None and message.state == MessageState.FAILED
        assert "step 2 was planned as email" in (message.error or "")


def test_a_step_an_upgrade_removed_fails_its_message_alone_and_the_batch_sends(
    nurture_app: NurtureApp, channel: MemoryChannel, make_contact: Callable[..., int]
) -> None:
    """The send check reads the definition rendering reads (campaigns.content_render.version_of):
    a message planned under v1 is checked with v1 after the campaign moved to a v2 without its
    step; one whose version has no such step fails with the reason, never the whole batch."""
    from storage.models import MessageState

    for _ in range(3):
        make_contact(tags=("three",))
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    first = _save(nurture_app, data, files)
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(
            session, sequence_of(first), now=nurture_app.clock(), settings=nurture_app.settings,
            version=first,
        )  # fmt: skip
    _run(nurture_app)  # email 1 sent to all three, email 2 planned with version 1
    assert len(channel.emails) == 3
    with transaction(nurture_app.sessions) as session:
        data, files = _definition(session)
    data["steps"] = data["steps"][:1]
    shorter = _save(nurture_app, data, files)  # version 2: email 2 and 3 removed
    with transaction(nurture_app.sessions) as session:
        campaign = lifecycle.get_campaign(session, NAME)  # moved on, as upgrade would
        campaign.content_version_id = shorter.id
        campaign.definition = sequence_of(shorter).snapshot()
        planned = sorted(session.scalars(select(Message.id).where(Message.step_index == 1)))
        assert len(planned) == 3
        unstamped = planned[1]  # planned before messages were stamped: governed by the pin
        session.execute(
            update(Message).where(Message.id == unstamped).values(content_version_id=None)
        )
    nurture_app.clock.advance(hours=1)  # type: ignore[attr-defined]  # the tests' FrozenClock
    nurture_app.dispatcher.tick()
    with transaction(nurture_app.sessions) as session:
        found = session.execute(select(Message.id, Message.state).where(Message.id.in_(planned)))
        states = {id_: state for id_, state in found}
        failed = session.get(Message, unstamped)
        assert failed is not None
        assert "step 2 was planned as email" in (failed.error or "")
    assert states == {
        planned[0]: MessageState.SENT,
        unstamped: MessageState.FAILED,
        planned[2]: MessageState.SENT,
    }
    assert len(channel.emails) == 5
