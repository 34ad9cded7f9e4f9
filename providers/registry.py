"""Picks the email and SMS providers named in settings."""

from __future__ import annotations

from core.settings import Settings
from providers.base import EmailProvider, SmsProvider
from providers.outbox import OutboxChannel


def email_channel(settings: Settings) -> EmailProvider:
    if settings.email.provider == "sendgrid":
        from providers.sendgrid import SendGridChannel

        return SendGridChannel(
            settings.secrets.sendgrid_api_key,
            settings.sendgrid.api_host,
            concurrency=settings.sendgrid.concurrency,
        )
    return OutboxChannel(settings.outbox.dir)


def sms_channel(settings: Settings) -> SmsProvider:
    if settings.sms.provider == "twilio":
        from providers.twilio import TwilioChannel

        return TwilioChannel(
            settings.secrets.twilio_account_sid,
            settings.secrets.twilio_auth_token,
            api_base_url=settings.twilio.api_base_url,
            concurrency=settings.twilio.concurrency,
            sender=settings.sms.messaging_service_sid or settings.sms.from_number,
        )
    return OutboxChannel(settings.outbox.dir)
