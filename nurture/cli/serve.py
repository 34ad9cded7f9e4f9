"""`nurture worker`, `nurture web` and `nurture run`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

import typer

from core import redact
from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app, setup_logging

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

# uvicorn's settings for our app, whatever the number of processes: its own access log is off
# (web.access_log writes ours, without the tokens in the paths), and so are its proxy headers
# (web.proxy believes them only from `web.trusted_proxies`).
SERVER_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
}


def plain_access_log(json: bool = False) -> None:
    """The access log (web.access_log: a line a request) through a plain stream handler of its
    own instead of the console's Rich one, which renders each record at about twice the CPU
    cost of the request it describes. Same stream (stderr), same level, addresses redacted;
    lines written in batches, a quarter of a second late at most (web.access_log.BufferedLines:
    a write a line was a fifth of a click's CPU). With `[log] format = "json"`, the lines are
    JSON objects like every other line (nurture.cli.logs.JsonLines)."""
    from nurture.cli.logs import JsonLines
    from web.access_log import BufferedLines, SecondsCachedFormatter

    access = logging.getLogger("nurture.web.access")
    if access.handlers:
        return
    handler = BufferedLines()
    handler.setFormatter(
        JsonLines()
        if json
        else SecondsCachedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    access.addHandler(handler)
    access.propagate = False
    redact.install(access)


def serve_web(nurture: NurtureApp, host: str, port: int) -> uvicorn.Server:
    """The web server in this process (`nurture run`, the demo, `nurture web --workers 1`)."""
    # Imported here, not at the top: the worker process stays lean, it loads only what it runs.
    import uvicorn

    from web.app import create_app

    plain_access_log(nurture.settings.log.format == "json")
    config = uvicorn.Config(create_app(nurture), host=host, port=port, **SERVER_OPTIONS)
    return uvicorn.Server(config)


def web_app() -> FastAPI:
    """The app of one of `nurture web --workers N`'s processes (uvicorn calls this factory in
    each; the parent has already migrated the database)."""
    from core.settings import load_settings
    from web.app import create_app

    setup_logging()
    settings = load_settings()
    plain_access_log(settings.log.format == "json")
    return create_app(NurtureApp(settings=settings))


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def worker() -> None:
    """Run the scheduler only: plan, dispatch and recover on every tick."""
    nurture = ready_app()
    clock = nurture.engine_clock()
    clock.start()
    tick = nurture.settings.scheduler.tick_seconds
    console.print(f"Worker {nurture.dispatcher.worker} ticking every {tick:g}s; Ctrl-C stops")
    try:
        wait_for_signal()
    finally:
        clock.stop()


def web(
    host: str | None = typer.Option(None, help="Address to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
    workers: int = typer.Option(
        1,
        min=1,
        help="Server processes sharing the port (uvicorn's own workers): more requests a second "
        "on more cores. Each has its own group-commit writers; the database is shared.",
    ),
) -> None:
    """Run the web server only: links, unsubscribe, webhooks, staff pages."""
    nurture = ready_app()
    host, port = host or nurture.settings.web.host, port or nurture.settings.web.port
    if workers == 1:
        serve_web(nurture, host, port).run()
        return
    import uvicorn

    nurture.secret_key  # noqa: B018  (on the SQLite default, made once here, not by each worker)
    nurture.dispose()  # each worker process opens its own connections
    uvicorn.run(
        f"{__name__}:web_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,  # each worker's logging is ours (web_app), not uvicorn's dictConfig
        # A new process must answer the supervisor's first ping within this; its default (5 s)
        # restarted workers over and over on a busy 2-core machine, before they had imported.
        timeout_worker_healthcheck=30,
        **SERVER_OPTIONS,
    )


def run(
    host: str | None = typer.Option(None, help="Address to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
) -> None:
    """Run the scheduler and the web server together."""
    nurture = ready_app()
    clock = nurture.engine_clock()
    clock.start()
    server = serve_web(
        nurture, host or nurture.settings.web.host, port or nurture.settings.web.port
    )
    try:
        server.run()
    finally:
        clock.stop()
