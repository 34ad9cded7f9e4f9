"""send_all's signal that every call of a sub-batch has begun (the dispatcher's unqueued mode
hands the next sub-batch over only then)."""

from __future__ import annotations

import asyncio
from typing import Any

from providers.base import OutgoingEmail, SendResult
from scheduler.sending import Outgoing, SendLoop, send_all


def email(message_id: int) -> Outgoing:
    payload = OutgoingEmail(message_id, f"pat{message_id}@example.com", "c@x.org", "C", "S", "", "")
    return Outgoing(message_id, message_id, 1, "email", 1, payload)


class HeldChannel:
    """A provider whose calls each wait until the test lets them answer."""

    name = "held"
    rate_bucket = None
    concurrency = 4

    def __init__(self) -> None:
        self.calls: list[asyncio.Future[None]] = []

    async def send(self, message: OutgoingEmail) -> SendResult:
        answer = asyncio.get_running_loop().create_future()
        self.calls.append(answer)
        await answer
        return SendResult("held", str(message.message_id))

    async def aclose(self) -> None:
        pass


def test_started_comes_once_the_last_call_has_a_connection_and_before_the_answers() -> None:
    async def scenario() -> list[Any]:
        channel, started = HeldChannel(), asyncio.Event()
        sending = asyncio.create_task(
            send_all(
                [email(n) for n in range(1, 9)], {"email": channel}, {"email": 4}, None, started.set
            )
        )
        await asyncio.sleep(0.01)
        assert len(channel.calls) == 4 and not started.is_set()  # four wait for a connection
        for answered in range(3):
            channel.calls[answered].set_result(None)
            await asyncio.sleep(0.01)
        assert len(channel.calls) == 7 and not started.is_set()  # the eighth still waits
        channel.calls[3].set_result(None)
        await asyncio.sleep(0.01)
        assert len(channel.calls) == 8 and started.is_set() and not sending.done()
        for call in channel.calls[4:]:
            call.set_result(None)
        return await sending

    outcomes = asyncio.run(scenario())
    assert [outcome.provider_message_id for outcome in outcomes] == [str(n) for n in range(1, 9)]


def test_started_comes_for_nothing_to_send_and_when_the_calls_end_early() -> None:
    async def scenario() -> tuple[int, int]:
        told: list[str] = []
        await send_all([], {}, {"email": 4}, None, lambda: told.append("empty"))
        channel = HeldChannel()
        sending = asyncio.create_task(
            send_all(
                [email(n) for n in range(1, 9)],
                {"email": channel},
                {"email": 4},
                None,
                lambda: told.append("cancelled"),
            )
        )
        await asyncio.sleep(0.01)
        sending.cancel()  # four calls never had a connection
        await asyncio.gather(sending, return_exceptions=True)
        return told.count("empty"), told.count("cancelled")

    assert asyncio.run(scenario()) == (1, 1)


def test_the_send_loop_waits_for_the_start_then_the_answers() -> None:
    loop, channel = SendLoop(), HeldChannel()
    try:
        pending = loop.send([email(1), email(2)], {"email": channel}, {"email": 4})
        pending.wait_started()  # both calls have a connection: returns although none answered
        assert not any(call.done() for call in channel.calls)
        for call in list(channel.calls):
            loop.submit(_answer(call)).result()
        assert [outcome.provider_message_id for outcome in pending.result()] == ["1", "2"]
    finally:
        loop.close()


async def _answer(call: asyncio.Future[None]) -> None:
    call.set_result(None)
