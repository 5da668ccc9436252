"""UTC timestamps as RFC 3339 strings (``2026-11-26T11:47:04.123456Z``), and an injectable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime, *, micros: bool = True) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; microseconds as WARC 1.1 section 5.4 allows."""
    # isoformat, not strftime: a fifth of the time, and always four digits of year
    text = moment.astimezone(UTC).isoformat(timespec="microseconds" if micros else "seconds")
    return text.removesuffix("+00:00") + "Z"
