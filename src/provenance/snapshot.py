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
from provenance.models import Manifest, Resource, WarcLocation
from provenance.storage import MANIFEST_PATH
from provenance.warcheader import WarcHeader, parse_header

#: Largest record block read back into memory (text of articles and sources; not evidence).
MAX_BLOCK_BYTES = 64 * 1024 * 1024
#: Inflated bytes allowed for the WARC header on top of the block limit.
_HEAD_ALLOWANCE = 64 * 1024
_READ_SIZE = 1 << 20


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
    """A record read back: its WARC header fields and its block (at most ``limit`` bytes)."""

    warc_headers: WarcHeader
    block: bytes
    complete: bool


def read_record(bundle: Path, location: WarcLocation,
                limit: int = MAX_BLOCK_BYTES) -> RecordBlock:
    """Read the gzip member at ``location`` (one record: WARC 1.1 annex D.2) from the bundle."""
    # The file name comes from the manifest: shown with repr() so that control characters
    # and lone surrogates (a JSON "\ud800" escape, RFC 8259 section 8.2) stay on one line.
    shown = repr(location.file)
    try:
        target = (bundle / location.file).resolve()
        inside = bundle.resolve() in target.parents
    except (OSError, ValueError):  # a NUL, or a surrogate the file system cannot encode
        raise BundleFormatError(f"record location {shown} is not a usable path") from None
    except RuntimeError:  # Python 3.11's resolve() reports a symbolic link loop this way
        raise BundleFormatError(f"record location {shown} is a symbolic link loop") from None
    if not inside:
        raise BundleFormatError(f"record location outside the bundle: {shown}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    wanted = limit + _HEAD_ALLOWANCE
    data = bytearray()
    try:
        with target.open("rb") as stream:
            stream.seek(location.offset)
            left = location.length
            # The length comes from the manifest and may be anything up to 2**53 - 1
            # (models.Size): read(length) would allocate that much up front, so the member is
            # read in chunks and inflated only until ``wanted`` bytes are out.
            while left > 0 and len(data) < wanted and not inflater.eof:
                chunk = stream.read(min(left, _READ_SIZE))
                if not chunk:
                    break
                left -= len(chunk)
                while chunk and len(data) < wanted and not inflater.eof:
                    data += inflater.decompress(chunk, wanted - len(data))
                    chunk = inflater.unconsumed_tail
    except OSError as error:
        raise BundleFormatError(f"{shown}: cannot read: {error.strerror}") from None
    except zlib.error as error:
        raise BundleFormatError(
            f"{shown} @{location.offset}: not a gzip record ({error})") from None
    head, separator, rest = bytes(data).partition(b"\r\n\r\n")
    # The one header parser (warcheader.py), so that what is read here is what verify
    # checked: the first value of a field that is (wrongly) repeated.
    headers = parse_header(head) if separator else None
    if headers is None:
        raise BundleFormatError(f"{shown} @{location.offset}: not a WARC record")
    length = headers.content_length
    if length is None:
        raise BundleFormatError(
            f"{shown} @{location.offset}: record without a Content-Length")
    block = rest[:min(length, limit)]
    return RecordBlock(warc_headers=headers, block=block,
                       complete=len(block) == length)


def article_text(snapshot: Snapshot) -> str | None:
    """The article's extracted text (the ``conversion`` record), or None if there is none."""
    text = snapshot.manifest.article_text
    if text is None:
        return None
    return read_record(snapshot.path, text.record).block.decode("utf-8", "replace")


def article_resource(manifest: Manifest) -> Resource | None:
    """The final response of the article's redirect chain."""
    articles = [r for r in manifest.resources if r.role == "article"]
    return articles[-1] if articles else None
