"""Lock files that mark a temporary as live, safe against cleaners running at the same time.

A capture or a catalog rebuild that dies leaves a temporary behind; the next process that
writes into the store removes those whose lock file nobody holds (``flock``). Done naively,
that is racy in two ways, and both were seen with eight captures started at once:

* a file is created a moment before it is locked, so a cleaner can find it unlocked, take it
  for a dead process's and unlink it; its creator then locks a file no longer in the store, and
  the next cleaner removes the live capture's directory;
* a cleaner that opened a dead lock file can be overtaken: another cleaner unlinks it and its
  owner's retry creates a new file under the same name, which the first cleaner would unlink.

Both sides therefore keep one rule: a lock file's path is unlinked only by a process holding
the ``flock`` of the very file at that path, checked after locking (same device and inode).
Whoever finds, once locked, that the path no longer names its file has lost to a cleaner: the
creator creates the file again, the cleaner leaves it alone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from pathlib import Path

_CREATE_ATTEMPTS = 64  # each lost attempt needs a cleaner's whole open-lock-unlink in between


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` is still the file open as ``fd``."""
    try:
        at_path = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def create_held(path: Path, mode: int = 0o600) -> int:
    """Create ``path``, which must not exist, and return a descriptor holding its exclusive lock.

    Raises ``OSError`` as ``os.open`` does (``EEXIST`` included). The lock waits rather than
    fails: only a cleaner can hold a just-created file, and only for as long as it takes to
    unlink it.
    """
    for _ in range(_CREATE_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _names(path, fd):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # a cleaner unlinked it between our create and our lock: create it anew
    raise OSError(errno.EAGAIN, "lost every attempt to lock a new file to concurrent cleaners",
                  str(path))


def remove_abandoned(lock_path: Path, guarded: Path | None = None, *,
                     create: bool = False) -> bool:
    """Remove ``guarded`` (a directory tree), then ``lock_path``, if no live process holds the lock.

    Returns whether they were removed. With ``create``, a missing lock file is created (and
    then removed) so that a directory whose lock file is gone can still be claimed.
    """
    # O_NOFOLLOW: a symbolic link planted at the lock's name must not make us create or lock
    # a file elsewhere.
    flags = (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(lock_path, flags, 0o600)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # a directory or device under a lock's name: not ours to judge
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live process holds it
        if not _names(lock_path, fd):
            return False  # overtaken: whatever is at the path now is somebody else's
        if guarded is not None:
            shutil.rmtree(guarded, ignore_errors=True)
        try:
            lock_path.unlink(missing_ok=True)
        except OSError:  # a store shared read-only with us: what we may not remove stays
            return guarded is not None and not guarded.exists()
        return True
    finally:
        os.close(fd)  # closing drops the lock
