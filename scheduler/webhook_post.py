"""One webhook post: https to a public address, within one deadline all told.

Server-side request forgery: an editor's URL must not reach what only the clinic's network can
(Redis on localhost, an admin port, the cloud's metadata service at 169.254.169.254). The URL is
checked when registered (staff.webhook_endpoints.check_url), and again here, where it counts:
the host is looked up once, every address it has must be public (is_public), and the
connection goes to an address checked, with the name in the Host header and in TLS's SNI and
certificate check, so a second lookup answering 127.0.0.1 (DNS rebinding) is never made.
`allow_private` ([webhooks] allow_private_addresses: tests, local development) lifts the rule
and allows plain http.

A receiver that trickles its answer a byte at a time must not hold a poster past the claim's
lease (another worker would post again): each socket call gets what is left of one deadline,
and only the status line is read. CPython bounds a TLS handshake and a sendall by the socket's
timeout as a whole. The lookup is bounded by the resolver's own timeouts.

Staff see a fixed phrase when there was no answer, never an exception's text, which would tell
an open port from a closed one; `detail` is for the log.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from staff.webhook_endpoints import is_public

#: The status line is all a delivery needs of the answer; at most this much of it is read.
STATUS_LINE_MAX = 1024
#: What staff see when a post got no answer: fixed phrases, so the page is no port scanner.
COULD_NOT_CONNECT = "could not connect"
TIMED_OUT = "timed out"
NOT_PUBLIC = "refused: not a public address"
NO_HTTP = "no HTTP answer"
BAD_URL = "refused: not a valid https URL"
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9][0-9])[ \r]")
_TLS = ssl.create_default_context()


@dataclass(frozen=True)
class Answer:
    status: int | None
    error: str | None = None
    detail: str | None = None


class _NoHttp(Exception):
    pass


def post(
    url: str, body: bytes, headers: dict[str, str], deadline: float, *, allow_private: bool
) -> Answer:
    """POST once, following no redirect, within `deadline` seconds all told (each socket call
    is given what is left of it): the status, or why there was none (`error` for staff,
    `detail` for the log). The lookup itself is bounded by the resolver's own timeouts."""
    parts = urlsplit(url)
    host, https = parts.hostname or "", parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not host or not (https or allow_private) or re.search(r"[^!-~]", target + host):
        return Answer(None, BAD_URL, "not an https URL with a host and a clean path")
    port = parts.port or (443 if https else 80)
    until = time.monotonic() + deadline
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Answer(None, COULD_NOT_CONNECT, f"lookup failed: {type(exc).__name__}: {exc}")
    if not allow_private:
        refused = [a[4][0] for a in addresses if not _public(str(a[4][0]))]
        if refused:
            return Answer(None, NOT_PUBLIC, f"{host} has the address {refused[0]}")
    request = _request(host, parts.port, target, body, headers)
    try:
        connection = _connect(addresses, until)
        try:
            if https:
                connection.settimeout(_left(until))  # CPython: the whole handshake's limit
                connection = _TLS.wrap_socket(connection, server_hostname=host)
            connection.settimeout(_left(until))  # sendall: the whole send's limit
            connection.sendall(request)
            return Answer(_status(connection, until))
        finally:
            connection.close()
    except TimeoutError as exc:
        return Answer(None, TIMED_OUT, f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # refused, reset, unreachable, TLS and certificate failures
        return Answer(None, COULD_NOT_CONNECT, f"{type(exc).__name__}: {exc}")
    except _NoHttp as exc:
        return Answer(None, NO_HTTP, f"the answer began {exc}")


def _public(address: str) -> bool:
    try:
        return is_public(ip_address(address))
    except ValueError:  # a scoped IPv6 address (fe80::1%eth0): link-local anyway
        return False


def _left(until: float) -> float:
    left = until - time.monotonic()
    if left <= 0:
        raise TimeoutError("the post's deadline passed")
    return left


def _request(
    host: str, port: int | None, target: str, body: bytes, headers: dict[str, str]
) -> bytes:
    name = f"[{host}]" if ":" in host else host
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {name}" + (f":{port}" if port else ""),
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{key}: {value}" for key, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _connect(addresses: list[tuple], until: float) -> socket.socket:
    """A connection to the first of the checked addresses that answers, never a new lookup."""
    failure: OSError = OSError("no address")
    for family, kind, protocol, _, address in addresses:
        connection = socket.socket(family, kind, protocol)
        try:
            connection.settimeout(_left(until))
            connection.connect(address)
            return connection
        except OSError as exc:
            connection.close()
            failure = exc
            if isinstance(exc, TimeoutError):
                break
    raise failure


def _status(connection: socket.socket, until: float) -> int:
    """The status code from the answer's first line, reading at most STATUS_LINE_MAX bytes."""
    got = b""
    while b"\n" not in got and len(got) < STATUS_LINE_MAX:
        connection.settimeout(_left(until))
        chunk = connection.recv(STATUS_LINE_MAX - len(got))
        if not chunk:
            break
        got += chunk
    found = _STATUS_LINE.match(got)
    if not found:
        raise _NoHttp(repr(got[:40]))
    return int(found.group(1))
