"""Staff roles, on their own so that the CLI can offer them without loading the accounts module
(argon2, and a password hash made on import)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OWNER = "owner"  # all an editor does, plus approving a sequence for launch
    EDITOR = "editor"  # drafts, requests review, pauses, suppresses, imports
    VIEWER = "viewer"  # reads every page, changes nothing


#: Roles that may change things (every edit an editor makes, an owner may make too).
EDITING_ROLES = frozenset({Role.OWNER, Role.EDITOR})


def can_edit(role: str) -> bool:
    return role in EDITING_ROLES


def can_approve(role: str) -> bool:
    """Approving a sequence's content for launch is the owner's (issue 20: review before launch)."""
    return role == Role.OWNER
