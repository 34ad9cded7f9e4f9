"""The public view of a request behind a reverse proxy.

Providers sign the URL *they* called (Twilio: the full public URL with its query string), which
is `web.public_base_url` plus the path, never what the socket saw. `X-Forwarded-For/Proto` are
believed only from `web.trusted_proxies` (uvicorn's own ProxyHeadersMiddleware does the parsing),
so nobody on the internet can pose as a proxy and choose their own client address.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def trust_proxies(api: Starlette, trusted_proxies: list[str]) -> None:
    """Believe forwarded headers only from the configured proxy addresses or CIDR ranges."""
    if trusted_proxies:
        api.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))


def public_url(request: Request, public_base_url: str) -> str:
    """The URL the provider called: configured base + path + the raw query string, if any."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = request.scope.get("path", "/")
    return f"{public_base_url.rstrip('/')}{path}" + (f"?{query}" if query else "")


def client_address(request: Request) -> str:
    """The caller's address (the real client when a trusted proxy said so)."""
    return request.client.host if request.client else "-"
