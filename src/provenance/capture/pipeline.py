"""Capture orchestration: article, requisites, linked sources, records, manifest, commit.

Named steps, one direction of data: fetch (``fetch.py``) -> record (``warc.py``) -> extract
(``extract.py``) -> describe (``models.py``) -> commit (``storage.py``). Every failure to fetch
something is a fact recorded in the manifest, not an exception; only problems with the request
itself or the local machine raise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import platform
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import SplitResult, urljoin

from cryptography import x509

from provenance import __version__, signing
from provenance.capture.content import UnsupportedEncodingError, decoded_prefix
from provenance.capture.events import Notice, Observer, PhaseStarted, ResourceDone, ignore
from provenance.capture.extract import (
    ArticleExtraction,
    PageReading,
    css_references,
    read_article,
)
from provenance.capture.fetch import (
    AddressPolicy,
    Exchange,
    FetchError,
    FetchSettings,
    Resolver,
    SentRequest,
    fetch,
    resolve,
)
from provenance.capture.guard import AddressGuard
from provenance.capture.options import CaptureSettings
from provenance.capture.secrets import (
    SECRET_RESPONSE_HEADERS,
    cookie_header,
    load_cookie_file,
    redaction_fields,
    request_secrets,
)
from provenance.capture.urls import (
    FETCHABLE_SCHEMES,
    UnfetchableURLError,
    first_match,
    parse_fetchable,
    scheme_of,
    without_fragment,
)
from provenance.catalog import previous_capture, record_capture
from provenance.errors import (
    InterruptedAfterCommitError,
    OperationalError,
    ProvenanceError,
    UsageError,
)
from provenance.hashing import hash_bytes
from provenance.ids import new_capture_id
from provenance.manifest import LoadedManifest, canonical_bytes
from provenance.models import (
    MANIFEST_MEDIA_TYPE,
    SCHEMA_VERSION,
    ArticleText,
    BodyLink,
    BundleFile,
    CaptureOptions,
    CaptureState,
    Certificate,
    LimitHit,
    LimitName,
    Manifest,
    PageMetadata,
    PreviousCapture,
    RedirectHop,
    Resource,
    Role,
    Signer,
    TLSSession,
    ToolInfo,
    WarcLocation,
)
from provenance.storage import (
    MANIFEST_PATH,
    RAW_SIGNATURE_PATH,
    SIGNATURE_PATH,
    PendingBundle,
    open_pending,
    remove_stale_temporaries,
)
from provenance.timestamps import StampOutcome, stamp_bundle
from provenance.timeutil import Clock, rfc3339, utc_now
from provenance.warc import (
    PreparedRecord,
    RecordLocation,
    WarcFile,
    new_record_id,
    prepare_request,
    warc_fields,
    write_bytes_record,
    write_exchange,
)

T = TypeVar("T")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PARSED_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/css"})
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_CSS_DEPTH = 3
INLINE_RECORD_BYTES = 64 * 1024
#: pages up to this size are read on the event loop's thread, bigger ones in a worker
INLINE_PAGE_BYTES = 1024 * 1024
#: article texts up to this size get their record while the sources answer (compressing a
#: bigger one would hold up the reading of the answers), bigger ones at the end
INLINE_TEXT_CHARACTERS = 256 * 1024
#: Body links listed one by one in the manifest (at least --max-links are). Past this a page is
#: an index or an attack: 100,000 listed links made a 40 MB manifest and cost 8 s and 360 MB
#: (tests/test_bad_input.py); the rest are counted in ``limits_hit`` instead.
LISTED_LINKS = 5_000
DEPENDENCIES = ("warcio", "h11", "cryptography", "bcrypt", "pydantic", "rfc8785",
                "rfc3161-client", "asn1crypto", "trafilatura", "lxml", "lxml_html_clean",
                "tinycss2", "charset-normalizer", "platformdirs", "typer", "rich", "pypdf")


class SigningIdentity:
    """Whoever signs the manifest: a fingerprint, a public key line and a signing function."""

    def __init__(self, fingerprint: str, public_key: str, namespace: str,
                 sign: Callable[[bytes], bytes], sign_raw: Callable[[bytes], bytes]) -> None:
        self.fingerprint = fingerprint
        self.public_key = public_key
        self.namespace = namespace
        #: SSHSIG armored signature (``ssh-keygen -Y verify``)
        self.sign = sign
        #: plain Ed25519 over the same bytes (``openssl pkeyutl -verify -rawin``)
        self.sign_raw = sign_raw

    @classmethod
    def from_key(cls, private_key: signing.PrivateKey) -> SigningIdentity:
        """Sign with an Ed25519 key held in memory (SSHSIG + raw, fixed namespace)."""
        public = private_key.public_key()
        return cls(
            fingerprint=signing.fingerprint(public),
            public_key=signing.public_key_openssh(public),
            namespace=signing.SIGNATURE_NAMESPACE,
            sign=lambda message: signing.sign_message(private_key, message),
            sign_raw=lambda message: signing.raw_signature(private_key, message),
        )


@dataclass(frozen=True)
class CaptureResult:
    capture_id: str
    bundle: Path
    manifest: Manifest
    manifest_bytes: bytes
    timestamps: tuple[StampOutcome, ...] = ()


@dataclass
class _Hop:
    resource: Resource
    exchange: Exchange | None


@dataclass
class _Outgoing:
    """One hop's request: once sent, its request record can be prepared before the answer."""

    url: str
    sent: SentRequest | None = None
    #: readies the exchange to read its answer (fetch's ``on_request_sent``)
    ready: Callable[[], None] | None = None
    record: PreparedRecord | None = None
    recorded: bool = False

    @functools.cached_property
    def response_id(self) -> str:
        # Made when first needed, once the requests are out (a uuid4 takes 4 µs).
        return new_record_id()


@dataclass
class _Chain:
    """A URL followed through its redirects; ``final`` keeps the last exchange open."""

    url: str
    hops: list[Resource] = field(default_factory=list)
    final: Exchange | None = None
    failure: str | None = None
    #: the address guard refused a hop: a skip by policy, not a failure of the source
    blocked: bool = False

    @property
    def final_resource(self) -> Resource | None:
        return self.hops[-1] if self.hops else None


@functools.cache
def _dependency_versions() -> dict[str, str]:
    versions = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _tool_info() -> ToolInfo:
    return ToolInfo(
        name="provenance",
        version=__version__,
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        dependencies=dict(_dependency_versions()),
    )


def _options_record(settings: CaptureSettings) -> CaptureOptions:
    return CaptureOptions(
        links=settings.links,
        include=list(settings.include),
        exclude=list(settings.exclude),
        requisites=settings.requisites,
        concurrency=settings.concurrency,
        per_host=settings.per_host,
        connect_timeout_ms=round(settings.connect_timeout * 1000),
        read_timeout_ms=round(settings.read_timeout * 1000),
        total_timeout_ms=round(settings.total_timeout * 1000),
        max_redirects=settings.max_redirects,
        max_bytes=settings.max_bytes,
        max_links=settings.max_links,
        max_decoded_bytes=settings.max_decoded_bytes,
        allow_private=settings.allow_private,
        user_agent=settings.user_agent,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        request_headers=[name for name, _ in settings.extra_headers],
        cookie_file=settings.cookie_file is not None,
        keep_secrets=settings.keep_secrets,
    )


def _location(bundle_rel_dir: str, location: RecordLocation) -> WarcLocation:
    return WarcLocation(file=f"{bundle_rel_dir}/{location.warc_file}",
                        record_id=location.record_id, offset=location.offset,
                        length=location.length)


def _certificate(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=rfc3339(cert.not_valid_before_utc, micros=False),
        not_after=rfc3339(cert.not_valid_after_utc, micros=False),
        sha256=hash_bytes(der),
    )


Origin = tuple[str, str, int]


def _origin(parts: SplitResult) -> Origin:
    """Scheme, host and port of a URL, the default port filled in (RFC 6454 section 4)."""
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _resolve(base: str, reference: str) -> str | None:
    """``reference`` made absolute against ``base`` (RFC 3986 section 5), or None if malformed."""
    try:
        return urljoin(base, reference.strip())
    except ValueError:
        return None


class _Session:
    """One capture's shared state: the WARC, the limits, every resource fetched so far."""

    def __init__(self, settings: CaptureSettings, warc: WarcFile, spool_dir: Path,
                 observer: Observer, address_policy: AddressPolicy | None,
                 resolver: Resolver, article_origin: Origin) -> None:
        self.settings = settings
        self.resolver = resolver
        self.article_origin = article_origin
        self.cookies = load_cookie_file(settings.cookie_file) if settings.cookie_file else None
        redact = settings.authenticated and not settings.keep_secrets
        self.warc = warc
        self.observer = observer
        self.address_policy = address_policy
        self.fetch_settings = FetchSettings(
            user_agent=settings.user_agent,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            total_timeout=settings.total_timeout,
            max_bytes=settings.max_bytes,
            ca_bundle=settings.ca_bundle,
            spool_dir=spool_dir,
            redact_request=request_secrets(settings.extra_headers) if redact else frozenset(),
            redact_response=SECRET_RESPONSE_HEADERS if redact else frozenset(),
        )
        self.resources: list[Resource] = []
        self.limits: list[LimitHit] = []
        self.tls_sessions: dict[tuple[str, int], TLSSession] = {}
        self._tls_seen: set[tuple[str, int]] = set()
        self.chains: dict[str, asyncio.Task[_Chain]] = {}
        #: per chain: done once its first request is on the wire (or the chain ended without).
        #: A chain task cancelled before its first step never settles its future; that only
        #: happens when the whole capture is being torn down, and nobody waits then.
        self.first_request: dict[str, asyncio.Future[None]] = {}
        #: sent requests that ``prepare_for_answers`` will ready (it runs once; requests sent
        #: after it are readied and recorded the ordinary way, as their answers come)
        self._awaiting_answer: list[_Outgoing] | None = []
        self.overall = asyncio.Semaphore(settings.concurrency)
        self.per_host: dict[str, asyncio.Semaphore] = {}

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        if host not in self.per_host:
            self.per_host[host] = asyncio.Semaphore(self.settings.per_host)
        return self.per_host[host]

    def _next_id(self) -> str:
        return f"r{len(self.resources) + 1}"

    def note_limit(self, limit: LimitName, url: str, detail: str,
                   resource: str | None = None) -> None:
        self.limits.append(LimitHit(limit=limit, url=url, resource=resource, detail=detail))

    def _add(self, resource: Resource) -> Resource:
        self.resources.append(resource)
        self.observer(ResourceDone(url=resource.url, role=resource.role,
                                   outcome=resource.outcome, status=resource.status,
                                   size=resource.bytes, sha256=resource.sha256,
                                   reason=resource.reason))
        return resource

    def get(self, url: str, role: Role, *, is_user_url: bool = False) -> asyncio.Task[_Chain]:
        """Fetch ``url`` once per capture, whoever asks for it first (dedupes across roles)."""
        key = without_fragment(url)
        if key not in self.chains:
            sent = self.first_request[key] = asyncio.get_running_loop().create_future()
            self.chains[key] = asyncio.create_task(self._chain(key, role, is_user_url, sent))
        return self.chains[key]

    async def requests_sent(self, urls: Iterable[str]) -> None:
        """Wait until each URL's first request has been sent, or its fetch has ended.

        Only then is the event loop idle until the answers come: the time to do work that
        must not delay any request. URLs queued behind ``--per-host`` wait their turn.
        """
        pending = [self.first_request[without_fragment(url)] for url in urls]
        if pending:
            await asyncio.wait(pending)

    def prepare_for_answers(self) -> None:
        """Ready the exchanges still awaiting an answer, and serialise their request records.

        Done while the loop is idle (``requests_sent``), this takes about a third of the
        recording work off the moment the answers arrive, all at once.
        """
        for outgoing in self._awaiting_answer or ():
            sent = outgoing.sent
            if sent is None or outgoing.recorded or outgoing.record is not None:
                continue
            if outgoing.ready is not None:
                outgoing.ready()
            outgoing.record = prepare_request(
                target_uri=outgoing.url, date=sent.started_at, peer_ip=sent.peer_ip,
                request_bytes=sent.request_bytes, concurrent_to=outgoing.response_id,
                extra_headers=redaction_fields(sent.redacted))
        self._awaiting_answer = None

    async def _chain(self, url: str, role: Role, is_user_url: bool,
                     sent: asyncio.Future[None]) -> _Chain:
        try:
            return await self._follow(url, role, is_user_url, functools.partial(_settle, sent))
        finally:
            _settle(sent)

    async def _follow(self, url: str, role: Role, is_user_url: bool,
                      on_first_sent: Callable[[], None]) -> _Chain:
        chain = _Chain(url=url)
        seen: set[str] = set()
        current = url
        for hop_number in range(self.settings.max_redirects + 1):
            seen.add(current)
            hop = await self._hop(current, role, is_user_url and hop_number == 0,
                                  on_first_sent if hop_number == 0 else None)
            chain.hops.append(hop.resource)
            exchange = hop.exchange
            if exchange is None:
                chain.failure = hop.resource.reason
                chain.blocked = hop.resource.outcome == "skipped"
                return chain
            target = exchange.header("Location")
            if exchange.status not in REDIRECT_STATUSES or not target:
                chain.final = exchange
                return chain
            exchange.close()
            resolved = _resolve(current, target)
            if resolved is None:
                chain.failure = f"redirect to a malformed Location: {target!r}"
                return chain
            next_url = without_fragment(resolved)
            if next_url in seen:
                chain.failure = f"redirect loop: {next_url} was already visited"
                self.note_limit("max_redirects", url, chain.failure, hop.resource.id)
                return chain
            if scheme_of(next_url) not in FETCHABLE_SCHEMES:
                chain.failure = f"redirect to unsupported scheme: {next_url}"
                return chain
            current = next_url
        chain.failure = f"too many redirects (more than {self.settings.max_redirects})"
        self.note_limit("max_redirects", url, chain.failure, chain.hops[-1].id)
        return chain

    async def _hop(self, url: str, role: Role, is_user_url: bool,
                   on_sent: Callable[[], None] | None = None) -> _Hop:
        try:
            parts = parse_fetchable(url)
        except UnfetchableURLError as error:
            return _Hop(self._add(Resource(id=self._next_id(), url=url, role=role,
                                           outcome="failed", reason=str(error))), None)
        host = parts.hostname or ""
        outgoing = _Outgoing(url)

        def request_sent(request: SentRequest, ready: Callable[[], None]) -> None:
            outgoing.sent = request
            outgoing.ready = ready
            if self._awaiting_answer is not None:
                self._awaiting_answer.append(outgoing)
            if on_sent is not None:
                on_sent()

        # Host slot first: a task waiting on a busy host must not hold an overall slot that a
        # fetch from another host could use.
        async with self._host_slot(host), self.overall:
            try:
                exchange = await fetch(
                    url, parts, self.fetch_settings,
                    keep_entity=lambda media: media in PARSED_MEDIA_TYPES,
                    address_policy=self.address_policy, is_user_url=is_user_url,
                    resolver=self.resolver, request_headers=self._credentials(url, parts),
                    on_request_sent=request_sent)
            except FetchError as error:
                failed = self._add(Resource(
                    id=self._next_id(), url=url, role=role,
                    outcome="skipped" if error.blocked else "failed",
                    reason=error.reason, peer_ip=error.peer_ip,
                    fetched_at=rfc3339(utc_now())))
                if error.limit is not None:
                    self.note_limit(error.limit, url, error.reason, failed.id)
                return _Hop(failed, None)
        try:
            return _Hop(await self._record(url, role, parts.hostname or "", parts.port, exchange,
                                           outgoing), exchange)
        except BaseException:
            exchange.close()
            raise

    def _credentials(self, url: str, parts: SplitResult) -> list[tuple[str, str]]:
        """``--header`` fields (the article's origin only) and the cookies the jar gives ``url``.

        An origin is scheme, host and port (RFC 6454): credentials meant for
        https://news.example must not go to another port of that host, nor over plain HTTP.
        """
        same_origin = _origin(parts) == self.article_origin
        headers = list(self.settings.extra_headers) if same_origin else []
        if self.cookies is not None:
            cookie = cookie_header(self.cookies, url)
            if cookie:
                headers.append(("Cookie", cookie))
        return headers

    async def _record(self, url: str, role: Role, host: str, port: int | None,
                      exchange: Exchange, outgoing: _Outgoing) -> Resource:
        """Write the exchange's records and describe it as a manifest resource."""
        outgoing.recorded = True
        sent = exchange.request
        write = functools.partial(
            write_exchange, self.warc, target_uri=url, date=sent.started_at,
            peer_ip=sent.peer_ip, request_bytes=sent.request_bytes,
            response_head=exchange.response_head, raw_body=exchange.raw_body,
            block_digest=exchange.block_digest, payload_digest=exchange.raw_body_digest,
            truncated=exchange.truncated,
            extra_request_headers=redaction_fields(sent.redacted),
            extra_response_headers=redaction_fields(exchange.redacted_response),
            response_id=outgoing.response_id, request_record=outgoing.record)
        # Small records take less time to write than a thread hop costs; large ones go to a
        # worker thread so that compressing them never stalls the other transfers.
        if exchange.raw_body_digest.size <= INLINE_RECORD_BYTES:
            response, request = write()
        else:
            response, request = await asyncio.to_thread(write)
        exchange.raw_body.close()
        await self._note_tls(host, port or 443, url, exchange, response)
        is_redirect = exchange.status in REDIRECT_STATUSES and exchange.header("Location")
        transfer = exchange.header("Transfer-Encoding")
        resource = Resource(
            id=self._next_id(),
            url=url,
            role="redirect" if is_redirect else role,
            outcome="truncated" if exchange.truncated else "captured",
            reason=exchange.problem,
            status=exchange.status,
            media_type=exchange.media_type,
            bytes=exchange.entity_digest.size,
            sha256=exchange.entity_digest.label(),
            content_encoding=exchange.header("Content-Encoding"),
            transfer_encoding=transfer.lower() if transfer else None,
            location=_resolve(url, exchange.header("Location") or "") if is_redirect else None,
            peer_ip=sent.peer_ip,
            fetched_at=rfc3339(sent.started_at),
            response=_location("archive", response),
            request=_location("archive", request),
            redacted_request_headers=list(sent.redacted) or None,
            redacted_response_headers=list(exchange.redacted_response) or None,
        )
        if exchange.limit is not None:
            self.note_limit(exchange.limit, url, exchange.problem or exchange.limit, resource.id)
        return self._add(resource)

    async def _note_tls(self, host: str, port: int, url: str, exchange: Exchange,
                        response: RecordLocation) -> None:
        """Keep each TLS endpoint's chain, version and cipher once (a ``metadata`` record)."""
        tls = exchange.tls
        if tls is None or (host, port) in self._tls_seen:
            return
        self._tls_seen.add((host, port))
        pem = [ssl.DER_cert_to_PEM_cert(der) for der in tls.chain_der]
        body = json.dumps({"host": host, "port": port, "tls_version": tls.version,
                           "cipher": tls.cipher, "peer_ip": exchange.request.peer_ip,
                           "certificate_chain_pem": pem}, indent=2).encode()
        record = await asyncio.to_thread(
            write_bytes_record, self.warc, "metadata", url, exchange.request.started_at,
            "application/json", body, [("WARC-Refers-To", response.record_id)])
        self.tls_sessions[(host, port)] = TLSSession(
            host=host, port=port, version=tls.version, cipher=tls.cipher,
            certificates=[_certificate(der) for der in tls.chain_der],
            record=_location("archive", record))


@dataclass(frozen=True)
class _LinkPlan:
    """The body links of a page: per link, why it is skipped (or None), and the fetches sent."""

    skips: list[str | None]
    tasks: dict[int, asyncio.Task[_Chain]]


@dataclass
class _ArticleOutcome:
    chain: _Chain
    reading: PageReading | None
    kind: Literal["html", "document", "none"]
    #: the reading finished: link texts and page metadata (after the links are sent)
    extraction: ArticleExtraction | None = None
    #: the conversion record of the article's text, once written
    text: ArticleText | None = None


def _decoded(session: _Session, chain: _Chain, exchange: Exchange) -> bytes | None:
    """The entity with its content coding undone, at most ``max_decoded_bytes`` of it."""
    if exchange.entity is None:
        return None
    exchange.entity.seek(0)
    limit = session.settings.max_decoded_bytes
    try:
        data, cut = decoded_prefix(exchange.entity, exchange.header("Content-Encoding"), limit)
    except UnsupportedEncodingError:
        return None
    if cut:
        final = chain.hops[-1]
        session.note_limit("max_decoded_bytes", final.url,
                           f"only the first {limit} decoded bytes were parsed for text and "
                           f"links (the record keeps the whole response)", final.id)
    return data


class _Capture:
    def __init__(self, url: str, settings: CaptureSettings, pending: PendingBundle,
                 observer: Observer, clock: Clock, address_policy: AddressPolicy | None,
                 resolver: Resolver, article_origin: Origin) -> None:
        self.url = url
        self.settings = settings
        self.pending = pending
        self.observer = observer
        self.clock = clock
        self.warc_name = f"{pending.capture_id}.warc.gz"
        self.warc = WarcFile(pending.path / "archive" / self.warc_name)
        self.session = _Session(settings, self.warc, pending.path.parent, observer,
                                address_policy, resolver, article_origin)
        self.store_work = _StoreWork(pending.store, url)

    def write_warcinfo(self, started: datetime) -> None:
        fields = [
            ("software", f"provenance/{__version__}"),
            ("format", "WARC File Format 1.1"),
            ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/"
                           "warc-format/warc-1.1/"),
            ("isPartOf", self.pending.capture_id),
            ("description", f"capture of {self.url} and the sources its body links to"),
            ("http-header-user-agent", self.settings.user_agent),
            ("robots", "ignore"),
            ("python", platform.python_version()),
            ("platform", platform.platform()),
            ("options", json.dumps(_options_record(self.settings).model_dump(mode="json"),
                                   sort_keys=True)),
            ("payload-digest", "sha256 of the payload as stored (chunk framing included)"),
        ]
        write_bytes_record(self.warc, "warcinfo", None, started, "application/warc-fields",
                           warc_fields(fields), [("WARC-Filename", self.warc_name)])

    async def article(self) -> _ArticleOutcome:
        self.observer(PhaseStarted("article", self.url))
        chain = await self.session.get(self.url, "article", is_user_url=True)
        final = chain.final
        if final is None or final.status >= 400:
            return _ArticleOutcome(chain, None, "none")
        if final.media_type in HTML_MEDIA_TYPES:
            body = _decoded(self.session, chain, final)
            if body is not None:
                page = chain.hops[-1]
                read = functools.partial(read_article, body, page.url, final.charset,
                                         max_links=max(LISTED_LINKS, self.settings.max_links))
                # A usual page on the event loop's own thread: nothing else is in flight yet,
                # and a hop to a worker thread and back cost 2-4 ms of the 50-source
                # benchmark's critical path (benchmarks/README.md). A big one (seconds of
                # parsing at worst) in a worker, so that Ctrl-C is not kept waiting.
                reading = read() if len(body) <= INLINE_PAGE_BYTES else await _in_thread(read)
                if reading.truncated:
                    self.session.note_limit("max_markup", page.url, reading.truncated,
                                            page.id)
                if reading.more_links:
                    self.session.note_limit(
                        "listed_links", page.url,
                        f"{reading.more_links} more body link(s) past the first "
                        f"{len(reading.link_urls)} were counted, not listed or followed",
                        page.id)
                return _ArticleOutcome(chain, reading, "html")
        return _ArticleOutcome(chain, None, "document")

    async def requisites(self, reading: PageReading) -> None:
        if not self.settings.requisites:
            return
        self.observer(PhaseStarted("requisites", f"{len(reading.requisites)} found"))
        pending = [self._requisite(r.url, 0) for r in reading.requisites
                   if scheme_of(r.url) in FETCHABLE_SCHEMES]
        await asyncio.gather(*pending)

    async def _requisite(self, url: str, depth: int) -> None:
        chain = await self.session.get(url, "requisite")
        final = chain.final
        if final is None:
            return
        if final.media_type == "text/css" and depth < MAX_CSS_DEPTH:
            css = _decoded(self.session, chain, final)
            if css is not None:
                base = chain.hops[-1].url
                nested = [u for u in css_references(css, base)
                          if scheme_of(u) in FETCHABLE_SCHEMES]
                await asyncio.gather(*(self._requisite(u, depth + 1) for u in nested))

    async def send_links(self, reading: PageReading, article_urls: set[str]) -> _LinkPlan:
        """Decide which body links to follow and start fetching them, one by one."""
        skips: list[str | None] = []  # per body link: why it is skipped, or None to follow it
        chosen: set[str] = set()
        for url in reading.link_urls:
            reason = self._skip_reason(url, article_urls, chosen, len(chosen))
            if reason is None:
                chosen.add(without_fragment(url))
            skips.append(reason)
        self.observer(PhaseStarted("links", f"{len(chosen)} of {len(skips)} to follow"))
        over = sum(1 for reason in skips if reason == self._over_limit_reason())
        if over:
            self.session.note_limit("max_links", self.url, f"{over} more body link(s) than the "
                                    f"limit of {self.settings.max_links} were not followed")
        tasks: dict[int, asyncio.Task[_Chain]] = {}
        for index, (url, reason) in enumerate(zip(reading.link_urls, skips, strict=True)):
            if reason is None:
                tasks[index] = self.session.get(url, "linked_source")
                # One pass of the loop per source: the connections made so far send their
                # requests now, not all together once the last one is up, so the answers
                # come back spread out as well and each is recorded as it comes, instead of
                # 50 queueing at once (5.9 ms of the 50-source benchmark; benchmarks/README).
                await asyncio.sleep(0)
        return _LinkPlan(skips, tasks)

    async def links(self, article: _ArticleOutcome, plan: _LinkPlan) -> list[BodyLink]:
        """Wait for the body links; finish reading the page while they are on their way."""
        reading = article.reading
        assert reading is not None  # only an HTML article has body links to send
        skips, tasks = plan.skips, plan.tasks
        # Work that no request should wait for is done once the requests are out, while the
        # sources take their time to answer: the catalog lookup of the previous capture, the
        # request records (written beside each response), the anchor texts, contexts and page
        # metadata the manifest needs, and the article text's record (together about 5 ms of
        # the 50-source benchmark; benchmarks/README.md).
        await self.session.requests_sent(reading.link_urls[index] for index in tasks)
        self.store_work.start()  # first: its file and SQLite work overlaps what follows
        self.session.prepare_for_answers()
        # In a worker thread: on a very large page the metadata take a second or more, and
        # the loop must go on reading the answers meanwhile. The worker only computes; what
        # is written into the WARC is written here.
        extraction = article.extraction = await _in_thread(reading.finish)
        if len(extraction.text) <= INLINE_TEXT_CHARACTERS:
            article.text = self.write_text(article)  # else at the end: compressing takes long
        await asyncio.gather(*tasks.values())
        results = []
        for index, (link, reason) in enumerate(zip(extraction.body_links, skips, strict=True)):
            base = {"url": link.url, "text": link.text, "context": link.context}
            if reason is not None:
                results.append(BodyLink(**base, outcome="skipped", reason=reason))
                continue
            chain = tasks[index].result()
            results.append(self._link_result(base, chain))
        return results

    def _over_limit_reason(self) -> str:
        return f"over the limit of {self.settings.max_links} linked sources (--max-links)"

    def _skip_reason(self, url: str, article_urls: set[str], chosen: set[str],
                     followed: int) -> str | None:
        scheme = scheme_of(url)
        if scheme in FETCHABLE_SCHEMES:
            try:
                parse_fetchable(url)
            except UnfetchableURLError as error:
                return str(error)
        elif scheme:
            return f"{scheme}: links are not fetched"
        else:
            return "not a fetchable URL"
        if self.settings.links == "none":
            return "links not followed (--links none)"
        bare = without_fragment(url)
        if bare in article_urls:
            return "fragment-only link into the article" if bare != url else "the article itself"
        if bare in chosen:
            return "duplicate of an earlier link"
        if self.settings.include and first_match(url, self.settings.include) is None:
            return "not matched by --include"
        excluded = first_match(url, self.settings.exclude)
        if excluded is not None:
            return f"matched --exclude {excluded}"
        if followed >= self.settings.max_links:
            return self._over_limit_reason()
        return None

    @staticmethod
    def _link_result(base: dict[str, str], chain: _Chain) -> BodyLink:
        final = chain.final_resource
        ids = [hop.id for hop in chain.hops]
        if chain.blocked:
            return BodyLink(**base, outcome="skipped", reason=chain.failure, chain=ids)
        if chain.failure is not None or final is None or final.status is None:
            return BodyLink(**base, outcome="failed", reason=chain.failure or "not fetched",
                            chain=ids)
        if final.status >= 400:
            reason = f"HTTP {final.status}"
            return BodyLink(**base, outcome="failed", reason=reason, final_url=final.url,
                            resource=final.id, chain=ids)
        note = f"truncated: {final.reason}" if final.outcome == "truncated" else None
        return BodyLink(**base, outcome="captured", reason=note, final_url=final.url,
                        resource=final.id, chain=ids)

    def write_text(self, outcome: _ArticleOutcome) -> ArticleText | None:
        extraction = outcome.extraction
        article = outcome.chain.final_resource
        if extraction is None or article is None or article.response is None:
            return None
        body = extraction.text.encode("utf-8")
        media_type = "text/plain; charset=utf-8"
        # A conversion record: the article's text, derived from the response it refers to
        # (WARC 1.1 section 6.8).
        record = write_bytes_record(self.warc, "conversion", article.url, self.clock(),
                                    media_type, body,
                                    [("WARC-Refers-To", article.response.record_id)])
        return ArticleText(record=_location("archive", record), bytes=len(body),
                           sha256=hash_bytes(body), media_type=media_type)


def _state(article: _ArticleOutcome, links: list[BodyLink],
           resources: list[Resource]) -> tuple[CaptureState, str | None]:
    final = article.chain.final_resource
    if article.chain.failure is not None or final is None or final.status is None:
        return "FAILED", f"the article could not be fetched: {article.chain.failure}"
    if final.status >= 400:
        return "FAILED", f"the article answered HTTP {final.status}"
    failed_links = [link for link in links if link.outcome == "failed"]
    cut_links = [link for link in links if link.outcome == "captured" and link.reason]
    broken_requisites = [r for r in resources if r.role == "requisite"
                         and r.outcome in ("failed", "truncated")]
    problems = []
    if final.outcome == "truncated":
        problems.append(f"the article response was cut short ({final.reason})")
    if cut_links:
        problems.append(f"{len(cut_links)} linked source(s) truncated")
    if failed_links:
        problems.append(f"{len(failed_links)} linked source(s) failed")
    if broken_requisites:
        problems.append(f"{len(broken_requisites)} page requisite(s) not fully fetched")
    if problems:
        return "PARTIAL", "; ".join(problems)
    return "COMPLETE", None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _close_exchanges(session: _Session) -> None:
    for task in session.chains.values():
        if task.done() and not task.cancelled() and task.exception() is None:
            final = task.result().final
            if final is not None:
                final.close()


@dataclass
class _RunResult:
    article: _ArticleOutcome | None = None
    links: list[BodyLink] = field(default_factory=list)


async def _run(capture: _Capture, started: datetime, result: _RunResult) -> None:
    """The network part of a capture; its outcome goes into ``result``, not the task's result.

    asyncio's runner reprs its main task (result included) twice per run while it handles
    SIGINT (``signal.getsignal`` builds a ValueError message from the handler it holds): the
    repr of a whole capture cost 1.4 ms of the 50-source benchmark.
    """
    capture.write_warcinfo(started)
    article = result.article = await capture.article()
    article_urls = {capture.url, *(hop.url for hop in article.chain.hops)}
    reading = article.reading
    if reading is None:
        return
    if reading.canonical_url:
        article_urls.add(without_fragment(reading.canonical_url))
    # Linked sources first: they are the slow ones (other sites), so their requests go out
    # before the page's own stylesheets and images, whose quick answers would otherwise be
    # recorded and parsed in between.
    plan = await capture.send_links(reading, article_urls)
    requisites = asyncio.create_task(capture.requisites(reading))
    result.links = await capture.links(article, plan)
    await requisites


def capture(
    url: str,
    *,
    store: Path,
    settings: CaptureSettings | None = None,
    signer: SigningIdentity | None = None,
    observer: Observer = ignore,
    clock: Clock = utc_now,
    tsa_urls: Sequence[str] = (),
    resolver: Resolver = resolve,
) -> CaptureResult:
    """Capture ``url`` (and what its body links to) into a new bundle in ``store``.

    ``resolver`` answers DNS questions (the system's by default); tests pass a fixed table.
    """
    settings = settings or CaptureSettings()
    parts = parse_fetchable(url)  # bad input fails before anything touches the disk
    address_policy = None if settings.allow_private else AddressGuard.for_article(
        parts.hostname or "")
    for tsa_url in tsa_urls:
        try:
            parse_fetchable(tsa_url)
        except UnfetchableURLError as error:
            raise UsageError(f"--tsa: {error}") from None
    started = clock()
    capture_id = new_capture_id(started)
    pending = open_pending(store, capture_id)
    try:
        job = _Capture(url, settings, pending, observer, clock, address_policy, resolver,
                       _origin(parts))
        try:
            outcome = _RunResult()
            asyncio.run(_run(job, started, outcome))
            article, links = outcome.article, outcome.links
            assert article is not None  # set before anything can return
            article_text = article.text or job.write_text(article)
        finally:
            # After asyncio.run every task has finished or been cancelled, so this sees them all.
            _close_exchanges(job.session)
            job.warc.close()
        result = _finish(job, article, links, article_text, started, signer, tsa_urls)
    except BaseException as error:
        pending.discard()
        if pending.committed and isinstance(error, KeyboardInterrupt):
            raise InterruptedAfterCommitError(pending.final_path) from None
        if not isinstance(error, KeyboardInterrupt):  # Ctrl-C is not kept waiting for it
            _clean_up_after_failure(store, observer)
        raise
    return result


def _clean_up_after_failure(store: Path, observer: Observer) -> None:
    """Remove what dead captures left, on the way out of a capture that failed.

    A capture cleans up while its requests are out (``_StoreWork``); one that fails sooner
    (a disk filled by a dead capture's leftovers fails the first record written) must still
    free the store, or every capture after it would fail the same way. After a later failure
    this is a second look, which costs a listing of the store.
    """
    with contextlib.suppress(OSError):
        for name in remove_stale_temporaries(store):
            observer(_removed_notice(name))


def _removed_notice(name: str) -> Notice:
    return Notice(f"removed {name}, left in the store by a capture that died")


def _start_thread(work: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
    """Run ``work`` in a daemon thread of its own; its result or exception in the future.

    Not the loop's default executor: shutting that down at the end of ``asyncio.run`` costs
    a thread start and join on the capture's critical path. A daemon, so that a capture that
    fails never waits for work whose result nobody will read.
    """
    answer: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        # Cancelled before it began (the capture failed meanwhile): nothing to do. Once this
        # returns True the future can no longer be cancelled, so setting it cannot fail.
        if not answer.set_running_or_notify_cancel():
            return
        try:
            answer.set_result(work(*args))
        except BaseException as error:  # handed over by answer.result()
            answer.set_exception(error)

    threading.Thread(target=run, name="provenance-worker", daemon=True).start()
    return answer


def _in_thread(work: Callable[..., T], *args: object) -> asyncio.Future[T]:
    """``work`` in a thread of its own, awaited on the loop."""
    return asyncio.wrap_future(_start_thread(work, *args))


class _StoreWork:
    """The capture's business with the rest of its store, done while it has time to spare.

    Which capture of this URL this one follows (``previous``), looked up in the catalog, and
    the removal of what captures that died left behind. Both read the whole store directory,
    which grows with every capture (with 10,000 bundles the listing alone takes 5 ms, the
    catalog's sync 11 ms). ``start`` runs them in a worker thread once the requests are out:
    the event loop is idle until the answers come, so they cost the capture nothing. The
    lookup then names the newest capture committed before that moment. An article that is
    not an HTML page (or could not be fetched) has no links to wait for: its capture does
    both when it ends.
    """

    def __init__(self, store: Path, url: str) -> None:
        self._store = store
        self._url = url
        self._answer: concurrent.futures.Future[_StoreAnswer] | None = None

    def start(self) -> None:
        if self._answer is None:
            self._answer = _start_thread(self._work)

    def _work(self) -> _StoreAnswer:
        try:
            removed: list[str] | str = remove_stale_temporaries(self._store)
        except OSError as error:
            removed = error.strerror or str(error)
        try:
            return _StoreAnswer(removed, previous_capture(self._store, self._url))
        except ProvenanceError as error:
            return _StoreAnswer(removed, None, str(error))

    def result(self, observer: Observer) -> PreviousCapture | None:
        """Say what was cleaned up; return the predecessor (None if the catalog failed)."""
        answer = self._work() if self._answer is None else self._answer.result()
        if isinstance(answer.removed, str):
            observer(Notice(f"could not look for what dead captures left in the store: "
                            f"{answer.removed}"))
        else:
            for name in answer.removed:
                observer(_removed_notice(name))
        if answer.catalog_problem is not None:
            observer(Notice(f"catalog unreadable ({answer.catalog_problem}); this capture "
                            f"names no predecessor"))
        return answer.previous


@dataclass(frozen=True)
class _StoreAnswer:
    """What ``_StoreWork`` found, handed from its worker thread to the capture's ending."""

    #: the names removed, or why the store could not be searched
    removed: list[str] | str
    previous: PreviousCapture | None
    catalog_problem: str | None = None


def _finish(job: _Capture, article: _ArticleOutcome, links: list[BodyLink],
            article_text: ArticleText | None, started: datetime,
            signer: SigningIdentity | None, tsa_urls: Sequence[str]) -> CaptureResult:
    pending = job.pending
    resources = job.session.resources
    warc_size, warc_sha256 = job.warc.file_digest()
    state, reason = _state(article, links, resources)
    chain = article.chain
    final = chain.final_resource
    metadata = article.extraction.metadata if article.extraction else None
    previous = job.store_work.result(job.observer)
    manifest = Manifest(
        media_type=MANIFEST_MEDIA_TYPE,
        schema_version=SCHEMA_VERSION,
        capture_id=pending.capture_id,
        tool=_tool_info(),
        started_at=rfc3339(started),
        finished_at=rfc3339(job.clock()),
        requested_url=job.url,
        final_url=final.url if final and final.status else None,
        redirect_chain=[RedirectHop(url=hop.url, status=hop.status, location=hop.location)
                        for hop in chain.hops],
        state=state,
        state_reason=reason,
        article_kind=article.kind,
        page=PageMetadata(
            title=metadata.title, authors=list(metadata.authors),
            published=metadata.published, canonical_url=metadata.canonical_url,
            language=metadata.language, site_name=metadata.site_name,
            description=metadata.description) if metadata else PageMetadata(),
        article_text=article_text,
        options=_options_record(job.settings),
        resources=resources,
        links=links,
        limits_hit=job.session.limits,
        tls=list(job.session.tls_sessions.values()),
        files=[BundleFile(path=f"archive/{job.warc_name}", bytes=warc_size, sha256=warc_sha256)],
        signer=Signer(fingerprint=signer.fingerprint, public_key=signer.public_key,
                      namespace=signer.namespace) if signer else None,
        previous=previous,
    )
    raw = canonical_bytes(manifest)
    (pending.path / MANIFEST_PATH).write_bytes(raw)
    if signer is not None:
        (pending.path / SIGNATURE_PATH).write_bytes(signer.sign(raw))
        (pending.path / RAW_SIGNATURE_PATH).write_bytes(signer.sign_raw(raw))
    stamps: list[StampOutcome] = []
    if tsa_urls:
        job.observer(PhaseStarted("timestamps", f"asking {len(tsa_urls)} TSA(s)"))
        if signer is None:
            stamps = [StampOutcome(tsa_url=url, error="nothing to stamp: the capture is unsigned")
                      for url in tsa_urls]
        else:
            stamps = stamp_bundle(pending.path, tsa_urls, user_agent=job.settings.user_agent,
                                  ca_bundle=job.settings.ca_bundle)
    try:
        bundle = pending.commit()
    except OSError as error:
        raise OperationalError(f"cannot commit the bundle: {error.strerror}") from None
    try:
        record_capture(pending.store, bundle, LoadedManifest(raw=raw, manifest=manifest))
    except ProvenanceError as error:
        # The bundle is the truth and is safely committed; the catalog heals itself the next
        # time it is opened (or with 'provenance reindex').
        job.observer(Notice(f"catalog not updated ({error}); the bundle is safe and will be "
                            f"indexed when the catalog is next opened"))
    return CaptureResult(capture_id=pending.capture_id, bundle=bundle, manifest=manifest,
                         manifest_bytes=raw, timestamps=tuple(stamps))
