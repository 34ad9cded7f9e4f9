"""Email and SMS channels behind one small interface: SendGrid, Twilio and an offline outbox."""
