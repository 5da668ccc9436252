"""SHA-256 digests in the one spelling provenance uses everywhere: ``sha256:<64 hex>``.

DESIGN.md section 2: digests are written as ``sha256:`` plus lowercase hex, with the byte size
beside them, in the manifest, in WARC headers and in CLI output.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1 << 20  # 1 MiB reads keep syscall overhead low and memory flat


def sha256_label(hex_digest: str) -> str:
    """Spell a hex digest the provenance way."""
    return f"sha256:{hex_digest}"


class RunningDigest:
    """A sha256 that also counts the bytes it has seen."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def label(self) -> str:
        return sha256_label(self._hash.hexdigest())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_bytes(data: bytes) -> str:
    return sha256_label(hashlib.sha256(data).hexdigest())


def hash_stream(stream: BinaryIO) -> tuple[int, str]:
    """Return ``(size, "sha256:...")`` of everything left in ``stream``."""
    digest = RunningDigest()
    for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
        digest.update(chunk)
    return digest.size, digest.label()


def hash_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as stream:
        return hash_stream(stream)
