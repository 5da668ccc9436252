"""Lock files against cleaners running at the same moment (lockfile.py, storage.py, catalog.py).

Each race is forced, not waited for: ``fcntl.flock`` is wrapped so that, the first time it is
called, another party (a cleaner, or a creator) acts in the window just before the lock is
taken. Every party runs the real code on real files; ``flock`` locks belong to open file
descriptions, so two descriptors in this one process contend as two processes would.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance import catalog
from provenance.lockfile import create_held, remove_abandoned
from provenance.storage import open_pending, remove_stale_temporaries


def _before_first_lock(monkeypatch: pytest.MonkeyPatch, interloper: Callable[[], None]) -> None:
    """Run ``interloper`` once, just before the first ``flock`` call that follows."""
    real_flock = fcntl.flock
    fired: list[bool] = []

    def flock(fd: int, operation: int) -> None:
        if not fired:
            fired.append(True)  # before the interloper, which takes locks of its own
            interloper()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)


def _inode(path: Path) -> tuple[int, int]:
    status = os.lstat(path)
    return status.st_dev, status.st_ino


def test_a_capture_whose_new_lock_a_cleaner_removes_keeps_its_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cleaned: list[list[str]] = []
    # Another capture starting into the same store sees the new lock file, not yet locked and
    # with no directory beside it, and takes it for a dead capture's.
    _before_first_lock(monkeypatch, lambda: cleaned.append(remove_stale_temporaries(tmp_path)))
    pending = open_pending(tmp_path, "20261126-175809-8b3gw0")
    try:
        assert cleaned == [[".tmp-20261126-175809-8b3gw0.lock"]]  # the race did happen
        # A third capture starting now must see a live capture, and leave it alone.
        assert remove_stale_temporaries(tmp_path) == []
        assert (pending.path / "provenance").is_dir()
        assert pending.lock_path.exists()
        held = os.fstat(pending.lock_fd)
        assert _inode(pending.lock_path) == (held.st_dev, held.st_ino)
    finally:
        pending.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_cleaner_overtaken_on_a_dead_lock_leaves_its_new_owner_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock_path = tmp_path / ".tmp-dead.lock"
    lock_path.touch()  # left by a capture that died
    owner: list[int] = []

    def replaced_while_the_cleaner_waits() -> None:
        # Between the cleaner's open and its lock, the dead file goes and a live one takes
        # the name (another cleaner removed it; its creator made it anew).
        lock_path.unlink()
        owner.append(create_held(lock_path))

    _before_first_lock(monkeypatch, replaced_while_the_cleaner_waits)
    try:
        assert remove_abandoned(lock_path) is False
        held = os.fstat(owner[0])
        assert _inode(lock_path) == (held.st_dev, held.st_ino)
    finally:
        for fd in owner:
            os.close(fd)


def test_a_dead_lock_and_a_dead_directory_are_removed_and_a_held_one_kept(
        tmp_path: Path) -> None:
    (tmp_path / ".tmp-gone.lock").touch()
    (tmp_path / ".tmp-dead").mkdir()
    (tmp_path / ".tmp-dead" / "archive").mkdir()
    (tmp_path / ".tmp-dead.lock").touch()
    (tmp_path / ".tmp-orphan").mkdir()  # its lock file is gone too
    live = open_pending(tmp_path, "live")
    try:
        assert remove_stale_temporaries(tmp_path) == [".tmp-dead", ".tmp-gone.lock",
                                                      ".tmp-orphan"]
        assert sorted(path.name for path in tmp_path.iterdir()) == [".tmp-live",
                                                                    ".tmp-live.lock"]
    finally:
        live.discard()


def test_a_new_file_is_never_handed_out_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "new.lock"
    fd = create_held(path)
    try:
        assert remove_abandoned(path) is False
        assert path.exists()
        with pytest.raises(FileExistsError):
            create_held(path)
    finally:
        os.close(fd)
    assert remove_abandoned(path) is True
    assert not path.exists()


def test_a_rebuild_whose_scratch_file_a_cleaner_removes_still_builds_the_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another rebuild's cleanup runs between this rebuild's create and its lock.
    _before_first_lock(monkeypatch, lambda: catalog._remove_stale_rebuilds(tmp_path))
    report = catalog.reindex(tmp_path)
    assert report.catalog == tmp_path / catalog.CATALOG_FILE
    assert report.catalog.is_file()
    assert not list(tmp_path.glob(f"{catalog.REBUILD_PREFIX}*"))


def test_what_is_not_a_lock_file_under_a_locks_name_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".tmp-odd.lock").mkdir()  # a directory where a lock file would be
    target = tmp_path / "elsewhere"
    (tmp_path / ".tmp-linked").mkdir()
    (tmp_path / ".tmp-linked.lock").symlink_to(target)  # dangling: O_CREAT would make it
    assert remove_stale_temporaries(tmp_path) == []
    assert (tmp_path / ".tmp-odd.lock").is_dir()
    assert (tmp_path / ".tmp-linked").is_dir()
    assert not target.exists()
    pending = open_pending(tmp_path, "next")  # and captures into the store still work
    pending.discard()
    (tmp_path / f"{catalog.REBUILD_PREFIX}odd.sqlite").mkdir()
    assert catalog.reindex(tmp_path).catalog.is_file()
