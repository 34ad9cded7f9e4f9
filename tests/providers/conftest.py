"""The provider mocks (Prism, from the official OpenAPI specs) for contract tests, started once
per session from ../shared/providers/mock-providers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from core.settings import REPO_ROOT

MOCKS = REPO_ROOT.parent / "shared" / "providers" / "mock-providers"


@pytest.fixture(scope="session")
def provider_mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """{"sendgrid": URL, "twilio": URL}; skips (only the contract tests) without shared/."""
    if not MOCKS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{MOCKS} must exist under CI (the contract tests need it)")
        pytest.skip(f"provider mocks not found at {MOCKS} (a clone without ../shared)")
    state = tmp_path_factory.mktemp("provider-mocks")
    started = subprocess.run(
        ["bash", str(MOCKS), "start", str(state)], capture_output=True, text=True, timeout=300
    )
    if started.returncode != 0:
        pytest.fail(f"mock-providers start failed: {started.stderr[-2000:]}")
    urls = dict(
        line.split("=", 1)
        for line in started.stdout.splitlines()
        if line.endswith(tuple("0123456789"))
    )
    try:
        yield {"sendgrid": urls["SENDGRID_MOCK_URL"], "twilio": urls["TWILIO_MOCK_URL"]}
    finally:
        subprocess.run(["bash", str(MOCKS), "stop", str(state)], capture_output=True, timeout=60)
