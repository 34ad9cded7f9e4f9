"""`nurture worker`, `nurture web` and `nurture run`: the long-running processes."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import typer

from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app

if TYPE_CHECKING:
    import uvicorn


def serve_web(nurture: NurtureApp, host: str, port: int) -> uvicorn.Server:
    # Imported here, not at the top: the worker process stays lean, it loads only what it runs.
    import uvicorn

    from web.app import create_app
    from web.recipient_protocol import server_options

    app = create_app(nurture)
    config = uvicorn.Config(
        app,
        **server_options(app),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return uvicorn.Server(config)


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
) -> None:
    """Run the web server only: links, unsubscribe, webhooks, staff pages."""
    nurture = ready_app()
    server = serve_web(
        nurture, host or nurture.settings.web.host, port or nurture.settings.web.port
    )
    server.run()


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
