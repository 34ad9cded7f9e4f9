"""A scratch template root per test, so a test can write templates without touching the repo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from templates.renderer import TemplateRenderer

CONTEXT: dict[str, Any] = {
    "contact": {"first_name": "Maria", "last_name": "Lopez"},
    "clinic": {
        "name": "Spinal Decompression LA",
        "phone": "888-20-DECOM",
        "postal_address": "1234 Wilshire Blvd, Los Angeles, CA 90017",
        "website": "https://spinaldecompressionla.com",
    },
    "booking_link": lambda destination="booking": f"https://x.test/l/{destination}",
    "link": lambda destination="booking": f"https://x.test/l/{destination}",
    "unsubscribe_url": "https://x.test/u/t",
    "preferences_url": "https://x.test/p/t",
    "reason": "you asked us",
    "step": "welcome",
}


@pytest.fixture
def scratch(tmp_path: Path) -> Callable[..., TemplateRenderer]:
    """scratch(**{"seq/name.sms.txt": "..."}) -> a renderer rooted in a folder with those files."""

    def make(**files: str) -> TemplateRenderer:
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return TemplateRenderer(tmp_path)

    return make


@pytest.fixture
def context() -> dict[str, Any]:
    return dict(CONTEXT)
