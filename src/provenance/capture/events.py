"""Progress events the capture emits; the CLI draws them, library users may ignore them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceDone:
    url: str
    role: str
    outcome: str
    status: int | None
    size: int | None
    sha256: str | None
    reason: str | None


@dataclass(frozen=True)
class PhaseStarted:
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Notice:
    """Something the user should know that did not stop the capture (e.g. catalog trouble)."""

    message: str


Event = ResourceDone | PhaseStarted | Notice
Observer = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default observer."""
