"""A single-pass, constant-memory WARC scanner for verification.

One read of each ``.warc.gz`` file feeds three things at once: the whole-file sha256 (for the
manifest's file list), the inflater, and a record parser that recomputes every record's block
and payload digests (WARC 1.1 sections 5.8, 5.9). That is the floor any verifier must pay
(read, inflate, hash), which is why we do not go through a general-purpose record iterator.
Truncation anywhere (a cut gzip member, a block shorter than its Content-Length, a missing
record trailer) is reported, never silently accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READ_SIZE = 1 << 20
MAX_HEADER_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
# Records whose block is an HTTP message: the payload starts after the HTTP head.
HTTP_BLOCK_TYPES = frozenset({"response", "request", "revisit"})


@dataclass
class ScannedRecord:
    offset: int
    length: int = 0
    record_type: str = ""
    record_id: str = ""
    target_uri: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class ScanResult:
    path: Path
    size: int
    sha256: str
    records: list[ScannedRecord]
    problems: list[str]


def _decode_digest(value: str) -> tuple[str, bytes] | None:
    """``algo:value`` with a base16, base32 or base64 value, as ``warcio check`` accepts."""
    algorithm, _, encoded = value.strip().partition(":")
    algorithm = algorithm.lower().replace("-", "")
    if not encoded or algorithm not in hashlib.algorithms_available:
        return None
    size = hashlib.new(algorithm).digest_size
    decoders: list[Any] = [bytes.fromhex, base64.b32decode, base64.b64decode]
    for decode in decoders:
        try:
            raw: bytes = decode(encoded)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == size:
            return algorithm, raw
    return None


class _Digest:
    """Recompute a declared digest while the block streams past."""

    def __init__(self, label: str, declared: str) -> None:
        self.label = label
        self.declared = declared
        parsed = _decode_digest(declared)
        self.expected = parsed[1] if parsed else None
        self.hash = hashlib.new(parsed[0]) if parsed else None

    def update(self, data: bytes | memoryview) -> None:
        if self.hash is not None:
            self.hash.update(data)

    def problem(self) -> str | None:
        if self.hash is None:
            return f"{self.label} digest {self.declared!r} is not a digest we can check"
        if self.hash.digest() != self.expected:
            return f"{self.label} digest mismatch"
        return None


class _RecordParser:
    """Incremental parser over the inflated bytes of one gzip member (one record)."""

    def __init__(self, record: ScannedRecord) -> None:
        self.record = record
        self.header = bytearray()
        self.in_header = True
        self.remaining = 0
        self.trailer = bytearray()
        self.block: _Digest | None = None
        self.payload: _Digest | None = None
        self.http_head: bytearray | None = None
        self.seen_any = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self.seen_any = True
            if self.in_header:
                view = self._feed_header(view)
            elif self.remaining:
                take = view[: self.remaining]
                self._feed_block(take)
                self.remaining -= len(take)
                view = view[len(take):]
            else:
                self.trailer.extend(view)
                view = view[len(view):]

    def _feed_header(self, view: memoryview) -> memoryview:
        start = max(0, len(self.header) - 3)
        self.header.extend(view)
        end = self.header.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self.header) > MAX_HEADER_BYTES:
                raise _Malformed("WARC header block too large")
            return view[len(view):]
        rest = bytes(self.header[end + 4:])
        del self.header[end + 4:]
        self._start_block()
        return memoryview(rest)

    def _start_block(self) -> None:
        lines = self.header.decode("utf-8", "replace").split("\r\n")
        if not lines[0].startswith("WARC/"):
            raise _Malformed("not a WARC record (no WARC/ version line)")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
        record = self.record
        record.record_type = headers.get("warc-type", "")
        record.record_id = headers.get("warc-record-id", "")
        record.target_uri = headers.get("warc-target-uri")
        try:
            self.remaining = int(headers["content-length"])
        except (KeyError, ValueError):
            raise _Malformed("record has no valid Content-Length") from None
        self.in_header = False
        if "warc-block-digest" in headers:
            self.block = _Digest("block", headers["warc-block-digest"])
        else:
            record.problems.append("record has no WARC-Block-Digest")
        if "warc-payload-digest" in headers:
            self.payload = _Digest("payload", headers["warc-payload-digest"])
            if record.record_type in HTTP_BLOCK_TYPES:
                self.http_head = bytearray()

    def _feed_block(self, data: memoryview) -> None:
        if self.block is not None:
            self.block.update(data)
        if self.payload is None:
            return
        if self.http_head is None:
            self.payload.update(data)
            return
        # Still inside the HTTP head: buffer until the blank line, then hash the rest.
        start = max(0, len(self.http_head) - 3)
        self.http_head.extend(data)
        end = self.http_head.find(b"\r\n\r\n", start)
        if end >= 0:
            self.payload.update(bytes(self.http_head[end + 4:]))
            self.http_head = None
        elif len(self.http_head) > MAX_HEADER_BYTES:
            self.http_head = None  # no head end: treat nothing as payload, which will mismatch

    def finish(self) -> None:
        record = self.record
        if self.in_header:
            record.problems.append("record header is incomplete (truncated)")
            return
        if self.remaining:
            record.problems.append(f"block is {self.remaining} bytes short of its Content-Length"
                                   " (truncated)")
            return
        if bytes(self.trailer) != b"\r\n\r\n":
            record.problems.append("record does not end with the CRLF CRLF trailer")
        for digest in (self.block, self.payload):
            problem = digest.problem() if digest is not None else None
            if problem is not None:
                record.problems.append(problem)


class _Malformed(Exception):
    pass


def scan_warc(path: Path) -> ScanResult:
    """Read ``path`` once; return its size, sha256 and every record's findings."""
    file_hash = hashlib.sha256()
    records: list[ScannedRecord] = []
    problems: list[str] = []
    position = 0
    with path.open("rb") as stream:
        first = stream.read(2)
        stream.seek(0)
        if first != GZIP_MAGIC:
            # Still hash the file so the file check reports accurately.
            for chunk in iter(lambda: stream.read(READ_SIZE), b""):
                file_hash.update(chunk)
                position += len(chunk)
            problems.append("not a gzip-compressed WARC file")
            return ScanResult(path, position, "sha256:" + file_hash.hexdigest(), records,
                              problems)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        record = ScannedRecord(offset=0)
        parser = _RecordParser(record)
        member_start = 0
        broken = False
        for chunk in iter(lambda: stream.read(READ_SIZE), b""):
            file_hash.update(chunk)
            data = chunk
            while data and not broken:
                try:
                    parser.feed(inflater.decompress(data))
                except zlib.error as error:
                    problems.append(f"gzip data corrupt near offset {member_start}: {error}")
                    record.problems.append("gzip data corrupt")
                    broken = True
                    break
                except _Malformed as error:
                    record.problems.append(str(error))
                    broken = True
                    break
                if not inflater.eof:
                    position += len(data)
                    break
                used = len(data) - len(inflater.unused_data)
                position += used
                record.length = position - member_start
                parser.finish()
                records.append(record)
                member_start = position
                data = inflater.unused_data
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                record = ScannedRecord(offset=member_start)
                parser = _RecordParser(record)
            if broken:
                position += len(data)
                for rest in iter(lambda: stream.read(READ_SIZE), b""):
                    file_hash.update(rest)
                    position += len(rest)
                break
        if broken:
            record.length = position - member_start
            records.append(record)
        elif position > member_start or parser.seen_any:
            record.length = position - member_start
            record.problems.append("gzip member is incomplete (file truncated)")
            records.append(record)
    return ScanResult(path, position, "sha256:" + file_hash.hexdigest(), records, problems)
