"""The ASGI app: tracked links, unsubscribe and preferences, provider webhooks, staff pages."""

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
