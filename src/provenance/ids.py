"""Capture identifiers: sortable by time, unique, safe as a file name, short enough to cite.

Shape: ``YYYYMMDD-HHMMSS-xxxxxx``: the UTC start time to the second, then six characters of
lowercase Crockford base32 (30 random bits). Lexical order is time order; two captures in the
same second collide with probability 2^-30, and the archive store refuses to overwrite anyway.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

# Crockford's alphabet leaves out I, L, O and U so that ids survive being read aloud or retyped.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_capture_id(started: datetime) -> str:
    stamp = started.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"{stamp}-{suffix}"
