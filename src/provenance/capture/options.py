"""What a capture is asked to do: the settings a user chooses, with documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provenance import __version__

DEFAULT_USER_AGENT = (
    f"provenance/{__version__} (web evidence capture)"
)


@dataclass(frozen=True)
class CaptureSettings:
    links: Literal["body", "none"] = "body"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requisites: bool = True
    concurrency: int = 16
    per_host: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_redirects: int = 10
    max_bytes: int = 100 * 1024 * 1024
    max_links: int = 200
    max_decoded_bytes: int = 32 * 1024 * 1024
    user_agent: str = DEFAULT_USER_AGENT
    ca_bundle: Path | None = None
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
