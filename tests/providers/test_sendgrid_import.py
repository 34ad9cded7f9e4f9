"""The SendGrid SDK without its event-webhook helper, as the sender process imports it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from core.settings import REPO_ROOT


def run(*parts: str) -> str:
    """The parts, one after the other, in a fresh interpreter (what they import must not leak
    into this one); what they printed."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_left_out_the_sdk_still_builds_the_same_payload_without_cryptography() -> None:
    build = """
        from providers.base import OutgoingEmail
        from providers.sendgrid import build_mail
        email = OutgoingEmail(
            message_id=7, to="pat@example.com", from_email="care@example.com",
            from_name="Clinic", subject="Hello", html="<p>Hi</p>", text="Hi",
            headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            custom_args={"nurture_message_id": "7"},
        )
        print(json.dumps(build_mail(email).get(), sort_keys=True))
    """
    whole = run("import json", build)
    lean = run(
        """
        import json, sys
        from providers.sendgrid import leave_out_webhook_helper
        assert leave_out_webhook_helper() is True
        """,
        build,
        """
        assert "cryptography" not in sys.modules, "the webhook helper was imported"
        """,
    )
    assert lean == whole
    assert '"nurture_message_id": "7"' in lean


def test_once_the_sdk_is_imported_nothing_is_left_out() -> None:
    out = run(
        """
        import sendgrid
        from providers.sendgrid import leave_out_webhook_helper
        print(leave_out_webhook_helper())
        from sendgrid.helpers.eventwebhook import EventWebhook
        print(EventWebhook.__name__)
        """
    )
    assert out.splitlines() == ["False", "EventWebhook"]
