"""`nurture doctor` fails an install whose outbound webhooks may post to private addresses
(a setting for tests and local development: in production, SSRF into the clinic's network)."""

from __future__ import annotations

from pathlib import Path

from core.clock import FrozenClock
from core.settings import load_settings
from nurture.doctor import Check, Context, Verdict, run_checks, webhooks_post_to_public_addresses
from storage.db import make_engine

CHECK = (Check(webhooks_post_to_public_addresses, "webhooks.allow_private_addresses"),)


def _findings(tmp_path: Path, clock: FrozenClock, allow_private: bool) -> list[tuple[Verdict, str]]:
    settings = load_settings(
        database={"url": f"sqlite:///{tmp_path / 'doctor.db'}"},
        webhooks={"allow_private_addresses": allow_private},
    )
    engine = make_engine(settings.database.url)
    try:
        context = Context(settings, engine, clock)
        return [(found.verdict, found.line) for found in run_checks(context, CHECK)]
    finally:
        engine.dispose()


def test_private_webhook_addresses_fail_the_doctor(
    tmp_path: Path, frozen_clock: FrozenClock
) -> None:
    [(verdict, line)] = _findings(tmp_path, frozen_clock, allow_private=True)
    assert verdict is Verdict.FAIL
    assert "allow_private_addresses" in line and "false" in line


def test_the_default_adds_no_line(tmp_path: Path, frozen_clock: FrozenClock) -> None:
    assert _findings(tmp_path, frozen_clock, allow_private=False) == []
