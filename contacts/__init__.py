"""Contacts, the consent ledger, the suppression list, and CSV import/export."""
