"""The worker's sender process: provider calls in a child, outcomes back intact, and a child
that dies never turns into a message sent twice or one silently lost."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from core.settings import REPO_ROOT
from providers.base import (
    OutgoingEmail,
    OutgoingSms,
    ProviderRejected,
    ProviderUnavailable,
    ProviderUncertain,
    SendResult,
)
from providers.fakeserver import FakeProviders, Received, RunningFake
from providers.memory import MemoryChannel
from providers.sendgrid import SendGridChannel
from providers.twilio import TwilioChannel
from scheduler.sender_process import SenderProcess, runs_in_sender
from scheduler.sending import Outgoing

SID = "AC" + "b" * 32


def email(message_id: int) -> Outgoing:
    payload = OutgoingEmail(
        message_id=message_id,
        to=f"pat{message_id}@example.com",
        from_email="care@example.com",
        from_name="Clinic",
        subject="Hello",
        html="<p>Hi</p>",
        text="Hi",
        custom_args={"nurture_message_id": str(message_id)},
    )
    return Outgoing(message_id, message_id, 1, "email", 1, payload)


def text(message_id: int) -> Outgoing:
    payload = OutgoingSms(
        message_id=message_id,
        to="+13105550100",
        body="Hi",
        from_number="+13105550199",
        status_callback=f"https://clinic.example/webhooks/twilio/status?m={message_id}",
    )
    return Outgoing(message_id, message_id, 1, "sms", 1, payload)


@pytest.fixture
def sender_for() -> Iterator[Any]:
    made: list[SenderProcess] = []

    def make(url: str) -> SenderProcess:
        channels = {
            "email": SendGridChannel("SG.test", url, concurrency=4, timeout=5),
            "sms": TwilioChannel(SID, "token", api_base_url=url, concurrency=4, timeout=5),
        }
        sender = SenderProcess(channels, {"email": 4, "sms": 4})
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


def test_provider_errors_keep_their_fields_through_pickling() -> None:
    rejected = ProviderRejected("twilio", "opted out", code="21610", suppress="stop")
    unavailable = ProviderUnavailable("sendgrid", "slow down", code="429", retry_after=7.0)
    uncertain = ProviderUncertain("sendgrid", "no answer")
    back = [pickle.loads(pickle.dumps(error)) for error in (rejected, unavailable, uncertain)]
    assert [type(error) for error in back] == [
        ProviderRejected,
        ProviderUnavailable,
        ProviderUncertain,
    ]
    assert (back[0].code, back[0].suppress, str(back[0])) == ("21610", "stop", str(rejected))
    assert (back[1].retry_after, back[1].provider, back[1].reason) == (7.0, "sendgrid", "slow down")
    assert str(back[2]) == "sendgrid: no answer"


def test_a_used_channel_pickles_as_its_settings_without_its_open_session() -> None:
    channel = SendGridChannel("SG.test", "http://127.0.0.1:9", concurrency=3)

    async def open_pool() -> None:
        channel.pool._open()
        await channel.pool.aclose()

    asyncio.run(open_pool())
    copy = pickle.loads(pickle.dumps(channel))
    assert copy.pool._session is None
    assert (copy.url, copy.pool.concurrency, copy.rate_bucket) == (
        channel.url,
        3,
        channel.rate_bucket,
    )


def test_only_the_real_provider_classes_go_to_the_sender() -> None:
    class Instrumented(SendGridChannel):  # e.g. a test double living in a test module
        pass

    assert runs_in_sender(SendGridChannel("SG.test", "http://127.0.0.1:9"))
    assert runs_in_sender(TwilioChannel(SID, "token", api_base_url="http://127.0.0.1:9"))
    assert not runs_in_sender(Instrumented("SG.test", "http://127.0.0.1:9"))
    assert not runs_in_sender(MemoryChannel())


def test_outcomes_come_back_one_per_message_in_order(sender_for: Any) -> None:
    def rule(kind: str, message_id: int, to: str, seen: int) -> tuple[int, dict[str, Any]] | None:
        if message_id == 2:
            return 500, {"errors": [{"message": "try later"}]}
        if message_id == 3:
            return 400, {"errors": [{"message": "bad payload"}]}
        if message_id == 12:
            return 400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
        return None

    with RunningFake(FakeProviders(rule=rule)) as fake:
        sender = sender_for(fake.url)
        emails = sender.submit([email(1), email(2), email(3)]).result()
        texts = sender.submit([text(11), text(12)]).result()
    assert isinstance(emails[0], SendResult) and emails[0].provider_message_id == "sg-1"
    assert isinstance(emails[1], ProviderUnavailable) and emails[1].code == "500"
    assert isinstance(emails[2], ProviderRejected) and "bad payload" in str(emails[2])
    assert isinstance(texts[0], SendResult) and texts[0].status == "queued"
    assert isinstance(texts[1], ProviderRejected) and texts[1].suppress == "stop"
    assert sorted(fake.fake.ids()) == [1, 11]


def test_a_sender_killed_mid_sub_batch_leaves_it_uncertain_and_the_next_one_goes(
    sender_for: Any,
) -> None:
    """Every sub-batch it had and did not answer is uncertain (it reads ahead, so it may have
    started the one queued behind); a new sender takes the next sub-batch."""
    fake = FakeProviders(delay=0.2)
    with RunningFake(fake) as running:
        sender = sender_for(running.url)
        assert isinstance(sender.submit([email(1)]).result()[0], SendResult)
        child = sender.pid
        assert child is not None

        def kill(item: Received) -> None:
            os.kill(child, signal.SIGKILL)

        fake.on_request = kill
        on_the_wire = sender.submit([email(2), email(3)])
        queued = sender.submit([email(4), email(5)])
        assert all(isinstance(o, ProviderUncertain) for o in on_the_wire.result())
        assert all(isinstance(o, ProviderUncertain) for o in queued.result())
        fake.on_request = None
        fake.delay = 0
        again = sender.submit([email(6)]).result()
    assert isinstance(again[0], SendResult)
    assert sender.pid is not None and sender.pid != child
    assert fake.ids()[0] == 1 and fake.ids()[-1] == 6  # 2-5 may have gone out: uncertain


def test_a_sender_gone_before_the_hand_over_sent_nothing_so_it_may_retry(
    sender_for: Any,
) -> None:
    with RunningFake(FakeProviders()) as running:
        sender = sender_for(running.url)
        sender.submit([email(1)]).result()
        child = sender._child
        assert child is not None
        child.kill()
        child.wait()
        big = [email(n) for n in range(2, 400)]  # more than a socket buffer holds
        outcomes = sender.submit(big).result()
        assert all(isinstance(outcome, ProviderUnavailable) for outcome in outcomes)
        assert running.fake.ids() == [1]


def test_an_answer_the_sender_gave_before_it_died_still_counts(sender_for: Any) -> None:
    with RunningFake(FakeProviders()) as running:
        sender = sender_for(running.url)
        sender.submit([email(1)]).result()
        answered = sender.submit([email(2)])
        assert sender._pipe is not None
        assert sender._pipe.poll(10)  # its answer has come
        time.sleep(0.05)  # the whole of it (a few hundred bytes, written at once)
        child = sender._child
        assert child is not None
        child.kill()
        child.wait()
        refused = sender.submit([email(3)])
        assert isinstance(answered.result()[0], SendResult)  # not uncertain: it was answered
        assert isinstance(refused.result()[0], ProviderUnavailable)
        assert running.fake.ids() == [1, 2]


def test_a_killed_worker_takes_its_sender_with_it(tmp_path: Any) -> None:
    """kill -9 of the worker must not leave a sender running on its own (it sees its pipe
    closed and exits, long before its request could have been answered)."""
    with RunningFake(FakeProviders(delay=5)) as running:
        script = tmp_path / "worker.py"
        script.write_text(
            textwrap.dedent(
                f"""
                from providers.base import OutgoingEmail
                from providers.sendgrid import SendGridChannel
                from scheduler.sender_process import SenderProcess
                from scheduler.sending import Outgoing
                if __name__ == "__main__":
                    sender = SenderProcess(
                        {{"email": SendGridChannel("SG.test", {running.url!r})}}, {{"email": 4}}
                    )
                    payload = OutgoingEmail(1, "pat@example.com", "care@x.com", "C", "S", "", "")
                    pending = sender.submit([Outgoing(1, 1, 1, "email", 1, payload)])
                    print(sender.pid, flush=True)
                    pending.result()
                """
            )
        )
        worker = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
        )
        assert worker.stdout is not None
        child_pid = int(worker.stdout.readline())
        deadline = time.monotonic() + 20
        while not _connected(child_pid, running.port):  # its request is on the wire
            assert time.monotonic() < deadline, "the sender never reached the provider"
            time.sleep(0.05)
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 2  # well before its request could have been answered
        while time.monotonic() < deadline:
            try:
                if psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the sender outlived its worker")


def _connected(pid: int, port: int) -> bool:
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return any(c.raddr and c.raddr.port == port for c in connections)


@pytest.mark.parametrize("in_child", [True, False])
def test_the_dispatcher_sends_through_its_sender_process_unless_told_not_to(
    h: Any, provider_app: Any, fake: RunningFake, frozen_clock: Any, in_child: bool
) -> None:
    app = provider_app(scheduler={"sender_process": in_child, "batch_size": 100})
    ids = h.seed(app, emails=20, texts=20, due=frozen_clock())
    tally = app.dispatcher.tick()
    assert tally.sent == 40
    assert sorted(fake.fake.ids()) == sorted(ids)
    assert set(h.states(app).values()) == {"sent"}
    children = psutil.Process().children()
    sender = app.dispatcher.sender
    if in_child:
        assert sender is not None and sender.pid in {child.pid for child in children}
    else:
        assert sender is None


def test_the_worker_keeps_no_bodies_of_what_its_sender_has(
    h: Any, provider_app: Any, fake: RunningFake, frozen_clock: Any, monkeypatch: Any
) -> None:
    """Once handed over, the bodies live in the sender: what the worker records from keeps only
    the address (and a text's segments), and is recorded as before."""
    app = provider_app(scheduler={"batch_size": 100})
    ids = h.seed(app, emails=5, texts=5, due=frozen_clock())
    handed: dict[int, Any] = {}
    recorded: dict[int, Any] = {}
    record = app.dispatcher.recorder.record

    def spy(sent: list[tuple[Outgoing, Any]], tally: Any) -> None:
        recorded.update((item.message_id, item.payload) for item, _ in sent)
        record(sent, tally)

    def keep_a_copy(items: list[Outgoing]) -> Any:
        handed.update((item.message_id, item.payload) for item in items)
        return submit(items)

    submit = app.dispatcher.sender.submit
    monkeypatch.setattr(app.dispatcher.sender, "submit", keep_a_copy)
    monkeypatch.setattr(app.dispatcher.recorder, "record", spy)
    assert app.dispatcher.tick().sent == 10
    assert sorted(fake.fake.ids()) == sorted(recorded) == sorted(handed) == sorted(ids)
    for message_id, kept in recorded.items():
        full = handed[message_id]
        assert kept.to == full.to and kept.message_id == full.message_id
        if isinstance(full, OutgoingEmail):
            assert full.html and full.text and full.subject
            assert (kept.subject, kept.html, kept.text) == ("", "", "")
        else:
            assert full.body and kept.body == ""
            assert kept.segments == full.segments
    states = h.states(app)
    assert all(states[message_id] == "sent" for message_id in ids)


class Unimportable:
    """A channel from a module that exists only in this process (the child cannot load it)."""

    name = "unimportable"


def test_a_sender_that_cannot_start_sent_nothing_so_it_may_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_here = types.ModuleType("nurture_only_in_this_process")
    only_here.Unimportable = Unimportable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, only_here.__name__, only_here)
    monkeypatch.setattr(Unimportable, "__module__", only_here.__name__)
    sender = SenderProcess({"email": Unimportable()}, {"email": 4})
    try:
        outcomes = sender.submit([email(1), email(2)]).result()
    finally:
        sender.close()
    assert all(isinstance(outcome, ProviderUnavailable) for outcome in outcomes)
    assert sender._child is None


def test_close_waits_for_the_answers_of_what_was_handed_over(sender_for: Any) -> None:
    with RunningFake(FakeProviders(delay=0.3)) as running:
        sender = sender_for(running.url)
        first, second = sender.submit([email(1)]), sender.submit([email(2), email(3)])
        sender.close()
        assert [type(outcome) for outcome in first.result() + second.result()] == [SendResult] * 3
    assert sorted(running.fake.ids()) == [1, 2, 3]


def test_sigterm_to_the_whole_service_lets_the_sender_finish_its_calls(
    sender_for: Any,
) -> None:
    """systemd stops a service by signalling every process in it; the worker decides."""
    with RunningFake(FakeProviders(delay=0.5)) as running:
        sender = sender_for(running.url)
        sender.submit([email(1)]).result()
        pending = sender.submit([email(2)])
        assert sender.pid is not None
        os.kill(sender.pid, signal.SIGTERM)
        assert isinstance(pending.result()[0], SendResult)
        assert sender._child is not None and sender._child.poll() is None
