"""Staff roles, on their own so that the CLI can offer them without loading the accounts module
(argon2, and a password hash made on import)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    EDITOR = "editor"  # launches, pauses, suppresses, imports
    VIEWER = "viewer"  # reads every page, changes nothing
