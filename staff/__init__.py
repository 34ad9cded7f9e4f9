"""Staff accounts for the dashboard: who may sign in, with which role, and the lockout rules.

A domain package of its own (beside `contacts`), so the CLI and the web layer share one set of
rules and neither holds them.
"""
