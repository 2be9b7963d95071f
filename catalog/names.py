"""The one rule for names of products, station networks and job results."""

from __future__ import annotations

import re

from catalog.errors import InputError

MAX_NAME_LENGTH = 100
# Lower-case ASCII letters, digits, '_' and '-', starting with a letter or digit; \Z (not $) so a
# trailing newline does not match.
NAME_RE = re.compile(rf"[a-z0-9][a-z0-9_\-]{{0,{MAX_NAME_LENGTH - 1}}}\Z")


def valid_name(name) -> bool:
    """Whether ``name`` is a usable product / network name (see :data:`NAME_RE`)."""
    return isinstance(name, str) and NAME_RE.match(name) is not None


def check_name(name, what: str = "product") -> None:
    """:class:`InputError` unless ``name`` follows the rule; the message says which part fails."""
    if valid_name(name):
        return
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        raise InputError(f"bad {what} name ({len(name)} characters): at most {MAX_NAME_LENGTH} are allowed")
    raise InputError(
        f"bad {what} name {name!r}: use lower-case letters, digits, '_' or '-' "
        f"(starting with a letter or digit, at most {MAX_NAME_LENGTH} characters)"
    )
