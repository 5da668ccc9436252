"""A single-pass, constant-memory WARC scanner for verification.

One read of each ``.warc.gz`` file feeds three things at once: the whole-file sha256 (for the
manifest's file list), the inflater, and a record parser that recomputes every record's block
and payload digests (WARC 1.1 sections 5.8, 5.9). That is the floor any verifier must pay
(read, inflate, hash), which is why we do not go through a general-purpose record iterator.
Truncation anywhere (a cut gzip member, a block shorter than its Content-Length, a missing
record trailer) is reported, never silently accepted.

Memory stays flat whatever the input: inflating is bounded per call (a member that inflates
1000:1 is streamed, not materialised), and every buffer (WARC header, HTTP head, trailer) has
a cap. A gzip member that cannot be inflated or parsed is reported at its offset, and the scan
then resumes at the next gzip member that inflates cleanly (found by its magic bytes), so one
damaged record does not hide the records after it; only that recovery reads bytes twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from provenance.warcheader import WARC_MAGIC, parse_header

READ_SIZE = 1 << 20
#: Most inflated bytes one ``decompress`` call may return (bounds memory on gzip bombs).
INFLATE_LIMIT = 1 << 20
MAX_HEADER_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
#: RFC 1952 section 2.3.1: ID1 ID2 CM, with CM 8 (deflate), the only method defined.
MEMBER_MAGIC = b"\x1f\x8b\x08"
#: After a damaged member, at most this many candidate member starts are tried ...
MAX_RECOVERY_CANDIDATES = 10_000
#: ... and at most this many bytes (times the file size) are re-read while trying them.
RECOVERY_READ_FACTOR = 4
# Records whose block is an HTTP message: the payload starts after the HTTP head. A revisit
# record's payload digest is that of the original record's payload (WARC 1.1 section 6.7),
# which its own block does not hold, so it cannot be checked here.
HTTP_BLOCK_TYPES = frozenset({"response", "request"})
UNCHECKABLE_PAYLOAD_TYPES = frozenset({"revisit"})
#: Digest algorithms we recompute (``hashlib`` names, after lowering and dropping '-').
DIGEST_ALGORITHMS = frozenset({
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256",
    "sha3_224", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s",
})
_TRAILER = b"\r\n\r\n"


#: a line end, then an empty line, each CRLF or bare LF
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _http_head_end(buffer: bytearray, start: int) -> int:
    """Offset just past the blank line ending an HTTP head, or -1.

    Servers end lines with bare LF too (RFC 9112 section 2.2 lets recipients accept it), the
    recorder stores such heads as received, and warcio reads a line-ending of either kind:
    whichever blank line comes first ends the head.
    """
    found = _BLANK_LINE.search(buffer, start)
    return found.end() if found else -1


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
    encoded = encoded.strip()
    if not encoded or algorithm not in DIGEST_ALGORITHMS:
        return None
    try:
        size = hashlib.new(algorithm).digest_size
    except ValueError:  # listed but not provided by this OpenSSL build
        return None
    decoders: list[Callable[[str], bytes]] = [bytes.fromhex, base64.b32decode, base64.b64decode]
    for decode in decoders:
        try:
            raw = decode(encoded)
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
            return f"{self.label} digest {self.declared[:80]!r} is not a digest we can check"
        if self.hash.digest() != self.expected:
            return f"{self.label} digest mismatch"
        return None


class _MalformedError(Exception):
    pass


class _RecordParser:
    """Incremental parser over the inflated bytes of one gzip member (one record)."""

    def __init__(self, record: ScannedRecord) -> None:
        self.record = record
        self.header = bytearray()
        self.in_header = True
        self.remaining = 0
        self.trailer = bytearray()  # the first few bytes after the block, no more
        self.trailer_size = 0
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
                room = len(_TRAILER) + 1 - len(self.trailer)
                if room > 0:
                    self.trailer.extend(view[:room])
                self.trailer_size += len(view)
                view = view[len(view):]

    def _feed_header(self, view: memoryview) -> memoryview:
        start = max(0, len(self.header) - 3)
        self.header.extend(view)
        if not self.header.startswith(WARC_MAGIC[: len(self.header)]):
            raise _MalformedError("not a WARC record (no WARC/ version line)")
        end = self.header.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self.header) > MAX_HEADER_BYTES:
                raise _MalformedError("WARC header block too large")
            return view[len(view):]
        rest = bytes(self.header[end + 4:])
        del self.header[end + 4:]
        if len(self.header) > MAX_HEADER_BYTES:
            raise _MalformedError("WARC header block too large")
        self._start_block()
        return memoryview(rest)

    def _start_block(self) -> None:
        # The one header parser (warcheader.py), so that verify reads a record's fields
        # exactly as cite and show do (first value of each; repeats reported below).
        headers = parse_header(self.header)
        if headers is None:
            raise _MalformedError("not a WARC record (no WARC/ version line)")
        record = self.record
        record.record_type = headers.get("warc-type", "")
        record.record_id = headers.get("warc-record-id", "")
        record.target_uri = headers.get("warc-target-uri")
        length = headers.content_length
        if length is None:
            raise _MalformedError("record has no valid Content-Length")
        self.remaining = length
        self.in_header = False
        record.problems.extend(
            f"{name} field repeated: WARC 1.1 section 5.1 allows only WARC-Concurrent-To to "
            "repeat (the first value was used)" for name in headers.repeated)
        if "warc-block-digest" in headers:
            self.block = _Digest("block", headers["warc-block-digest"])
        else:
            record.problems.append("record has no WARC-Block-Digest")
        if "warc-payload-digest" in headers and \
                record.record_type not in UNCHECKABLE_PAYLOAD_TYPES:
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
        end = _http_head_end(self.http_head, start)
        if end >= 0:
            self.payload.update(bytes(self.http_head[end:]))
            self.http_head = None
        elif len(self.http_head) > MAX_HEADER_BYTES:
            # No end of head in sight: count nothing as payload (which will mismatch) and stop
            # buffering; ``payload = None`` keeps memory flat for the rest of the block.
            self.http_head = None
            self.record.problems.append("HTTP head too large; payload digest not checked")
            self.payload = None

    def finish(self) -> None:
        record = self.record
        if self.in_header:
            record.problems.append("record header is incomplete (truncated)")
            return
        if self.remaining:
            record.problems.append(f"block is {self.remaining} bytes short of its Content-Length"
                                   " (truncated)")
            return
        if self.trailer_size != len(_TRAILER) or bytes(self.trailer) != _TRAILER:
            record.problems.append("record does not end with the CRLF CRLF trailer")
        for digest in (self.block, self.payload):
            problem = digest.problem() if digest is not None else None
            if problem is not None:
                record.problems.append(problem)


class _Members:
    """Inflate consecutive gzip members from a member start; one WARC record per member."""

    def __init__(self, start: int, records: list[ScannedRecord]) -> None:
        self.records = records
        self.position = start  # absolute offset of the next compressed byte to consume
        self.complete = 0  # members inflated to their end (CRC and size checked by zlib)
        self.failed: ScannedRecord | None = None
        self._begin(start)

    def _begin(self, start: int) -> None:
        self.member_start = start
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.record = ScannedRecord(offset=start)
        self.parser = _RecordParser(self.record)

    def feed(self, data: bytes) -> bool:
        """Consume compressed bytes; ``False`` once a member could not be read."""
        while True:
            try:
                out = self.inflater.decompress(data, INFLATE_LIMIT)
                self.parser.feed(out)
            except zlib.error as error:
                return self.fail(f"gzip data corrupt: {error}")
            except _MalformedError as error:
                return self.fail(str(error))
            if self.inflater.eof:
                rest = self.inflater.unused_data
                self.position += len(data) - len(rest)
                self.record.length = self.position - self.member_start
                self.parser.finish()
                self.records.append(self.record)
                self.complete += 1
                self._begin(self.position)
                data = rest
                if not data:
                    return True
                continue
            tail = self.inflater.unconsumed_tail
            self.position += len(data) - len(tail)
            data = tail
            # Output capped and input used up: zlib may still hold output; drain it first.
            if not data and len(out) < INFLATE_LIMIT:
                return True

    def fail(self, message: str) -> bool:
        self.record.problems.append(message)
        self.failed = self.record
        return False

    def end_of_file(self) -> None:
        """The file ended: a member begun but not finished is truncated, or damaged.

        A damaged header can make a member seem to run on to the end of the file; the caller
        looks for later members either way.
        """
        if self.position > self.member_start or self.parser.seen_any:
            self.fail("gzip member is incomplete (file truncated, or the member is damaged)")


def _chunks(stream: BinaryIO) -> Callable[[], bytes]:
    return lambda: stream.read(READ_SIZE)


def _next_magic(stream: BinaryIO, start: int) -> int | None:
    """Offset of the first ``MEMBER_MAGIC`` at or after ``start``, or ``None``."""
    stream.seek(start)
    carry = b""
    base = start
    for chunk in iter(_chunks(stream), b""):
        window = carry + chunk
        found = window.find(MEMBER_MAGIC)
        if found >= 0:
            return base + found
        keep = len(MEMBER_MAGIC) - 1
        carry = window[-keep:]
        base += len(window) - len(carry)
    return None


def _recover(stream: BinaryIO, members: _Members, size: int,
             records: list[ScannedRecord]) -> None:
    """After an unreadable or unfinished member, carry on from the next one that inflates.

    A candidate start (the gzip magic) is accepted only when at least one whole member
    inflates from it with its CRC-32 and size intact, so magic bytes that happen to occur
    inside compressed data are skipped. The damaged record spans up to the accepted start.
    """
    budget = RECOVERY_READ_FACTOR * size + (64 << 20)  # bytes re-read by rejected candidates
    candidates = 0
    failed = members.failed
    while failed is not None:
        search = failed.offset + 1
        accepted: _Members | None = None
        while accepted is None and candidates < MAX_RECOVERY_CANDIDATES and budget > 0:
            start = _next_magic(stream, search)
            if start is None:
                break
            candidates += 1
            trial = _Members(start, [])
            stream.seek(start)
            readable = True
            for chunk in iter(_chunks(stream), b""):
                if not trial.feed(chunk):
                    readable = False
                    break
            if trial.complete:
                if readable:
                    trial.end_of_file()  # may leave a failed (truncated) member to recover from
                accepted = trial
            else:
                budget -= trial.position - start + READ_SIZE
                search = start + 1
        if accepted is None:
            failed.length = size - failed.offset
            records.append(failed)
            return
        failed.length = accepted.records[0].offset - failed.offset
        records.append(failed)
        records.extend(accepted.records)
        failed = accepted.failed


class _BackgroundHash:
    """The whole-file sha256, computed on a second thread while this one inflates and parses.

    hashlib and zlib release the GIL on large buffers, so on two cores the file hash costs
    almost nothing extra. Each update waits for the previous one: order is kept and at most
    two chunks are in flight, so memory stays constant.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warc-hash")
        self._pending: Future[None] | None = None

    def update(self, chunk: bytes) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pending = self._worker.submit(self._hash.update, chunk)

    def hexdigest(self) -> str:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return self._hash.hexdigest()

    def close(self) -> None:
        self._worker.shutdown(wait=True)


def scan_warc(path: Path) -> ScanResult:
    """Read ``path`` once; return its size, sha256 and every record's findings."""
    file_hash = _BackgroundHash()
    try:
        return _scan(path, file_hash)
    finally:
        file_hash.close()


def _scan(path: Path, file_hash: _BackgroundHash) -> ScanResult:
    records: list[ScannedRecord] = []
    problems: list[str] = []
    size = 0
    with path.open("rb") as stream:
        first = stream.read(len(GZIP_MAGIC))
        stream.seek(0)
        members = _Members(0, records)
        readable = first == GZIP_MAGIC
        if first and not readable:
            members.fail("not a gzip member: no gzip magic bytes at this offset")
        for chunk in iter(_chunks(stream), b""):
            file_hash.update(chunk)
            size += len(chunk)
            if readable:
                readable = members.feed(chunk)
        if readable:
            members.end_of_file()
        if members.failed is not None:
            _recover(stream, members, size, records)
    if not size:
        problems.append("empty file, not a WARC")
    elif first != GZIP_MAGIC and all(record.problems for record in records):
        problems.append("not a gzip-compressed WARC file")
    return ScanResult(path, size, "sha256:" + file_hash.hexdigest(), records, problems)
