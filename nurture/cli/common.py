"""What every command shares: the console, building the app, and a ready database."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

from core import redact
from core.settings import load_settings
from nurture.app import NurtureApp

console = Console()
err_console = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    level = (
        logging.DEBUG if verbose else getattr(logging, os.environ.get("NURTURE_LOG_LEVEL", "INFO"))
    )
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    redact.install()  # no full email address or phone number in any log line
    for noisy in ("alembic", "apscheduler", "uvicorn.access", "twilio.http_client", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def ready_app() -> NurtureApp:
    """Settings loaded and validated, database migrated to the newest schema."""
    app = NurtureApp(settings=load_settings())
    app.migrate()
    return app
