"""Finding captures in an archive store (stub: to be replaced by the SQLite catalog)."""

from __future__ import annotations

from pathlib import Path

from provenance.errors import UsageError
from provenance.models import PreviousCapture
from provenance.storage import MANIFEST_PATH, TEMP_PREFIX


def resolve_capture(store: Path, ref: str) -> Path:
    """The bundle that ``ref`` names: a bundle directory, a capture id, or a unique id prefix."""
    given = Path(ref)
    if (given / MANIFEST_PATH).is_file():
        return given
    matches = sorted(child for child in store.iterdir()
                     if child.name.startswith(ref) and not child.name.startswith(TEMP_PREFIX)
                     and (child / MANIFEST_PATH).is_file()) if store.is_dir() else []
    if not matches:
        raise UsageError(f"no capture {ref!r} in {store}")
    if len(matches) > 1:
        raise UsageError(f"{ref!r} is ambiguous in {store}: "
                         + ", ".join(m.name for m in matches[:5]))
    return matches[0]


def previous_capture(store: Path, url: str) -> PreviousCapture | None:
    """Stub until the SQLite catalog lands: no history link."""
    return None


def record_capture(store: Path, bundle: Path) -> None:
    """Stub until the SQLite catalog lands: nothing to record."""
