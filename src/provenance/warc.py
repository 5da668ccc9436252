"""The only warcio importer: write WARC 1.1 records (gzip per record) and read them back.

Response and request blocks are handed to warcio as opaque bytes (no parsed HTTP headers), so
warcio writes them exactly as they crossed the wire instead of re-serialising the headers.
We compute the digests ourselves while receiving (sha256, DESIGN.md section 2) and put them in
the record headers, so warcio never re-reads a block to digest it.

Payload digest convention (README, "Payload digests"): ``WARC-Payload-Digest`` covers the
payload as stored, chunk framing included, as wget and warcio do, so ``warcio check`` passes
on every file we write. The manifest separately records the sha256 of the entity body with the
transfer coding removed, which is what WARC 1.1 section 6.3.2 asks the payload digest to mean
(iipc/warc-specifications#22).
"""

from __future__ import annotations

import io
import threading
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from provenance.hashing import RunningDigest, hash_bytes
from provenance.timeutil import rfc3339

WARC_VERSION = "WARC/1.1"


@dataclass(frozen=True)
class PreparedRecord:
    """A small record serialised and compressed ahead of time, appended by ``WarcFile.append``.

    A capture prepares request records while it waits for the responses, so that writing
    them costs nothing once the answers come in (see ``write_exchange``).
    """

    record_id: str
    #: the record this one is WARC-Concurrent-To, if any
    concurrent_to: str | None
    #: one complete gzip member
    member: bytes


@dataclass(frozen=True)
class RecordLocation:
    """Where a record sits: file name (relative to ``archive/``), byte offset and length."""

    warc_file: str
    record_id: str
    offset: int
    length: int


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


DEFAULT_LEVEL = 6
SAMPLE_SIZE = 64 * 1024


def compression_level(sample: bytes) -> int:
    """Level 0 (stored deflate blocks) for data that does not compress, else level 6.

    Media that is already compressed (JPEG, video, zip, most PDFs) gains nothing from
    deflate but costs ~20x the time at warcio's fixed level 9; gzip stays valid either way.
    """
    if len(sample) < 4096:
        return DEFAULT_LEVEL
    saved = 1 - len(zlib.compress(sample, 1)) / len(sample)
    return DEFAULT_LEVEL if saved > 0.03 else 0


class _HashingFile:
    """The WARC file on disk, hashed as it is written so that nobody has to read it back."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = RunningDigest()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._stream.write(data)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.flush()
        self._stream.close()


class _GzipMember:
    """A file-like that deflates everything written into one gzip member (RFC 1952)."""

    def __init__(self, out: _HashingFile | io.BytesIO, level: int) -> None:
        self._out = out
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> int:
        self._out.write(self._deflate.compress(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do mid-record; ``finish`` ends the member."""

    def finish(self) -> None:
        self._out.write(self._deflate.flush())


class WarcFile:
    """An append-only ``.warc.gz``; every write is one gzip member (WARC 1.1 annex D.2).

    warcio serialises each record; we do the gzip framing so that the level can follow the
    content (warcio's own wrapper always uses level 9).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream = _HashingFile(path.open("xb"))
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:  # never in the middle of another thread's record
            self._stream.close()

    def file_digest(self) -> tuple[int, str]:
        """Size and sha256 of everything written so far (the whole file once closed)."""
        return self._stream.digest.size, self._stream.digest.label()

    def write(
        self,
        record_type: str,
        headers: Sequence[tuple[str, str]],
        block: IO[bytes],
        length: int,
        content_type: str,
        level: int = DEFAULT_LEVEL,
    ) -> RecordLocation:
        """Write one record whose block is read from ``block``; headers must carry digests."""
        with self._lock:
            offset = self._stream.tell()
            record_id = _serialise(self._stream, record_type, headers, block, length,
                                   content_type, level)
            end = self._stream.tell()
        return RecordLocation(self.path.name, record_id, offset, end - offset)

    def append(self, prepared: PreparedRecord) -> RecordLocation:
        """Write a record prepared earlier (``prepare_request``)."""
        with self._lock:
            offset = self._stream.tell()
            self._stream.write(prepared.member)
            end = self._stream.tell()
        return RecordLocation(self.path.name, prepared.record_id, offset, end - offset)


def _serialise(out: _HashingFile | io.BytesIO, record_type: str,
               headers: Sequence[tuple[str, str]], block: IO[bytes], length: int,
               content_type: str, level: int) -> str:
    """Write one gzip member holding one record to ``out``; return its WARC-Record-ID."""
    warc_headers = StatusAndHeaders("", list(headers), protocol=WARC_VERSION)
    record = ArcWarcRecord("warc", record_type, warc_headers, block, None, content_type, length)
    record.payload_length = length
    member = _GzipMember(out, level)
    WARCWriter(member, gzip=False, warc_version=WARC_VERSION).write_record(record)
    member.finish()
    return str(warc_headers.get_header("WARC-Record-ID"))


def base_headers(record_type: str, target_uri: str | None, date: datetime,
                 record_id: str | None = None) -> list[tuple[str, str]]:
    headers = [("WARC-Type", record_type),
               ("WARC-Record-ID", record_id or new_record_id()),
               ("WARC-Date", rfc3339(date))]
    if target_uri:
        headers.append(("WARC-Target-URI", target_uri))
    return headers


def write_bytes_record(
    warc: WarcFile,
    record_type: str,
    target_uri: str | None,
    date: datetime,
    content_type: str,
    payload: bytes,
    extra: Sequence[tuple[str, str]] = (),
) -> RecordLocation:
    """A record whose whole block is ``payload`` (warcinfo, metadata, resource, conversion)."""
    headers = base_headers(record_type, target_uri, date)
    headers.extend(extra)
    digest = hash_bytes(payload)
    headers.append(("WARC-Block-Digest", digest))
    if record_type != "warcinfo":
        # For resource, conversion and metadata records the payload is the whole block (WARC
        # 1.1 section 5.9). Given here, it is sha256 like every other digest; left out, warcio
        # would add a sha1 one of its own.
        headers.append(("WARC-Payload-Digest", digest))
    return warc.write(record_type, headers, io.BytesIO(payload), len(payload), content_type)


def warc_fields(fields: Sequence[tuple[str, str]]) -> bytes:
    """``application/warc-fields`` body (WARC 1.1 section 5.1): ``Name: value`` CRLF lines."""
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in fields)


class _Concat(io.RawIOBase):
    """Read ``head`` then ``body`` as one stream, without copying the body into memory."""

    def __init__(self, head: bytes, body: IO[bytes]) -> None:
        self._head = io.BytesIO(head)
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._head.read(len(buffer)) or self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def prepare_request(
    *,
    target_uri: str,
    date: datetime,
    peer_ip: str,
    request_bytes: bytes,
    concurrent_to: str,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> PreparedRecord:
    """The request record of an exchange, ``WARC-Concurrent-To`` its response (WARC 1.1 6.4)."""
    headers = base_headers("request", target_uri, date)
    headers.append(("WARC-IP-Address", peer_ip))
    headers.append(("WARC-Concurrent-To", concurrent_to))
    headers.append(("WARC-Block-Digest", hash_bytes(request_bytes)))
    # A GET has no body, so its payload digest is that of the empty string.
    head_end = request_bytes.find(b"\r\n\r\n") + 4
    headers.append(("WARC-Payload-Digest", hash_bytes(request_bytes[head_end:])))
    headers.extend(extra_headers)
    buffer = io.BytesIO()
    record_id = _serialise(buffer, "request", headers, io.BytesIO(request_bytes),
                           len(request_bytes), "application/http; msgtype=request",
                           DEFAULT_LEVEL)
    return PreparedRecord(record_id, concurrent_to, buffer.getvalue())


def write_exchange(
    warc: WarcFile,
    *,
    target_uri: str,
    date: datetime,
    peer_ip: str,
    request_bytes: bytes,
    response_head: bytes,
    raw_body: IO[bytes],
    block_digest: RunningDigest,
    payload_digest: RunningDigest,
    truncated: str | None,
    extra_response_headers: Sequence[tuple[str, str]] = (),
    extra_request_headers: Sequence[tuple[str, str]] = (),
    response_id: str | None = None,
    request_record: PreparedRecord | None = None,
) -> tuple[RecordLocation, RecordLocation]:
    """Write a response record and its concurrent request record (WARC 1.1 sections 6.3, 6.4).

    ``request_record``, if given, was prepared with ``prepare_request`` from the same request
    while the response was awaited, ``concurrent_to`` this ``response_id``.
    """
    response_id = response_id or new_record_id()
    if request_record is not None and request_record.concurrent_to != response_id:
        raise ValueError("the prepared request record belongs to another response")
    headers = base_headers("response", target_uri, date, response_id)
    headers.append(("WARC-IP-Address", peer_ip))
    headers.append(("WARC-Block-Digest", block_digest.label()))
    headers.append(("WARC-Payload-Digest", payload_digest.label()))
    if truncated:
        headers.append(("WARC-Truncated", truncated))
    headers.extend(extra_response_headers)
    length = len(response_head) + payload_digest.size
    sample = raw_body.read(SAMPLE_SIZE)
    raw_body.seek(0)
    response = warc.write("response", headers, io.BufferedReader(_Concat(response_head, raw_body)),
                          length, "application/http; msgtype=response",
                          level=compression_level(sample))

    if request_record is None:
        request_record = prepare_request(
            target_uri=target_uri, date=date, peer_ip=peer_ip, request_bytes=request_bytes,
            concurrent_to=response_id, extra_headers=extra_request_headers)
    return response, warc.append(request_record)


@dataclass(frozen=True)
class StoredRecord:
    """Headers of one record as read back, with where it sits in its file."""

    record_type: str
    record_id: str
    target_uri: str | None
    offset: int
    length: int
    headers: tuple[tuple[str, str], ...]


def iter_records(path: Path) -> Iterator[StoredRecord]:
    """List every record of a WARC file (headers and positions, not payloads)."""
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream, no_record_parse=True)
        for record in iterator:
            offset = iterator.get_record_offset()
            record.raw_stream.read()  # consume so the next offset and length are known
            length = iterator.get_record_length()
            headers = tuple(record.rec_headers.headers)
            yield StoredRecord(
                record_type=record.rec_type,
                record_id=record.rec_headers.get_header("WARC-Record-ID"),
                target_uri=record.rec_headers.get_header("WARC-Target-URI"),
                offset=offset,
                length=length,
                headers=headers,
            )
