"""Small file-system helpers shared by the modules that write or read a bundle or store."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable; best effort (POSIX only)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_capped(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None if it cannot be read or holds more than ``limit`` bytes.

    Reads at most ``limit + 1`` bytes, so a huge or endless file costs no more than that.
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None
