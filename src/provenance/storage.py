"""The archive store and the bundle layout on disk, with atomic commits.

A bundle mirrors a WACZ package (DESIGN.md section 2): ``archive/*.warc.gz`` and
``provenance/manifest.json`` (+ ``.sig``, ``*.tsr``), every file at most one directory below
the root. A capture is written into ``.tmp-<id>`` inside the same store and renamed into place
only when complete, so an interrupted capture never leaves a bundle that looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import OperationalError, UsageError
from provenance.hashing import hash_file
from provenance.models import BundleFile

ARCHIVE_DIR_ENV = "PROVENANCE_ARCHIVE_DIR"
DEFAULT_ARCHIVE_DIR = Path("archives")
TEMP_PREFIX = ".tmp-"
MANIFEST_PATH = "provenance/manifest.json"
SIGNATURE_PATH = "provenance/manifest.json.sig"


def archive_dir(explicit: Path | None) -> Path:
    """``--archive-dir``, else ``$PROVENANCE_ARCHIVE_DIR``, else ``./archives``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ARCHIVE_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_ARCHIVE_DIR


@dataclass
class PendingBundle:
    """A bundle under construction in ``<store>/.tmp-<id>``."""

    store: Path
    capture_id: str
    path: Path

    @property
    def final_path(self) -> Path:
        return self.store / self.capture_id

    def commit(self) -> Path:
        """Flush every file to disk and rename the directory into place (POSIX rename is atomic)."""
        for file in self.path.rglob("*"):
            if file.is_file():
                _fsync_path(file)
        for directory in [*sorted(p for p in self.path.rglob("*") if p.is_dir()), self.path]:
            _fsync_path(directory)
        final = self.final_path
        if final.exists():
            raise OperationalError(f"{final} already exists; refusing to overwrite a capture")
        os.rename(self.path, final)
        _fsync_path(self.store)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _fsync_path(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_pending(store: Path, capture_id: str) -> PendingBundle:
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OperationalError(
            f"cannot create archive directory {store}: {error.strerror}") from None
    if not store.is_dir():
        raise UsageError(f"archive directory {store} is not a directory")
    path = store / f"{TEMP_PREFIX}{capture_id}"
    try:
        path.mkdir()
        (path / "archive").mkdir()
        (path / "provenance").mkdir()
    except OSError as error:
        raise OperationalError(f"cannot write in {store}: {error.strerror}") from None
    return PendingBundle(store=store, capture_id=capture_id, path=path)


def list_bundle_files(root: Path) -> Iterator[Path]:
    """Every regular file of a bundle, as paths relative to its root, sorted."""
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            yield path.relative_to(root)


def describe_files(root: Path, relative_paths: list[str]) -> list[BundleFile]:
    files = []
    for relative in sorted(relative_paths):
        size, digest = hash_file(root / relative)
        files.append(BundleFile(path=relative, bytes=size, sha256=digest))
    return files


def stale_temporaries(store: Path) -> list[Path]:
    """Leftovers of interrupted captures (reported and cleaned by the next run)."""
    if not store.is_dir():
        return []
    return sorted(p for p in store.iterdir() if p.name.startswith(TEMP_PREFIX))
