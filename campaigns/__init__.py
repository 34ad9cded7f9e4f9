"""Sequence definitions (TOML files staff can read), validation, audiences, enrollment, reports."""

from pathlib import Path

CAMPAIGNS_DIR = Path(__file__).resolve().parent
#: Where `nurture campaigns preview` writes its HTML files, by default.
PREVIEW_DIR = Path("var/previews")
