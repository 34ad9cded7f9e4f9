"""GET /l/{token}: record the click, then 302 to the registered destination with UTM parameters.

The token names a message and a destination *key*; the URL comes from settings or the campaign's
snapshot, so no request can redirect anywhere else (no open redirect; listmonk does the same).
A message's campaign, step, contact and channel never change, so they are cached briefly, and
the clicks that arrive in one turn of the event loop look their messages up together, in one
statement (a flood of clicks costs a query per turn, not per click). The click row itself is
group-committed (web.group_commit: many clicks a transaction, through `record_clicks`), drained
on a clean shutdown. This is a plain FastAPI route behind the same middleware as every other
request (access log, body-size limit, proxy headers); for more clicks a second, run more worker
processes (`nurture web --workers N`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence as Rows
from datetime import datetime
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from contacts.bulk import bind_processor, insert_tuples
from storage.db import writer_turn
from storage.models import Base, Campaign, Event, Message
from storage.sql_lists import among
from templates.links import InvalidToken
from web.group_commit import GroupCommitter
from web.pages import not_found
from web.services import WebServices

CACHE_SECONDS = 60.0
# Entries are plain tuples of ints and strings, which CPython's cyclic GC stops tracking, so a
# full cache adds no garbage-collection pauses (those showed up as the click path's p99).
CACHE_ENTRIES = 50_000
USER_AGENT_MAX = 400
# Clicks gather this long before a commit. Nobody waits for them, and each commit rewrites every
# index page it touches (events has two indexes in random order: contact, message), so fewer,
# larger commits write several times less per click: in the bench's flood the click writer took
# 37% of a core at 50 ms, 13% at 250 ms, and the cores it frees serve requests. A clean shutdown
# drains the queue; a crash can lose at most this much.
CLICK_LINGER = 0.2
CLICK_BATCH_MAX = 20_000  # a linger's worth of clicks at 100,000 a second


def with_utm(url: str, *, medium: str, campaign: str, content: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_")]
    query += [
        ("utm_source", "nurture"),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
        ("utm_content", content),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


class Click(NamedTuple):
    """A click as the writer stores it. Queued as a plain tuple in this field order (see
    `LinkService.follow`): CPython stops tracking a tuple of ints, strings and datetimes in the
    cyclic GC, but never a NamedTuple subclass, and thousands queued at a time made every
    garbage collection longer (the click path's p99)."""

    at: datetime
    message_id: int
    contact_id: int
    campaign_id: int
    step_index: int
    channel: str
    user_agent: str
    destination: str


class _MessageFacts(NamedTuple):
    contact_id: int
    campaign_id: int
    step_index: int
    channel: str


_EVENTS = Base.metadata.tables[Event.__tablename__]
_MESSAGE = select(
    Message.id, Message.contact_id, Message.campaign_id, Message.step_index, Message.channel
)


class LinkService:
    """Turns a click token into a redirect target, and records clicks (group-committed)."""

    def __init__(self, nurture: WebServices) -> None:
        self.nurture = nurture
        self._messages: dict[int, tuple[float, tuple[int, int, int, str] | None]] = {}
        self._locations: dict[tuple[int, int, str, str], tuple[float, str | None]] = {}
        # Clicks waiting for their message's facts until the end of this turn of the loop.
        self._wanted: dict[int, list[asyncio.Future[_MessageFacts | None]]] = {}
        self.recorder: GroupCommitter[tuple[object, ...]] = GroupCommitter(
            "click-writer", self._write_clicks, linger=CLICK_LINGER, max_batch=CLICK_BATCH_MAX
        )

    async def follow(self, token: str, user_agent: str) -> str | None:
        """The redirect location for a valid click token (the click is queued), else None."""
        try:
            click = self.nurture.signer.read_click(token)
        except InvalidToken:
            return None
        facts = await self._message(click.message_id)
        if facts is None:
            return None
        location = self._location(facts, click.destination)
        if location is None:
            return None
        self.recorder.add(
            (  # a Click, as a plain tuple (see Click)
                self.nurture.clock(),
                click.message_id,
                facts.contact_id,
                facts.campaign_id,
                facts.step_index,
                facts.channel,
                user_agent[:USER_AGENT_MAX],
                click.destination,
            )
        )
        return location

    async def _message(self, message_id: int) -> _MessageFacts | None:
        cached = self._messages.get(message_id)
        if cached is not None and cached[0] > time.monotonic():
            return None if cached[1] is None else _MessageFacts(*cached[1])
        loop = asyncio.get_running_loop()
        if not self._wanted:
            # After every request already parsed this turn has asked (call_soon runs last).
            loop.call_soon(self._look_up_wanted)
        waiter: asyncio.Future[_MessageFacts | None] = loop.create_future()
        self._wanted.setdefault(message_id, []).append(waiter)
        return await waiter

    def _look_up_wanted(self) -> None:
        """One SELECT by primary key for every message this turn's clicks name."""
        wanted, self._wanted = self._wanted, {}
        engine = self.nurture.engine
        try:
            with engine.connect() as connection:
                found = connection.execute(
                    _MESSAGE.where(among(Message.id, wanted, engine.dialect.name))
                )
                rows = {row[0]: (row[1], row[2], row[3], row[4]) for row in found}
        except Exception as exc:
            for waiters in wanted.values():
                for waiter in waiters:
                    if not waiter.done():  # (a client that went away cancelled its own)
                        waiter.set_exception(exc)
            return
        expires = time.monotonic() + CACHE_SECONDS
        if len(self._messages) + len(wanted) >= CACHE_ENTRIES:
            self._messages.clear()
        for message_id, waiters in wanted.items():
            row = rows.get(message_id)
            self._messages[message_id] = (expires, row)
            facts = None if row is None else _MessageFacts(*row)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(facts)

    def _location(self, facts: _MessageFacts, destination: str) -> str | None:
        key = (facts.campaign_id, facts.step_index, facts.channel, destination)
        now = time.monotonic()
        cached = self._locations.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        location = self._build_location(facts, destination)
        if len(self._locations) >= CACHE_ENTRIES:
            self._locations.clear()
        self._locations[key] = (now + CACHE_SECONDS, location)
        return location

    def _build_location(self, facts: _MessageFacts, destination: str) -> str | None:
        with self.nurture.sessions() as session:
            campaign = session.get(Campaign, facts.campaign_id)
            if campaign is None:
                return None
            sequence = Sequence.from_snapshot(campaign.definition)
        target = self.nurture.composer.destinations(sequence).get(destination)
        if target is None or facts.step_index >= len(sequence.steps):
            return None
        step = sequence.steps[facts.step_index]
        location = with_utm(target, medium=facts.channel, campaign=campaign.name, content=step.name)
        # A Location header is ASCII: escape anything else a configured URL may contain.
        return quote(location, safe=":/?#[]@!$&'()*+,;=%~")

    def _write_clicks(self, clicks: Rows[tuple[object, ...]]) -> None:
        # In turn with the other server processes' writers (storage.db.writer_turn).
        with writer_turn(self.nurture.engine):
            record_clicks(self.nurture.engine, [Click._make(click) for click in clicks])


#: The columns a click fills, in the order of the rows record_clicks builds.
CLICK_COLUMNS = (
    "kind", "occurred_at", "message_id", "contact_id", "campaign_id", "step_index", "channel",
    "user_agent", "data",
)  # fmt: skip


def record_clicks(engine: Engine, clicks: Rows[Click]) -> None:
    """Store clicks as `clicked` events, in one transaction (the recorder's batch).

    Rows go to the driver as tuples, converted by the columns' own bind processors
    (contacts.bulk), not through SQLAlchemy's executemany: that spent three quarters of a batch
    in Python (11.5 ms of 660 clicks, 3 ms of it SQLite's), holding the GIL the server's event
    loop needs, and the clicks answered meanwhile waited: the click route's p99."""
    with Session(engine) as session, session.begin():
        at = bind_processor(session, _EVENTS.c.occurred_at)
        as_json = bind_processor(session, _EVENTS.c.data)
        data: dict[str, object] = {}  # a few destinations: each one's JSON made once
        rows = []
        for click in clicks:
            if click.destination not in data:
                data[click.destination] = as_json({"destination": click.destination})
            rows.append(
                ("clicked", at(click.at), click.message_id, click.contact_id, click.campaign_id,
                 click.step_index, click.channel, click.user_agent, data[click.destination])
            )  # fmt: skip
        insert_tuples(session, _EVENTS, CLICK_COLUMNS, rows)


def link_service(request: Request) -> LinkService:
    return request.app.state.links  # type: ignore[no-any-return]  # Starlette State is untyped


def token_parameter(description: str) -> dict[str, object]:
    """The `{token}` path parameter as OpenAPI documents it, for a route that reads it from
    `request.path_params` itself: FastAPI's validation of a declared `token: str` was a tenth
    of a click's CPU (solving the parameters, then checking a string is a string), for a value
    the signature check reads anyway. Schemathesis fuzzes the routes from this description."""
    return {
        "parameters": [
            {
                "name": "token",
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string", "title": "Token", "description": description},
            }
        ]
    }


async def follow_link(request: Request) -> Response:
    # `async`, with `follow` run on the event loop: its work is a signature check and a share of
    # one read by primary key per turn of the loop, less than the hop to the thread pool a plain
    # `def` route takes (measured: ~40% more CPU a click that way).
    token = request.path_params["token"]
    location = await link_service(request).follow(token, request.headers.get("user-agent") or "")
    if location is None:
        return not_found(request)
    return redirect(location)


def redirect(location: str) -> Response:
    return Response(
        status_code=302,
        headers={
            "Location": location,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


FOLLOW_DESCRIPTION = (
    "The signed token names one sent message and a destination *key*; the target URL comes "
    "from the clinic's settings or the campaign's snapshot, never from the request, so this "
    "is no open redirect. UTM parameters (source, medium = channel, campaign, content = step) "
    "are added. A tampered, unknown or expired token gets a friendly 404 page. Links stay "
    "valid for `web.link_ttl_days` (at least 30, CAN-SPAM)."
)


def install(api: FastAPI) -> None:
    """The click route, on the app's own router rather than through `include_router`: FastAPI
    matches an included router's routes a second time on every request that reaches one
    (about 13 µs a click)."""
    api.add_api_route(
        "/l/{token}",
        follow_link,
        methods=["GET"],
        tags=["links"],
        summary="Tracked link: record the click, redirect to a registered destination",
        description=FOLLOW_DESCRIPTION,
        response_class=Response,
        responses={
            302: {"description": "Redirect to the registered destination (Location header)"},
            404: {
                "description": "Friendly page: the link is not valid",
                "content": {"text/html": {}},
            },
        },
        status_code=302,
        openapi_extra=token_parameter("Signed click token"),
    )
