"""Reading a committed bundle back: its manifest and the records its manifest points at.

Used by ``show``, ``cite``, ``diff`` and ``history``; none of these verify (that is
``verify.py``'s job), but all of them read only through the manifest's own locations, each
record inflated under a cap, so a damaged or hostile bundle costs bounded memory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import BundleFormatError
from provenance.hashing import hash_bytes
from provenance.manifest import load_manifest
from provenance.models import Manifest, WarcLocation
from provenance.storage import MANIFEST_PATH

#: Largest record block read back into memory (text of articles and sources; not evidence).
MAX_BLOCK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    """One bundle: where it is, its manifest bytes as signed, and their parsed form."""

    path: Path
    manifest_bytes: bytes
    manifest: Manifest

    @property
    def manifest_sha256(self) -> str:
        """``sha256:<hex>`` of the manifest bytes (what a citation and a history link name)."""
        return hash_bytes(self.manifest_bytes)


def open_snapshot(bundle: Path) -> Snapshot:
    loaded = load_manifest(bundle / MANIFEST_PATH)
    return Snapshot(path=bundle, manifest_bytes=loaded.raw, manifest=loaded.manifest)


@dataclass(frozen=True)
class RecordBlock:
    """A record read back: its WARC header lines and its block (at most ``limit`` bytes)."""

    warc_headers: dict[str, str]
    block: bytes
    complete: bool


def read_record(bundle: Path, location: WarcLocation,
                limit: int = MAX_BLOCK_BYTES) -> RecordBlock:
    """Read the gzip member at ``location`` (one record: WARC 1.1 annex D.2) from the bundle."""
    target = (bundle / location.file).resolve()
    if bundle.resolve() not in target.parents:
        raise BundleFormatError(f"record location outside the bundle: {location.file}")
    try:
        with target.open("rb") as stream:
            stream.seek(location.offset)
            member = stream.read(location.length)
    except OSError as error:
        raise BundleFormatError(f"{location.file}: cannot read: {error.strerror}") from None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(member, limit + 64 * 1024)
    except zlib.error as error:
        raise BundleFormatError(
            f"{location.file} @{location.offset}: not a gzip record ({error})") from None
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"WARC/"):
        raise BundleFormatError(f"{location.file} @{location.offset}: not a WARC record")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("utf-8", "replace").partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        raise BundleFormatError(
            f"{location.file} @{location.offset}: record without a Content-Length") from None
    block = rest[:min(length, limit)]
    return RecordBlock(warc_headers=headers, block=block,
                       complete=len(block) == length)


def article_text(snapshot: Snapshot) -> str | None:
    """The article's extracted text (the ``conversion`` record), or None if there is none."""
    text = snapshot.manifest.article_text
    if text is None:
        return None
    return read_record(snapshot.path, text.record).block.decode("utf-8", "replace")
