"""Helpers for content and validation tests: a copy of the real templates to break on purpose,
and a way to run validation against it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from campaigns.definitions import Sequence, load_sequence
from campaigns.validation import ValidationReport, validate_sequence
from core.settings import Settings, load_settings
from templates import TEMPLATES_DIR
from templates.renderer import TemplateRenderer


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def content_root(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


@pytest.fixture
def edit(content_root: Path) -> Callable[[str, str, str], None]:
    """edit("layouts/sms.txt", old, new): change one template of the copy."""

    def change(name: str, old: str, new: str) -> None:
        path = content_root / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return change


@pytest.fixture
def check(content_root: Path, settings: Settings) -> Callable[..., ValidationReport]:
    """check(sequence=None) validates (default: spasm-relief) against the copied templates."""

    def run(sequence: Sequence | None = None) -> ValidationReport:
        sequence = sequence or load_sequence("spasm-relief")
        return validate_sequence(sequence, settings, TemplateRenderer(content_root))

    return run


def with_step(sequence: Sequence, index: int, **update: Any) -> Sequence:
    """A copy of the sequence with one step changed (validated again, like a loaded file)."""
    data = sequence.snapshot()
    data["steps"][index].update(update)
    return Sequence.model_validate(data)


@pytest.fixture
def spasm_relief() -> Sequence:
    return load_sequence("spasm-relief")


@pytest.fixture
def step_changed() -> Callable[..., Sequence]:
    return with_step
