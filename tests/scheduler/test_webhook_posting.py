"""How a webhook is posted (scheduler.webhook_post.post and the deliverer's batches): never to this
machine or a private network unless [webhooks] allow_private_addresses says so, to the address
that was checked, within one deadline all told, opt-outs first, and more than one batch a tick.
Every receiver here is on 127.0.0.1; other addresses are only looked up (a faked lookup) and
refused before any connection."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from contacts.optout import opt_out
from nurture.app import NurtureApp
from scheduler.webhook_post import NO_HTTP, NOT_PUBLIC, TIMED_OUT, post
from scheduler.webhooks import POST_BATCH, Deliverer
from staff.webhook_endpoints import queue_test, register
from storage.db import transaction
from storage.models import Contact, Event, WebhookDelivery, WebhookEndpoint
from tests.scheduler.webhook_receiver import Receiver, receiver

HEADERS = {"Content-Type": "application/json"}
REAL_LOOKUP = socket.getaddrinfo


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def _lookup(names: dict[str, list[str]], asked: list[str] | None = None) -> Callable[..., Any]:
    """getaddrinfo answering `names` with the given addresses (others as the system does)."""

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in names:
            return REAL_LOOKUP(host, port, *args, **kwargs)
        if asked is not None:
            asked.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (a, port, 0, 0) if ":" in a else (a, port))
            for a in names[host]
        ]  # fmt: skip

    return fake


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.2:8000/admin/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/",
        "https://[::1]:9200/",
        "https://localhost:6379/",
        "https://[::ffff:127.0.0.1]:6379/",
    ],
)
def test_a_post_to_a_private_address_is_refused_before_connecting(url: str) -> None:
    started = time.monotonic()
    answer = post(url, b"{}", HEADERS, 5, allow_private=False)
    assert (answer.status, answer.error) == (None, NOT_PUBLIC)
    assert time.monotonic() - started < 1  # never connected (10.0.0.5 would time out)


def test_plain_http_is_refused_unless_the_setting_allows_it(hook: Receiver) -> None:
    assert post(hook.url, b"{}", HEADERS, 5, allow_private=False).status is None
    assert hook.requests == []
    assert post("http://localhost:6379/", b"{}", HEADERS, 5, allow_private=False).status is None
    assert post(hook.url, b"{}", HEADERS, 5, allow_private=True).status == 200


def test_a_name_that_looks_up_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        _lookup({"crm.example.test": ["10.0.0.5"], "mixed.example.test": ["93.184.215.14",
                                                                          "127.0.0.1"]}),
    )  # fmt: skip
    for host in ("crm.example.test", "mixed.example.test"):
        answer = post(f"https://{host}/hook", b"{}", HEADERS, 5, allow_private=False)
        assert answer.error == NOT_PUBLIC and answer.detail and host in answer.detail


def test_the_connection_goes_to_the_address_checked_with_the_name_as_host(
    hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup: a second (DNS rebinding) could answer an address never checked."""
    port = hook.url.split(":")[2].split("/")[0]
    asked: list[str] = []
    monkeypatch.setattr(
        socket, "getaddrinfo", _lookup({"hooks.example.test": ["127.0.0.1"]}, asked)
    )
    url = f"http://hooks.example.test:{port}/hooks/nurture?k=1"
    answer = post(url, b'{"a":1}', HEADERS, 5, allow_private=True)
    assert answer.status == 200 and asked == ["hooks.example.test"]
    [got] = hook.requests
    assert got.headers["Host"] == f"hooks.example.test:{port}"
    assert got.path == "/hooks/nurture?k=1" and got.body == b'{"a":1}'


@contextmanager
def _raw_receiver(answer: Callable[[socket.socket], object]) -> Iterator[str]:
    """A receiver that reads the request's first bytes, then answers as `answer` does."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                try:
                    answer(connection)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(10)
        server.close()


def test_a_receiver_that_trickles_is_cut_off_at_the_deadline() -> None:
    """Each read gets what is left of one deadline: a byte every 0.3 s (each read well within
    a per-read timeout) does not hold a poster past the lease while another worker re-posts."""

    def trickle(connection: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            connection.sendall(bytes([byte]))
            time.sleep(0.3)

    with _raw_receiver(trickle) as url:
        started = time.monotonic()
        answer = post(url, b"{}", HEADERS, 1.0, allow_private=True)
        took = time.monotonic() - started
    assert (answer.status, answer.error) == (None, TIMED_OUT)
    assert took < 2


def test_a_receiver_that_never_answers_times_out_and_one_that_babbles_is_read_no_further() -> None:
    with _raw_receiver(lambda connection: connection.recv(1)) as url:  # until we hang up
        started = time.monotonic()
        assert post(url, b"{}", HEADERS, 0.5, allow_private=True).error == TIMED_OUT
        assert time.monotonic() - started < 1.5
    with _raw_receiver(lambda connection: connection.sendall(b"x" * 1_000_000)) as url:
        assert post(url, b"{}", HEADERS, 5, allow_private=True).error == NO_HTTP
    with _raw_receiver(lambda connection: connection.sendall(b"HTTP/1.1 204 \r\n\r\n")) as url:
        assert post(url, b"{}", HEADERS, 5, allow_private=True).status == 204


def test_the_deliverer_refuses_a_private_address_and_says_only_that(
    nurture_app: NurtureApp, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint stored while the setting allowed it (or whose name now looks up to a
    private address) is refused at each post: staff see the rule, the log the host."""
    port = hook.url.split(":")[2].split("/")[0]
    with transaction(nurture_app.sessions) as session:
        made = register(session, url=f"https://localhost:{port}/hooks/nurture?token=abc",
                        event_types=["contact.opted_out"], created_by="t",
                        at=nurture_app.clock(), allow_private=True)  # fmt: skip
        queue_test(session, made.id, at=nurture_app.clock())
    with caplog.at_level("WARNING", logger="nurture.webhooks"):
        result = Deliverer(nurture_app.sessions, nurture_app.clock).tick()
    assert result.failed == 1 and hook.requests == []
    with transaction(nurture_app.sessions, immediate=False) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.last_error == NOT_PUBLIC
        endpoint = session.get_one(WebhookEndpoint, made.id)
        assert endpoint.last_status == f"failing, retrying ({NOT_PUBLIC})"
    assert "localhost" in caplog.text and "token" not in caplog.text and "/hooks" not in caplog.text


def _deliverer(app: NurtureApp, **options: Any) -> Deliverer:
    return Deliverer(app.sessions, app.clock, allow_private=True, **options)


def test_an_opt_out_is_posted_before_older_message_events(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    """A launch makes a `message.delivered` per person; an opt-out must not wait behind them."""
    with transaction(nurture_app.sessions) as session:
        register(session, url=hook.url, created_by="t", at=nurture_app.clock(),
                 event_types=["contact.opted_out", "message.delivered"],
                 allow_private=True)  # fmt: skip
    contact = make_contact(email="pat@example.com")
    with transaction(nurture_app.sessions) as session:
        session.add_all(
            Event(kind="delivered", channel="email", contact_id=contact,
                  occurred_at=nurture_app.clock())
            for _ in range(POST_BATCH + 5)
        )  # fmt: skip
    deliverer = _deliverer(nurture_app)
    assert deliverer.hand_out() == POST_BATCH + 5
    nurture_app.clock.advance(minutes=1)
    with transaction(nurture_app.sessions) as session:
        opt_out(session, session.get_one(Contact, contact), "email", reason="stop",
                source="test", at=nurture_app.clock())  # fmt: skip
    assert deliverer.hand_out() == 1
    batch = deliverer.deliver_due()  # one batch: the most urgent
    assert len(batch) == POST_BATCH and all(outcome.ok for outcome in batch)
    assert batch[0].attempt.event_type == "contact.opted_out"
    types = [json.loads(r.body)["type"] for r in hook.requests]
    assert (
        types.count("contact.opted_out") == 1 and types.count("message.delivered") == POST_BATCH - 1
    )
    with transaction(nurture_app.sessions, immediate=False) as session:
        waiting = select(WebhookDelivery).where(WebhookDelivery.next_attempt_at.is_not(None))
        assert {d.event_type for d in session.scalars(waiting)} == {"message.delivered"}


def test_a_tick_goes_on_past_one_batch_while_deliveries_are_due(
    nurture_app: NurtureApp, hook: Receiver
) -> None:
    with transaction(nurture_app.sessions) as session:
        made = register(session, url=hook.url, event_types=["contact.opted_out"],
                        created_by="t", at=nurture_app.clock(), allow_private=True)  # fmt: skip
        for _ in range(2 * POST_BATCH + 5):
            queue_test(session, made.id, at=nurture_app.clock())
    started = time.monotonic()
    result = _deliverer(nurture_app, budget=30).tick()  # a budget no machine spends here
    assert result.delivered == 2 * POST_BATCH + 5 > 20 and len(hook.requests) == result.delivered
    assert time.monotonic() - started < 10
    assert _deliverer(nurture_app, budget=30).tick().delivered == 0


def test_a_tick_stops_taking_batches_when_its_budget_is_spent(
    nurture_app: NurtureApp, hook: Receiver
) -> None:
    with transaction(nurture_app.sessions) as session:
        made = register(session, url=hook.url, event_types=["contact.opted_out"],
                        created_by="t", at=nurture_app.clock(), allow_private=True)  # fmt: skip
        for _ in range(POST_BATCH + 1):
            queue_test(session, made.id, at=nurture_app.clock())
    deliverer = _deliverer(nurture_app, budget=0)
    assert deliverer.tick().delivered == POST_BATCH  # the batch it was in always finishes
    nurture_app.clock.advance(seconds=1)
    assert deliverer.tick().delivered == 1


def test_a_tick_hands_out_batch_after_batch_so_an_opt_out_is_not_left_behind(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    """A launch's delivered events come in faster than one hand-out batch a tick; an opt-out
    after them must become a delivery in the same tick, to be posted first."""
    from scheduler.webhooks import HAND_OUT_BATCH

    with transaction(nurture_app.sessions) as session:
        register(session, url="https://crm.example.com/h", created_by="t", at=nurture_app.clock(),
                 event_types=["contact.opted_out", "message.delivered"])  # fmt: skip
    contact = make_contact(email="pat@example.com")
    with transaction(nurture_app.sessions) as session:
        session.add_all(
            Event(kind="delivered", channel="email", contact_id=contact,
                  occurred_at=nurture_app.clock())
            for _ in range(2 * HAND_OUT_BATCH)
        )  # fmt: skip
        opt_out(session, session.get_one(Contact, contact), "email", reason="stop",
                source="test", at=nurture_app.clock())  # fmt: skip
    deliverer = _deliverer(nurture_app)
    assert deliverer.hand_out() == HAND_OUT_BATCH  # no budget: one batch
    assert deliverer.hand_out(time.monotonic() + 30) == HAND_OUT_BATCH + 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        kinds = [d.event_type for d in session.scalars(select(WebhookDelivery))]
        assert kinds.count("contact.opted_out") == 1 and len(kinds) == 2 * HAND_OUT_BATCH + 1
