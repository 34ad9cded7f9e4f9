"""Sequence definitions (TOML files staff can read), validation, audiences, enrollment, reports."""

from pathlib import Path

CAMPAIGNS_DIR = Path(__file__).resolve().parent
