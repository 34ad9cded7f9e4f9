"""Nurture: email and SMS nurture sequences for Spinal Decompression LA (the app shell)."""

__version__ = "0.1.0"
