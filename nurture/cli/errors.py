"""Every error a command can end with, as one line and an exit code (sysexits.h numbers).

Our own errors (core.errors) carry their code. The three kinds a person can cause from outside
the program are mapped here too, so no command needs a try/except of its own:

* the database cannot be reached or opened (sqlalchemy OperationalError, InterfaceError): 69
  EX_UNAVAILABLE, or 78 EX_CONFIG for a URL that is not a database URL at all;
* a file or folder cannot be read or created (OSError): 74 EX_IOERR;
* the web server's port is taken (OSError EADDRINUSE, e.g. a second `nurture demo`): 69
  EX_UNAVAILABLE, said before anything else happens (nurture.demo.listen_on);
* a date or number out of range (OverflowError from date arithmetic): 65 EX_DATAERR, like
  any other bad input.

A database URL may carry a password, and drivers sometimes quote the URL in their message, so
any `scheme://user:password@` in a line is masked before it is printed.
"""

from __future__ import annotations

import errno
import re

from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

from core.errors import InputError, NurtureError

EX_UNAVAILABLE = 69
EX_IOERR = 74
EX_CONFIG = 78
_PASSWORD_IN_URL = re.compile(r"(\w[\w+.-]*://[^/\s:@]*:)[^@\s]*@")


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for an error we can explain; None for a bug (keep the traceback)."""
    if isinstance(exc, NurtureError):
        return str(exc), exc.exit_code
    if isinstance(exc, OperationalError | InterfaceError):
        reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
        return (
            f"cannot open the database ({reason}); check NURTURE_DATABASE__URL and that the "
            "server is running",
            EX_UNAVAILABLE,
        )
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"NURTURE_DATABASE__URL is not a database URL Nurture can use: {exc}", EX_CONFIG
    if isinstance(exc, OverflowError):
        return f"a date or number is out of range ({exc}); choose a nearer date", (
            InputError.exit_code
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"{exc.strerror or exc}: another program is listening there (a running "
            "`nurture demo` or server?); stop it or choose another --port",
            EX_UNAVAILABLE,
        )
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EX_IOERR
    return None


def safe_text(text: str) -> str:
    """One line with any password in a URL masked."""
    return _PASSWORD_IN_URL.sub(r"\1***@", " ".join(text.split()))


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
