"""Outcomes recorded beside the dispatch (PostgreSQL) keep their order, their counts and their
failures; on SQLite they are recorded in the dispatching thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from providers.base import SendResult
from scheduler.outcomes import Tally
from scheduler.recording import Recorder, Sent
from scheduler.sending import Outgoing


def sub_batch(*ids: int) -> Sent:
    return [
        (Outgoing(i, i, 1, "email", 1, None), SendResult("fake", f"id-{i}", "queued"))  # type: ignore[arg-type]  # the payload plays no part here
        for i in ids
    ]


def test_with_overlap_a_sub_batch_is_recorded_after_the_one_before_it_and_off_the_caller() -> None:
    order: list[tuple[int, str]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def record(sent: Sent, tally: Tally) -> None:
        order.append((sent[0][0].message_id, threading.current_thread().name))
        if sent[0][0].message_id == 1:
            first_started.set()
            assert release_first.wait(5)
        tally.count("sent", n=len(sent))

    recorder = Recorder(record, overlap=True)
    tally = Tally()
    recorder.submit(sub_batch(1, 2), tally)  # returns while the first is still being written
    assert first_started.wait(5)
    second = threading.Thread(target=recorder.submit, args=(sub_batch(3), tally))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # the second waits for the first: one sub-batch at a time
    release_first.set()
    second.join(5)
    recorder.drain(tally)
    recorder.close()
    assert [message for message, _ in order] == [1, 3]
    assert all(thread != threading.current_thread().name for _, thread in order)
    assert tally.sent == 3


def test_a_failed_recording_is_raised_at_the_next_drain_and_logs_the_provider_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def record(sent: Sent, tally: Tally) -> None:
        raise RuntimeError("database went away")

    recorder = Recorder(record, overlap=True)
    recorder.submit(sub_batch(7), Tally())
    with caplog.at_level(logging.ERROR, logger="nurture.dispatch"):
        with pytest.raises(RuntimeError, match="database went away"):
            recorder.drain(Tally())
    recorder.close()
    assert "could not record the outcomes of 1 message(s)" in caplog.text
    assert "message 7" in caplog.text and "id-7" in caplog.text


def test_without_overlap_each_sub_batch_is_recorded_before_submit_returns() -> None:
    seen: list[Any] = []
    recorder = Recorder(lambda sent, tally: seen.append(threading.current_thread()), overlap=False)
    recorder.submit(sub_batch(1), Tally())
    assert seen == [threading.current_thread()]
    recorder.drain(Tally())  # nothing pending: returns at once
    recorder.close()
