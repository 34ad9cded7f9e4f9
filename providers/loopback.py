"""Test base URLs for the providers are accepted only on loopback (the contract-test mocks)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from core.errors import ConfigError


def require_loopback(url: str, key: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"setting {key}: only a loopback test URL is allowed, got {url!r}")
    return url.rstrip("/")
