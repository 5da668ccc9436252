"""The only network code: one HTTP/1.1 exchange, recorded exactly as it crossed the wire.

We drive the socket ourselves (an asyncio protocol per exchange) and let ``h11`` (a sans-I/O
HTTP/1.1 parser) interpret the bytes, so the bytes we store are the bytes we received: status
line, header order and case, chunk framing and content-coding intact (DESIGN.md section 2,
"response fidelity"; WARC 1.1 section 6.3.5: a response record's block is the full HTTP
response). Client libraries that hand back decoded bodies cannot give us that.

Each exchange uses its own connection with ``Connection: close``, so every record carries the
address and TLS session it really came over. Bodies are spooled to temporary files while they
are hashed, so memory stays flat whatever the response size.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import SplitResult

import h11

from provenance.capture.content import ContentType, parse_content_type
from provenance.capture.secrets import FIELD_NAME, FIELD_VALUE, redact_head
from provenance.hashing import RunningDigest
from provenance.timeutil import utc_now

READ_SIZE = 64 * 1024
SPOOL_IN_MEMORY = 1 << 20
MAX_HEAD_BYTES = 256 * 1024

Truncation = Literal["length", "time", "disconnect"]
#: The configured limit that ended an exchange early (CaptureSettings names them the same).
Limit = Literal["max_bytes", "total_timeout", "read_timeout", "connect_timeout"]

#: ``(host, address, is_user_url) -> reason`` or None; lets the caller refuse an address after
#: DNS, on the address actually connected to (so DNS rebinding cannot slip a private address
#: past it). For the URL the user gave it is told the address but may not refuse it.
AddressPolicy = Callable[[str, str, bool], str | None]

#: ``(host, port) -> addresses``; raises ``FetchError`` when the name does not resolve. The
#: default asks the system resolver; tests and benchmarks pass a fixed table instead, so that
#: host names never leave the machine (README, "Testing").
Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchError(Exception):
    """No usable HTTP response: DNS, connect, TLS, timeout before the head, malformed head."""

    def __init__(self, reason: str, *, peer_ip: str | None = None,
                 blocked: bool = False, limit: Limit | None = None) -> None:
        super().__init__(reason)
        self.limit = limit
        self.reason = reason
        self.peer_ip = peer_ip
        #: refused by the address policy: nothing was sent (a skip, not a failure)
        self.blocked = blocked


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_bytes: int = 100 * 1024 * 1024
    ca_bundle: Path | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    spool_dir: Path | None = None
    #: header names (lower case) whose values are redacted in the stored request / response
    redact_request: frozenset[str] = frozenset()
    redact_response: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TLSDetails:
    version: str
    cipher: str
    chain_der: tuple[bytes, ...]


@dataclass(frozen=True)
class SentRequest:
    """A request handed to the socket: what the record keeps of it, when, to which address."""

    #: as sent, secret header values redacted
    request_bytes: bytes
    redacted: tuple[str, ...]
    started_at: datetime
    peer_ip: str


@dataclass
class Exchange:
    """A finished request/response pair, with the raw bytes spooled for the WARC writer."""

    url: str
    #: the request as stored (secret header values redacted), when and where it went
    request: SentRequest
    response_head: bytes
    raw_body: IO[bytes]
    raw_body_digest: RunningDigest
    entity_digest: RunningDigest
    block_digest: RunningDigest
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    tls: TLSDetails | None
    entity: IO[bytes] | None = None
    truncated: Truncation | None = None
    problem: str | None = None
    completed_at: datetime = field(default_factory=utc_now)
    redacted_response: tuple[str, ...] = ()
    limit: Limit | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @cached_property
    def content_type(self) -> ContentType:
        """The first Content-Type field, parsed once (media type and charset are both read)."""
        return parse_content_type(self.header("Content-Type"))

    @property
    def media_type(self) -> str | None:
        return self.content_type.media_type

    @property
    def charset(self) -> str | None:
        return self.content_type.charset

    def close(self) -> None:
        self.raw_body.close()
        if self.entity is not None:
            self.entity.close()


def _request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _host_header(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets in Host (RFC 9112 section 3.2)
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


#: RFC 9112 section 3.2: a request target holds no space or control character.
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")


def request_head(target: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The bytes of a GET request with ``headers``: Host first, the rest in order.

    We write them ourselves rather than through h11, which is told about the request only
    once it has gone (``_Receiver.ready``): its validation and state machine take 25 µs a
    request measured alone and more among the event loop's other work, all of it before the
    request could leave (benchmarks/README.md). What h11 checks is checked here: the request
    target (RFC 9112 section 3.2), each field's name and value (RFC 9110 sections 5.1 and
    5.5; values to visible ASCII, stricter than h11), exactly one Host (RFC 9112 section
    3.2), and no Content-Length or Transfer-Encoding, since a GET has no body to frame.
    Host goes first as h11 writes it, as RFC 9110 section 7.2 asks.
    """
    if not _REQUEST_TARGET.fullmatch(target):
        raise FetchError(f"cannot send a request for {target!r}: not a valid request target")
    lines = [f"GET {target} HTTP/1.1", ""]  # the second line is Host's
    for name, value in headers:
        if not (FIELD_NAME.fullmatch(name) and FIELD_VALUE.fullmatch(value)):
            raise FetchError(f"cannot send the request: its {name!r} header field is not "
                             "valid HTTP (only visible ASCII, no line breaks, no space at "
                             "either end)")
        lowered = name.lower()
        if lowered == "host" and not lines[1]:
            lines[1] = f"{name}: {value}"
            continue
        if lowered == "host":
            raise FetchError("cannot send the request: it has two Host fields")
        if lowered in ("content-length", "transfer-encoding"):
            raise FetchError(f"cannot send the request: a GET has no body, so no {name!r} field")
        lines.append(f"{name}: {value}")
    if not lines[1]:
        raise FetchError("cannot send the request: it has no Host field")
    lines += ["", ""]
    return "\r\n".join(lines).encode("ascii")


def build_request(parts: SplitResult, settings: FetchSettings,
                  extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    headers = [
        ("Host", _host_header(parts)),
        ("User-Agent", settings.user_agent),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        # Only codings we can undo for text extraction; the stored body keeps whatever came.
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "close"),
    ]
    added = [*settings.extra_headers, *extra]
    overridden = {name.lower() for name, _ in added}
    headers = [h for h in headers if h[0].lower() not in overridden]
    headers.extend(added)
    return headers


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


# The private 3.11/3.12 certificate objects take an encoding constant that only _ssl exports.
_DER = getattr(ssl, "ENCODING_DER", None) or __import__("_ssl").ENCODING_DER


def _tls_details(transport: asyncio.BaseTransport) -> TLSDetails | None:
    ssl_object: Any = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    chain: list[bytes] = []
    # Python 3.13 made the chain public; 3.11/3.12 keep it on the private _sslobj.
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        for cert in getter() or []:
            chain.append(cert if isinstance(cert, bytes) else cert.public_bytes(_DER))
    if not chain:
        leaf = ssl_object.getpeercert(binary_form=True)
        if leaf:
            chain.append(leaf)
    cipher = ssl_object.cipher()
    return TLSDetails(
        version=str(ssl_object.version()),
        cipher=str(cipher[0]) if cipher else "",
        chain_der=tuple(chain),
    )


def _trailer_start(tail: bytes) -> int | None:
    """Offset in ``tail`` (the end of a chunked body) just after the last-chunk line.

    Walking back from the final blank line over the trailer fields, the first line without a
    colon is the last-chunk line ``0[;ext]`` (RFC 9112 section 7.1); h11 has already checked
    the framing.
    """
    lines = tail.split(b"\n")
    offset = len(tail)
    for line in reversed(lines[:-1]):  # the last element is what follows the final LF
        offset -= len(line) + 1
        bare = line.rstrip(b"\r")
        if bare and b":" not in bare and bare[:1] not in (b" ", b"\t"):
            return offset + len(line) + 1 if bare.split(b";")[0].strip(b"0") == b"" else None
    return None


#: a line end, then an empty line, each CRLF or bare LF (RFC 9112 section 2.2)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _is_informational(head: bytes | bytearray) -> bool:
    """Whether a response head is a 1xx interim one (RFC 9110 section 15.2; 101 aside)."""
    parts = bytes(head[:32]).split(None, 2)
    return len(parts) >= 2 and parts[1][:1] == b"1" and parts[1] != b"101"


def _find_head_end(buffer: bytes | bytearray, start: int = 0) -> int:
    """Index just past the first blank line at or after ``start``, or -1.

    The blank line ends a head (RFC 9112 section 2.2 tolerates bare LF). Callers pass where
    their previous search left off, less the 3 bytes a blank line can straddle: searching a
    growing head from its start on every read would be quadratic in its size, seconds of CPU
    for a 256 KiB head sent a byte at a time.
    """
    found = _BLANK_LINE.search(buffer, start)
    return found.end() if found else -1


def _describe_os_error(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed: {error.reason or error}"
    return error.strerror or str(error) or type(error).__name__


async def resolve(host: str, port: int) -> list[str]:
    try:
        # An address literal needs no lookup; getaddrinfo would still queue it on the
        # executor's few threads, delaying every connection behind it.
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise FetchError(f"DNS lookup failed for {host}: {error.strerror}") from None
    except UnicodeError:  # a name the IDNA codec refuses (parse_fetchable turns these away)
        raise FetchError(f"DNS lookup failed for {host}: not a valid host name") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def static_resolver(table: Mapping[str, Sequence[str]]) -> Resolver:
    """A resolver answering from ``table`` (host -> addresses); other names do not resolve.

    Address literals still need no table entry. The answer for a host may be a sequence that
    changes between calls (a list the caller mutates), which is how tests play DNS rebinding.
    """
    async def lookup(host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        addresses = table.get(host.lower())
        if not addresses:
            raise FetchError(f"DNS lookup failed for {host}: Name or service not known")
        return list(addresses)
    return lookup


def _spool(settings: FetchSettings) -> IO[bytes]:
    directory = str(settings.spool_dir) if settings.spool_dir else None
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=directory)


class _Receiver:
    """Feeds wire bytes to h11 while teeing them, unchanged, into the spools and digests."""

    def __init__(self, settings: FetchSettings, keep_entity: Callable[[str | None], bool],
                 target: str, headers: list[tuple[str, str]]) -> None:
        self.settings = settings
        self.keep_entity = keep_entity
        self._target = target
        self._headers = headers
        self._conn: h11.Connection | None = None
        self.head = bytearray()
        self.head_done = False
        self.raw_body = _spool(settings)
        self.entity: IO[bytes] | None = None
        self.raw_digest = RunningDigest()
        self.entity_digest = RunningDigest()
        self.block_digest = RunningDigest()
        self.response: h11.Response | None = None
        self.truncated: Truncation | None = None
        self.chunked = False
        self.redacted: tuple[str, ...] = ()
        self.limit: Limit | None = None
        #: 1xx heads came first (RFC 9110 section 15.2); the final head follows them
        self.informational = False
        self.interim = bytearray()  # heads after the first, until the final one is complete
        self._interim_start = 0  # where the next head in ``interim`` begins
        self.final_head_done = False

    @property
    def conn(self) -> h11.Connection:
        """h11's side of the exchange, told about the request after it has gone out.

        h11 parses only what comes back; the request went out as ``request_head`` wrote it.
        """
        self.ready()
        assert self._conn is not None
        return self._conn

    def ready(self) -> None:
        """Make h11's side of the exchange: once the requests are out, or when the answer comes.

        Not before the request is written: with 50 sources to send, every microsecond spent
        before a request leaves delays all the requests after it.
        """
        if self._conn is None:
            conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
            conn.send(h11.Request(method="GET", target=self._target, headers=self._headers))
            conn.send(h11.EndOfMessage())
            self._conn = conn

    def take(self, data: bytes) -> bytes:
        """Store ``data`` as received; return the part h11 should see (cut at the size cap)."""
        if not self.head_done:
            searched = max(0, len(self.head) - 3)
            self.head.extend(data)
            end = _find_head_end(self.head, searched)
            # Checked where the head ends, not per read: a read can be 256 KiB long.
            if (end if end >= 0 else len(self.head)) > MAX_HEAD_BYTES:
                raise FetchError("malformed HTTP response: header block too large")
            if end < 0:
                return data
            rest = bytes(self.head[end:])
            del self.head[end:]
            self.head_done = True
            self.informational = _is_informational(self.head)
            self.final_head_done = not self.informational
            # Secrets leave the head before anything is stored or hashed; h11 still parses
            # the bytes as received (the return value below).
            stored, self.redacted = redact_head(bytes(self.head), self.settings.redact_response)
            self.head = bytearray(stored)
            self.block_digest.update(stored)
            return data[: len(data) - len(rest)] + self.take(rest) if rest else data
        if not self.final_head_done:
            return self._take_interim(data)
        return self._take_body(data)

    def _take_interim(self, data: bytes) -> bytes:
        """Heads after a 1xx one: held back until the final head is complete, then redacted.

        The record keeps them where they came, after the first head, where warcio (and so
        ``warcio check``) counts them as payload; the entity digest covers the body alone.
        """
        searched = max(self._interim_start, len(self.interim) - 3)
        self.interim.extend(data)
        while True:
            end = _find_head_end(self.interim, searched)
            if (end if end >= 0 else len(self.interim)) > MAX_HEAD_BYTES:
                raise FetchError("malformed HTTP response: header block too large")
            if end < 0:
                return data
            is_final = not _is_informational(self.interim[self._interim_start:end])
            self._interim_start = searched = end
            if is_final:
                break
        start = self._interim_start
        heads, rest = bytes(self.interim[:start]), bytes(self.interim[start:])
        self.interim.clear()
        self.final_head_done = True
        stored, names = redact_head(heads, self.settings.redact_response)
        self.redacted += names
        self._take_body(stored)
        return data[: len(data) - len(rest)] + self._take_body(rest)

    def _take_body(self, data: bytes) -> bytes:
        room = self.settings.max_bytes - self.raw_digest.size
        if len(data) > room:
            data = data[: max(room, 0)]
            self.truncated = "length"
            self.limit = "max_bytes"
        if data:
            self.raw_body.write(data)
            self.raw_digest.update(data)
            self.block_digest.update(data)
        return data

    def on_response(self, event: h11.Response) -> None:
        self.response = event
        content_type: str | None = None
        for name, value in event.headers.raw_items():
            if name.lower() == b"content-type":
                # The first, as Exchange.media_type reads it: a body is kept for parsing
                # exactly when the media type the pipeline then acts on says it is parsed.
                if content_type is None:
                    content_type = value.decode("latin-1")
            elif name.lower() == b"transfer-encoding":
                self.chunked = True
        if self.keep_entity(parse_content_type(content_type).media_type):
            self.entity = _spool(self.settings)

    def capped(self) -> bool:
        return self.truncated == "length"

    def close(self) -> None:
        self.raw_body.close()
        if self.entity is not None:
            self.entity.close()

    def on_trailers(self, event: h11.EndOfMessage) -> None:
        """Redact secret fields of a chunked trailer section (RFC 9112 section 7.1.2).

        The trailer is the tail of the raw body, already spooled and hashed, so in this rare
        case the tail is rewritten and the digests recomputed from the spool.
        """
        names = self.settings.redact_response
        if not names or not any(name.lower().decode("latin-1") in names
                                for name, _ in event.headers.raw_items()):
            return
        self.raw_body.seek(max(0, self.raw_digest.size - MAX_HEAD_BYTES))
        tail_start = self.raw_body.tell()
        tail = self.raw_body.read()
        start = _trailer_start(tail)
        if start is None:
            return
        stored, redacted = redact_head(b"0\r\n" + tail[start:], names)
        self.redacted += redacted
        self.raw_body.seek(tail_start + start)
        self.raw_body.truncate()
        self.raw_body.write(stored[3:])
        # Recompute what covered the old tail: the raw body's digest and the block's.
        self.raw_body.seek(0)
        self.raw_digest, self.block_digest = RunningDigest(), RunningDigest()
        self.block_digest.update(bytes(self.head))
        while chunk := self.raw_body.read(READ_SIZE):
            self.raw_digest.update(chunk)
            self.block_digest.update(chunk)

    @property
    def entity_is_raw_body(self) -> bool:
        """Without a transfer coding or interim heads, the raw body is the entity."""
        return not (self.chunked or self.informational)

    def on_data(self, data: bytes) -> None:
        # When the entity is the raw body it was already hashed in take().
        if not self.entity_is_raw_body:
            self.entity_digest.update(data)
        if self.entity is not None:
            self.entity.write(data)


async def fetch(
    url: str,
    parts: SplitResult,
    settings: FetchSettings,
    *,
    keep_entity: Callable[[str | None], bool] = lambda _media: False,
    address_policy: AddressPolicy | None = None,
    is_user_url: bool = False,
    resolver: Resolver = resolve,
    request_headers: Sequence[tuple[str, str]] = (),
    on_request_sent: Callable[[SentRequest, Callable[[], None]], None] | None = None,
) -> Exchange:
    """GET ``url`` and return the recorded exchange, or raise ``FetchError``.

    ``on_request_sent`` is told what was sent once the request has been handed to the socket,
    with a function that readies the exchange to read the answer: a caller with time to
    spare before the answers come may call it then, else it is done as the answer arrives.
    """
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.total_timeout
    started = utc_now()
    target = _request_target(parts)
    headers = build_request(parts, settings, request_headers)
    request_bytes = request_head(target, headers)  # a request HTTP cannot carry: no lookup
    try:
        # A resolver that never answers must not outlast the connect timeout.
        async with asyncio.timeout(settings.connect_timeout):
            addresses = await resolver(host, port)
    except TimeoutError:
        raise FetchError(f"DNS lookup for {host} timed out after "
                         f"{settings.connect_timeout:g}s", limit="connect_timeout") from None

    def attempt(peer_ip: str) -> _ExchangeProtocol:
        # Each connection attempt has its own receiver: one that failed after its request
        # went out must leave nothing in the h11 state of the next.
        receiver = _Receiver(settings, keep_entity, target, headers)
        return _ExchangeProtocol(receiver, settings, request_bytes, deadline, peer_ip)

    protocol, peer_ip = await _connect(host, port, addresses, https, settings, address_policy,
                                       is_user_url, attempt)
    receiver = protocol.receiver
    sent = SentRequest(*redact_head(request_bytes, settings.redact_request), started, peer_ip)
    try:
        if on_request_sent is not None:
            on_request_sent(sent, receiver.ready)
        problem = await protocol.finished
        await protocol.closed()
    except BaseException:
        # FetchError, or cancellation (also while closing a finished exchange, which will
        # then never be returned): nothing of this exchange survives.
        protocol.discard()
        raise
    response = receiver.response
    if response is None:  # the protocol raises instead; kept for the type checker
        receiver.close()
        raise FetchError(problem or "no HTTP response", peer_ip=peer_ip)
    if receiver.entity is not None:
        receiver.entity.seek(0)
    receiver.raw_body.seek(0)
    return Exchange(
        url=url,
        request=sent,
        response_head=bytes(receiver.head),
        raw_body=receiver.raw_body,
        raw_body_digest=receiver.raw_digest,
        entity_digest=receiver.raw_digest if receiver.entity_is_raw_body
        else receiver.entity_digest,
        block_digest=receiver.block_digest,
        status=response.status_code,
        reason=response.reason.decode("latin-1"),
        http_version=response.http_version.decode("ascii"),
        headers=[(n.decode("latin-1"), v.decode("latin-1"))
                 for n, v in response.headers.raw_items()],
        tls=protocol.tls,
        entity=receiver.entity,
        truncated=receiver.truncated,
        problem=problem,
        redacted_response=receiver.redacted,
        limit=receiver.limit,
    )


async def _connect(
    host: str,
    port: int,
    addresses: Sequence[str],
    https: bool,
    settings: FetchSettings,
    address_policy: AddressPolicy | None,
    is_user_url: bool,
    attempt: Callable[[str], _ExchangeProtocol],
) -> tuple[_ExchangeProtocol, str]:
    """Connect to the first address that accepts; the request goes out once connected.

    ``attempt(address)`` makes the protocol of one connection attempt.
    """
    context = ssl_context(settings.ca_bundle) if https else None
    loop = asyncio.get_running_loop()
    last_problem = f"no address for {host}"
    limit: Limit | None = None
    refusal: str | None = None
    for address in addresses:
        if address_policy is not None:
            refused = address_policy(host, address, is_user_url)
            if refused is not None:
                # Another address of the same name may be acceptable; only if none is do we
                # report the refusal (and no packet was ever sent to a refused address).
                refusal = refusal or refused
                continue
        made: list[_ExchangeProtocol] = []
        make = functools.partial(_keep_attempt, made, attempt, address)
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _transport, protocol = await loop.create_connection(
                    make, address, port, ssl=context, server_hostname=host if https else None)
        except BaseException as error:
            # Connected (the request may even be out) but create_connection did not return:
            # a timeout or a cancellation between connection_made and its end. Nothing of
            # that attempt is kept, and nothing of it is left open. After such a timeout the
            # next address gets the same GET again, and only that one is recorded.
            for abandoned in made:
                abandoned.discard()
            if not isinstance(error, (TimeoutError, OSError)):
                raise
            if isinstance(error, TimeoutError):
                last_problem = f"connect timed out after {settings.connect_timeout:g}s"
                limit = "connect_timeout"
                continue
            last_problem = _describe_os_error(error)
            limit = None
            if isinstance(error, ssl.SSLError):
                break  # a TLS failure will not improve on another address of the same host
            continue
        return protocol, address
    if refusal is not None and last_problem == f"no address for {host}":
        raise FetchError(refusal, blocked=True)
    raise FetchError(last_problem, limit=limit)


def _keep_attempt(made: list[_ExchangeProtocol], attempt: Callable[[str], _ExchangeProtocol],
                  address: str) -> _ExchangeProtocol:
    made.append(attempt(address))
    return made[-1]


class _ExchangeProtocol(asyncio.Protocol):
    """One exchange, driven by the event loop's own callbacks.

    The request goes out in ``connection_made``, the moment the connection is up, and each
    read is handed to the receiver inside ``data_received``: no stream buffer in between, no
    task woken per read, one timer for both time limits. ``finished`` ends with the problem
    that cut the body short (None when it was whole), or with the ``FetchError`` of an
    exchange that gave no usable response.
    """

    def __init__(self, receiver: _Receiver, settings: FetchSettings, request_bytes: bytes,
                 deadline: float, peer_ip: str) -> None:
        self.receiver = receiver
        self._request = request_bytes
        self._settings = settings
        self._deadline = deadline
        self._peer_ip = peer_ip
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self.finished: asyncio.Future[str | None] = self._loop.create_future()
        self.tls: TLSDetails | None = None

    # The event loop's callbacks (asyncio.Protocol).

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._last_read = self._loop.time()
        self._arm()  # first: whatever follows, the exchange has its time limits
        self.tls = _tls_details(transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.finished.done():
            return  # bytes after the end of the message (or after a limit): not part of it
        self._last_read = self._loop.time()
        receiver = self.receiver
        try:
            kept = receiver.take(data)
            if kept:
                receiver.conn.receive_data(kept)
            elif receiver.capped():
                # The cap cut this read entirely; feeding h11 nothing would read as EOF.
                self._finish(self._over_cap())
                return
            self._advance()
        except FetchError as error:
            error.peer_ip = error.peer_ip or self._peer_ip
            self._fail(error)
        except Exception as error:  # a bug: the caller sees it all the same
            self._fail(error)

    def eof_received(self) -> bool:
        if not self.finished.done():
            try:
                self.receiver.conn.receive_data(b"")  # h11 decides if the message was whole
                self._advance()
            except Exception as error:
                self._fail(error)
        return False  # and close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self.finished.done():
            if exc is None:
                self.eof_received()
            elif isinstance(exc, ssl.SSLError):
                # Past the handshake: _describe_os_error would call it a handshake failure.
                self._cut(f"TLS error: {exc.reason or exc}")
            else:
                # A reset or another socket error before the message ended.
                self._cut(_describe_os_error(exc) if isinstance(exc, OSError) else str(exc))
        if not self.finished.done():
            self._cut("connection closed")
        if not self._lost.done():
            self._lost.set_result(None)

    # For ``fetch``.

    def discard(self) -> None:
        """Drop an exchange that will never be returned: connection, spools, its outcome."""
        if self._transport is not None:
            self._transport.abort()
        self.receiver.close()
        if not self.finished.done():
            self.finished.cancel()
        elif not self.finished.cancelled():
            self.finished.exception()  # read, so that asyncio does not report it unread

    async def closed(self) -> None:
        """Close the connection and wait (a second at most) until it is gone, else abort it.

        A TLS connection sends close_notify and waits for the peer's; a peer that keeps the
        connection open without answering would otherwise leave the transport open past the
        event loop. The exchange is recorded either way.
        """
        transport = self._transport
        if transport is None or self._lost.done():
            return
        if not transport.is_closing():
            # Only once: a second close() of a 3.11 SSL transport drops its protocol, after
            # which abort() does nothing.
            transport.close()
        # asyncio.wait, not a timeout around the await: a timeout would cancel the future.
        await asyncio.wait({self._lost}, timeout=1.0)
        if not self._lost.done():
            transport.abort()

    # Inside.

    def _advance(self) -> None:
        """Take h11's events until it needs more bytes or the message is complete."""
        receiver = self.receiver
        conn = receiver.conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                if receiver.response is None:
                    raise FetchError(f"malformed HTTP response: {error}",
                                     peer_ip=self._peer_ip) from None
                receiver.truncated = receiver.truncated or "disconnect"
                self._finish(f"malformed HTTP message body: {error}")
                return
            if event is h11.NEED_DATA:
                if receiver.capped():
                    self._finish(self._over_cap())
                return
            if isinstance(event, h11.Response):
                receiver.on_response(event)
            elif isinstance(event, h11.Data):
                receiver.on_data(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                if isinstance(event, h11.EndOfMessage):
                    receiver.on_trailers(event)
                self._finish(None)
                return
            # InformationalResponse (1xx) heads stay in the stored bytes; nothing else to do.

    def _over_cap(self) -> str:
        return f"response larger than the {self._settings.max_bytes}-byte cap; kept the prefix"

    def _arm(self) -> None:
        when = min(self._last_read + self._settings.read_timeout, self._deadline)
        self._timer = self._loop.call_at(when, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        """One timer for both limits, re-armed when it fires (not on every read)."""
        self._timer = None
        if self.finished.done():
            return
        now = self._loop.time()
        settings = self._settings
        if now >= self._deadline:
            self._time_out(f"total time limit of {settings.total_timeout:g}s hit",
                           "total_timeout")
        elif now >= self._last_read + settings.read_timeout:
            self._time_out(f"read timed out after {settings.read_timeout:g}s", "read_timeout")
        else:
            self._arm()

    def _time_out(self, message: str, limit: Limit) -> None:
        receiver = self.receiver
        if receiver.response is None:
            self._fail(FetchError(message, limit=limit, peer_ip=self._peer_ip))
            return
        receiver.truncated = "time"
        receiver.limit = limit
        self._finish(message)

    def _cut(self, problem: str) -> None:
        """The connection ended before h11 saw the end of the message."""
        receiver = self.receiver
        if receiver.response is None:
            self._fail(FetchError(problem, peer_ip=self._peer_ip))
            return
        receiver.truncated = receiver.truncated or "disconnect"
        self._finish(problem)

    # Both settle ``finished`` before they close the connection: closing a TLS transport can
    # run eof_received at once (a close_notify read with the last bytes), which must find the
    # exchange ended, or h11's view of the EOF would replace the reason it ended.

    def _finish(self, problem: str | None) -> None:
        if not self.finished.done():
            self.finished.set_result(problem)
        self._stop()

    def _fail(self, error: Exception) -> None:
        if not self.finished.done():
            self.finished.set_exception(error)
        self._stop()

    def _stop(self) -> None:
        self._disarm()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
