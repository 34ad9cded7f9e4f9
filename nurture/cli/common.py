"""What every command shares: the console, building the app, and a ready database."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

from core import redact
from core.errors import ConfigError
from core.settings import load_settings
from nurture.app import NurtureApp

console = Console()
err_console = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    """Logs on stderr: rich text for people, or JSON lines with `[log] format = "json"`."""
    level = (
        logging.DEBUG if verbose else getattr(logging, os.environ.get("NURTURE_LOG_LEVEL", "INFO"))
    )
    handler: logging.Handler
    if _log_format() == "json":
        from nurture.cli.logs import JsonLines, Stderr

        handler = Stderr()
        handler.setFormatter(JsonLines())
    else:
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    redact.install()  # no full email address or phone number in any log line
    for noisy in ("alembic", "apscheduler", "uvicorn.access", "twilio.http_client", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _log_format() -> str:
    """The configured format; settings that do not load give text logs here, and the command
    that loads them reports what is wrong (nurture.cli.main maps the ConfigError)."""
    try:
        return load_settings().log.format
    except ConfigError:
        return "text"


def ready_app() -> NurtureApp:
    """Settings loaded and validated, database migrated to the newest schema."""
    app = NurtureApp(settings=load_settings())
    app.migrate()
    return app
