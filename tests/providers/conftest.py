"""The provider mocks (Prism, from the official OpenAPI specs) for contract tests, started once
per session from ../shared/providers/mock-providers (tests/conftest.py's mock_provider_urls,
which `nurture doctor`'s tests share)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def provider_mocks(mock_provider_urls: dict[str, str]) -> dict[str, str]:
    """{"sendgrid": URL, "twilio": URL}; skips (only the contract tests) without shared/."""
    return {
        "sendgrid": mock_provider_urls["SENDGRID_MOCK_URL"],
        "twilio": mock_provider_urls["TWILIO_MOCK_URL"],
    }
