"""Fixtures for the staff-account tests."""

from __future__ import annotations

import pytest

from staff import accounts


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters in tests only: the production cost is the point in production,
    and dozens of hashes at that cost would make this folder slow."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "hasher", PasswordHasher(time_cost=1, memory_cost=1024))
