"""The archive store and the bundle layout on disk, with atomic commits.

A bundle mirrors a WACZ package (DESIGN.md section 2): ``archive/*.warc.gz`` and
``provenance/manifest.json`` (+ ``.sig``, ``*.tsr``), every file at most one directory below
the root. A capture is written into ``.tmp-<id>`` inside the same store and renamed into place
only when complete, so an interrupted capture never leaves a bundle that looks finished.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import OperationalError, UsageError
from provenance.lockfile import create_held, remove_abandoned

ARCHIVE_DIR_ENV = "PROVENANCE_ARCHIVE_DIR"
DEFAULT_ARCHIVE_DIR = Path("archives")
TEMP_PREFIX = ".tmp-"
MANIFEST_PATH = "provenance/manifest.json"
SIGNATURE_PATH = "provenance/manifest.json.sig"
RAW_SIGNATURE_PATH = "provenance/manifest.json.ed25519"


def archive_dir(explicit: Path | None) -> Path:
    """``--archive-dir``, else ``$PROVENANCE_ARCHIVE_DIR``, else ``./archives``."""
    from_env = os.environ.get(ARCHIVE_DIR_ENV)
    store = explicit if explicit is not None else (
        Path(from_env) if from_env else DEFAULT_ARCHIVE_DIR)
    if store.exists() and not store.is_dir():
        raise UsageError(f"archive store {store} is not a directory")
    return store


@dataclass
class PendingBundle:
    """A bundle under construction in ``<store>/.tmp-<id>``.

    While the capture runs, this process holds an exclusive ``flock`` on ``.tmp-<id>.lock``
    beside the directory; a temporary directory whose lock nobody holds belongs to a capture
    that died (SIGKILL, power loss) and is removed by the next capture into the same store.
    """

    store: Path
    capture_id: str
    path: Path
    lock_fd: int = -1
    #: renamed into place: from then on the bundle is whole, whatever happens next
    committed: bool = False

    @property
    def lock_path(self) -> Path:
        return self.store / f"{TEMP_PREFIX}{self.capture_id}.lock"

    def _release(self) -> None:
        if self.lock_fd >= 0:
            self.lock_path.unlink(missing_ok=True)
            os.close(self.lock_fd)  # closing drops the flock
            self.lock_fd = -1

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
        # A real bundle is never empty, so rename() cannot silently replace one (ENOTEMPTY).
        os.rename(self.path, final)
        self.committed = True
        _fsync_path(self.store)
        self._release()
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()


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
    pending = PendingBundle(store=store, capture_id=capture_id, path=path)
    try:
        # The directory is made only once the lock is held and known to be in the store, so
        # a live capture's directory always has a held lock beside it (see lockfile.py).
        pending.lock_fd = create_held(pending.lock_path)
    except OSError as error:
        raise OperationalError(f"cannot write in {store}: {error.strerror}") from None
    try:
        path.mkdir()
        (path / "archive").mkdir()
        (path / "provenance").mkdir()
    except OSError as error:
        pending.discard()
        raise OperationalError(f"cannot write in {store}: {error.strerror}") from None
    return pending


def remove_stale_temporaries(store: Path) -> list[str]:
    """Remove what captures that died left behind; return the names removed.

    Only directories whose lock no live process holds are touched, so captures running
    concurrently into the same store are safe. Finished bundles are never touched.
    """
    removed: list[str] = []
    try:
        # scandir and a prefix test: glob matched every name of a store of 10,000 bundles
        # against a pattern (7 ms)
        with os.scandir(store) as entries:
            names = sorted(entry.name for entry in entries if entry.name.startswith(TEMP_PREFIX))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in (store / name for name in names):
        if path.name.endswith(".lock"):
            if not path.with_suffix("").exists() and remove_abandoned(path):
                # A capture killed between taking its lock and creating its directory.
                removed.append(path.name)
            continue
        if not path.is_dir() or path.is_symlink():
            continue
        if remove_abandoned(store / f"{path.name}.lock", path, create=True):
            removed.append(path.name)
    return removed
