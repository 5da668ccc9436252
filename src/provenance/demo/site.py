"""A self-contained sample news site on 127.0.0.1: the offline demo and the capture test fixture.

``serve_sample_site()`` starts a small HTTP/1.1 server that publishes one contested opinion piece
(``/2017/08/opinion-the-bridge-vote``) from the fictional *Halvern Courier*, its page requisites,
and every awkward kind of source the article cites: a permanent redirect, a PDF, a page in a
legacy charset, a slow page, a 404, a 500 and a chain of mixed redirects. Every URL the site
emits points back at the same server, so a capture of it never touches the network.

The module-level constants (``EXPECTED_BODY_LINKS``, ``BOILERPLATE_LINK_PATHS``,
``REQUISITE_PATHS``, ``ARTICLE_TITLE`` and friends) are the ground truth that tests import
instead of hard-coding.

Run ``python -m provenance.demo.site`` to serve the site until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import functools
import gzip
import html
import http
import importlib.resources
import socket
import socketserver
import struct
import sys
import threading
import traceback
import urllib.parse
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any

__all__ = [
    "ARTICLE_AUTHORS",
    "ARTICLE_DESCRIPTION",
    "ARTICLE_HTML_TITLE",
    "ARTICLE_LANGUAGE",
    "ARTICLE_PATH",
    "ARTICLE_PUBLISHED",
    "ARTICLE_RESPONSE_HEADER_NAMES",
    "ARTICLE_TEXT_SNIPPETS",
    "ARTICLE_TITLE",
    "BASE_PLACEHOLDER",
    "BODY_FRAGMENT_HREFS",
    "BODY_HREFS",
    "BODY_MAILTO_HREF",
    "BOILERPLATE_LINK_PATHS",
    "BROKEN_PATH",
    "CHAIN_START_PATH",
    "CSS_REQUISITE_PATHS",
    "DUPLICATE_BODY_LINK_PATH",
    "EXPECTED_BODY_LINKS",
    "EXPECTED_BODY_LINK_PATHS",
    "FINAL_DESTINATION_PATH",
    "GONE_PATH",
    "HTML_REQUISITE_PATHS",
    "LEGACY_CHARSET",
    "LEGACY_PATH",
    "LEGACY_SPECIAL_CHARACTERS",
    "NEVER_REQUESTED_PATHS",
    "PDF_PATH",
    "PDF_TEXT_LINES",
    "REDIRECT_HOPS",
    "REPORT_PATH",
    "REPORT_REDIRECT_PATH",
    "REQUISITE_CONTENT_TYPES",
    "REQUISITE_PATHS",
    "SITE_NAME",
    "SLOW_PATH",
    "SRCSET_PATHS",
    "BodyLink",
    "RecordedRequest",
    "RedirectHop",
    "RequestLog",
    "SampleSite",
    "SentResponse",
    "article_html",
    "article_wire_body",
    "body_hrefs",
    "main",
    "route_paths",
    "serve_sample_site",
]

# --------------------------------------------------------------------------------------------
# Ground truth about the site, for tests
# --------------------------------------------------------------------------------------------

#: stands for the runtime base URL (``http://127.0.0.1:PORT``) inside the constants below
BASE_PLACEHOLDER = "{base}"

SITE_NAME = "The Halvern Courier"
ARTICLE_PATH = "/2017/08/opinion-the-bridge-vote"
ARTICLE_TITLE = "Opinion: The bridge vote was settled long before the council sat down"
ARTICLE_HTML_TITLE = f"{ARTICLE_TITLE} | {SITE_NAME}"
ARTICLE_AUTHORS = ("Margit Oyelaran", "Tomasz Reinholt")
ARTICLE_PUBLISHED = "2017-08-14T09:30:00Z"
ARTICLE_LANGUAGE = "en"
ARTICLE_DESCRIPTION = (
    "Leaked figures show Halvern committed €47.86 million to the Wendel Crossing months before "
    "councillors voted. The bridge may be needed; the debate was theatre."
)
#: sentences from the article body that any decent main-content extraction must contain
ARTICLE_TEXT_SNIPPETS = (
    "On Thursday evening the Halvern city council voted seven to four",
    "None of this means the bridge should not be built.",
    "We protect our sources, as we always have.",
)

REPORT_REDIRECT_PATH = "/news/2017/08/council-approves-bridge"
REPORT_PATH = "/reports/2017/08/council-approves-bridge-funding"
PDF_PATH = "/docs/leaked-budget-memo.pdf"
LEGACY_PATH = "/archive/1998/stadtrat-protokoll.html"
SLOW_PATH = "/slow/analysis"
GONE_PATH = "/gone/deleted-statement"
BROKEN_PATH = "/broken/statistics"
CHAIN_START_PATH = "/r/chain-start"
FINAL_DESTINATION_PATH = "/reports/final-destination"

LEGACY_CHARSET = "windows-1252"
#: characters the legacy page contains, each encoded as a single non-ASCII cp1252 byte
LEGACY_SPECIAL_CHARACTERS = "äöüß„“”–€"


@dataclass(frozen=True)
class RedirectHop:
    """One redirect the server answers with.

    ``location`` is the ``Location`` header exactly as sent, with ``{base}`` standing for the
    runtime base URL where the server sends an absolute URL; ``target`` is the path it resolves to.
    """

    source: str
    status: int
    location: str
    target: str

    def location_for(self, base_url: str) -> str:
        return self.location.replace(BASE_PLACEHOLDER, base_url)


#: every redirect on the site; the 303 deliberately uses a relative-path reference
REDIRECT_HOPS: tuple[RedirectHop, ...] = (
    RedirectHop(REPORT_REDIRECT_PATH, 301, BASE_PLACEHOLDER + REPORT_PATH, REPORT_PATH),
    RedirectHop(CHAIN_START_PATH, 302, "/r/chain-2", "/r/chain-2"),
    RedirectHop("/r/chain-2", 307, BASE_PLACEHOLDER + "/r/chain-3", "/r/chain-3"),
    RedirectHop("/r/chain-3", 303, "../reports/final-destination", FINAL_DESTINATION_PATH),
)


@dataclass(frozen=True)
class BodyLink:
    """A source the article body links to, and what fetching it ends in."""

    path: str
    kind: str
    final_path: str
    final_status: int
    final_content_type: str
    redirects: tuple[RedirectHop, ...] = ()


_HTML = "text/html; charset=utf-8"
_LEGACY_HTML = f"text/html; charset={LEGACY_CHARSET}"


def _hops_from(path: str) -> tuple[RedirectHop, ...]:
    """Follow ``REDIRECT_HOPS`` from ``path`` so the chain is written down only once."""
    by_source = {hop.source: hop for hop in REDIRECT_HOPS}
    hops: list[RedirectHop] = []
    while path in by_source:
        hops.append(by_source[path])
        path = by_source[path].target
    return tuple(hops)


#: the http links in the article body, de-duplicated, in order of first appearance
EXPECTED_BODY_LINKS: tuple[BodyLink, ...] = (
    BodyLink(
        REPORT_REDIRECT_PATH,
        "permanent-redirect",
        REPORT_PATH,
        200,
        _HTML,
        _hops_from(REPORT_REDIRECT_PATH),
    ),
    BodyLink(PDF_PATH, "pdf", PDF_PATH, 200, "application/pdf"),
    BodyLink(LEGACY_PATH, "legacy-charset", LEGACY_PATH, 200, _LEGACY_HTML),
    BodyLink(SLOW_PATH, "slow", SLOW_PATH, 200, _HTML),
    BodyLink(GONE_PATH, "not-found", GONE_PATH, 404, _HTML),
    BodyLink(BROKEN_PATH, "server-error", BROKEN_PATH, 500, _HTML),
    BodyLink(
        CHAIN_START_PATH,
        "redirect-chain",
        FINAL_DESTINATION_PATH,
        200,
        _HTML,
        _hops_from(CHAIN_START_PATH),
    ),
)
EXPECTED_BODY_LINK_PATHS: tuple[str, ...] = tuple(link.path for link in EXPECTED_BODY_LINKS)
DUPLICATE_BODY_LINK_PATH = PDF_PATH
BODY_MAILTO_HREF = "mailto:letters@courier.example"
BODY_FRAGMENT_HREFS = ("#fn1", "#fnref1")

#: every ``href`` inside ``<article>``, in document order, exactly as written in the HTML
BODY_HREFS: tuple[str, ...] = (
    BASE_PLACEHOLDER + REPORT_REDIRECT_PATH,
    PDF_PATH,
    "#fn1",
    "../../archive/1998/stadtrat-protokoll.html",
    SLOW_PATH,
    GONE_PATH,
    BROKEN_PATH,
    CHAIN_START_PATH,
    PDF_PATH,
    BODY_MAILTO_HREF,
    "#fnref1",
)

#: links outside the article body (navigation, tags, share bar, sidebar, footer), queries
#: stripped; all of them answer 200, so a test can prove a capture never requested them
BOILERPLATE_LINK_PATHS: tuple[str, ...] = (
    "/",
    "/section/politics",
    "/section/city",
    "/section/opinion",
    "/about",
    "/tag/bridges",
    "/tag/city-council",
    "/share/twitter",
    "/share/facebook",
    ARTICLE_PATH + "/comments",
    "/2017/08/other-story",
    "/2017/08/harbour-tolls",
    "/2017/07/school-budget",
    "/2017/06/wendel-crossing-closed",
    "/2017/05/bridge-consultation-opens",
    "/privacy",
    "/terms",
    "/contact",
)
#: pages a one-level capture of the article must not request: boilerplate targets plus the
#: links found only on the cited pages themselves
NEVER_REQUESTED_PATHS: tuple[str, ...] = (*BOILERPLATE_LINK_PATHS, "/archive/")

#: requisites referenced by the article HTML itself, in document order
HTML_REQUISITE_PATHS = (
    "/favicon.ico",
    "/static/css/site.css",
    "/static/js/site.js",
    "/static/img/masthead.png",  # inline style="background-image:url(...)"
    "/static/img/bridge.png",
)
#: the two ``srcset`` candidates of the body image (its ``src`` is in HTML_REQUISITE_PATHS)
SRCSET_PATHS = ("/static/img/bridge-640.png", "/static/img/bridge-1280.png")
#: requisites found only by parsing CSS: @import, then url() in site.css, then in print.css
CSS_REQUISITE_PATHS = (
    "/static/css/print.css",
    "/static/fonts/serif.woff2",
    "/static/img/paper.png",
    "/static/img/print-mark.png",
)
REQUISITE_PATHS: tuple[str, ...] = HTML_REQUISITE_PATHS + SRCSET_PATHS + CSS_REQUISITE_PATHS

_CSS = "text/css; charset=utf-8"
_PNG = "image/png"
REQUISITE_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "/favicon.ico": "image/x-icon",
        "/static/css/site.css": _CSS,
        "/static/js/site.js": "text/javascript; charset=utf-8",
        "/static/img/masthead.png": _PNG,
        "/static/img/bridge.png": _PNG,
        "/static/img/bridge-640.png": _PNG,
        "/static/img/bridge-1280.png": _PNG,
        "/static/css/print.css": _CSS,
        "/static/fonts/serif.woff2": "font/woff2",
        "/static/img/paper.png": _PNG,
        "/static/img/print-mark.png": _PNG,
    }
)

#: the article's response headers in wire order, after ``Date`` (first) and before any
#: ``Connection`` header (last, only when the server closes or the client spoke HTTP/1.0)
ARTICLE_RESPONSE_HEADER_NAMES = (
    "Server",
    "Content-Type",
    "Transfer-Encoding",
    "Content-Encoding",
    "Vary",
    "Last-Modified",
    "ETag",
    "Cache-Control",
    "X-Served-By",
    "x-cache",
    "content-language",
    "X-Frame-Options",
)

PDF_TEXT_LINES = (
    "CITY OF HALVERN - FINANCE DIRECTORATE",
    "Internal memorandum - not for circulation",
    "",
    "Date: 3 April 2017",
    "To: Office of the Mayor; Transport Department",
    "Subject: Wendel Crossing replacement - capital allocation",
    "",
    "Allocation",
    "The replacement of the Wendel Crossing is to be funded in full from the",
    "2017-2019 capital programme. Amount allocated: EUR 47,860,000.",
    "",
    "Procurement",
    "Tender notice to be published: 1 August 2017.",
    "Council vote (for information): 10 August 2017.",
    "Contract award: target December 2017.",
    "",
    "Design",
    "A design-and-build contract is preferred. No separate design competition",
    "is foreseen.",
    "",
    "[Names of junior staff removed by The Halvern Courier.]",
)


def body_hrefs(base_url: str) -> tuple[str, ...]:
    """``BODY_HREFS`` as served by a site whose base URL is ``base_url``."""
    return tuple(href.replace(BASE_PLACEHOLDER, base_url) for href in BODY_HREFS)


# --------------------------------------------------------------------------------------------
# Binary assets, generated so that the repository holds no opaque blobs
# --------------------------------------------------------------------------------------------

_Pixel = tuple[int, ...]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(width: int, height: int, pixel: Callable[[int, int], _Pixel]) -> bytes:
    """Encode a truecolour PNG (RGB, or RGBA when ``pixel`` returns four channels)."""
    channels = len(pixel(0, 0))
    colour_type = {3: 2, 4: 6}[channels]
    rows = b"".join(
        b"\x00" + bytes(value for x in range(width) for value in pixel(x, y)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def _solid(colour: _Pixel) -> Callable[[int, int], _Pixel]:
    return lambda _x, _y: colour


def _bridge_scene(width: int, height: int) -> Callable[[int, int], _Pixel]:
    """Sky, a dark deck across the middle, water below: recognisably a bridge when enlarged."""
    deck = height * 3 // 5

    def pixel(_x: int, y: int) -> _Pixel:
        if y < deck:
            return (200 - y * 4, 150 + y * 3, 240)
        if y == deck:
            return (40, 40, 48)
        return (30, 70, 110)

    return pixel


def _paper_pixel(x: int, y: int) -> _Pixel:
    """Paint a faint cream checkerboard, the page background texture."""
    return (251, 248, 241 - 3 * ((x + y) % 2))


def _favicon_pixel(x: int, y: int) -> _Pixel:
    """Paint a navy square with a light border, fully opaque, as 16x16 RGBA."""
    border = x in (0, 15) or y in (0, 15)
    return (230, 230, 230, 255) if border else (20, 33, 61, 255)


def _ico(png: bytes, size: int) -> bytes:
    """Wrap a PNG in an ICO container (PNG-in-ICO is valid since Windows Vista)."""
    directory = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), 6 + 16)
    return directory + entry + png


def _woff2_placeholder() -> bytes:
    """Return a bare 48-byte WOFF2 header with no tables.

    A real font would mean shipping a font binary; capture tests only need a resource with
    the right type and signature, and browsers simply fall back to Georgia.
    """
    return b"wOF2" + struct.pack(">IIHHIIHHIIIII", 0x00010000, 48, 0, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0)


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def _pdf_content_stream(lines: tuple[str, ...]) -> bytes:
    """Lay the memo out top-down: the first line bold, the rest 11 pt with 15 pt leading."""
    ops = [
        b"BT",
        b"/F2 14 Tf",
        b"15 TL",
        b"72 770 Td",
        _pdf_string(lines[0]) + b" Tj",
        b"/F1 11 Tf",
    ]
    ops += [b"T* " + _pdf_string(line) + b" Tj" for line in lines[1:]]
    ops.append(b"ET")
    return b"\n".join(ops)


def _pdf(lines: tuple[str, ...]) -> bytes:
    """Assemble a one-page PDF 1.4 with a correct cross-reference table."""
    content = _pdf_content_stream(lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Title (Wendel Crossing replacement - capital allocation) "
        b"/Author (City of Halvern Finance Directorate) /CreationDate (D:20170403101500Z) >>",
    ]
    # The second line is a binary comment so that transfer tools treat the file as binary.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n\r\n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF" % xref_at
    return bytes(out)


@functools.cache
def _binary_assets() -> Mapping[str, tuple[str, bytes]]:
    """Path -> (content type, bytes) for every generated asset."""
    favicon = _png(16, 16, _favicon_pixel)
    assets = {
        "/favicon.ico": ("image/x-icon", _ico(favicon, 16)),
        "/static/img/masthead.png": (_PNG, _png(24, 4, _solid((20, 33, 61)))),
        "/static/img/paper.png": (_PNG, _png(4, 4, _paper_pixel)),
        "/static/img/print-mark.png": (_PNG, _png(3, 3, _solid((0, 0, 0)))),
        "/static/img/bridge.png": (_PNG, _png(16, 9, _bridge_scene(16, 9))),
        "/static/img/bridge-640.png": (_PNG, _png(32, 18, _bridge_scene(32, 18))),
        "/static/img/bridge-1280.png": (_PNG, _png(64, 36, _bridge_scene(64, 36))),
        "/static/fonts/serif.woff2": ("font/woff2", _woff2_placeholder()),
        PDF_PATH: ("application/pdf", _pdf(PDF_TEXT_LINES)),
    }
    return MappingProxyType(assets)


# --------------------------------------------------------------------------------------------
# Text resources (package data under site/) and their tiny templating
# --------------------------------------------------------------------------------------------


@functools.cache
def _resource_text(*parts: str) -> str:
    # A literal package name, because __package__ differs when run with ``python -m``.
    node = importlib.resources.files("provenance.demo").joinpath("site")
    for part in parts:
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def _render(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{{NAME}}`` markers; a marker left over is a bug in the site, so fail loudly."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    if "{{" in template:
        raise ValueError(f"unfilled template marker near {template[template.index('{{') :][:40]!r}")
    return template


def _base_values(base_url: str) -> dict[str, str]:
    article_url = base_url + ARTICLE_PATH
    return {
        "BASE": base_url,
        "ARTICLE_URL": article_url,
        "ARTICLE_URL_QUOTED": urllib.parse.quote(article_url, safe=""),
    }


def article_html(base_url: str) -> str:
    """Return the article page as served by a site whose base URL is ``base_url``."""
    return _render(_resource_text("pages", "article.html"), _base_values(base_url))


#: sizes of the article's chunks on the wire: a tiny first chunk that splits the gzip header,
#: then uneven sizes, then whatever remains, so framing bugs cannot hide behind round numbers
_ARTICLE_CHUNK_SIZES = (7, 1000, 333, 1000)


def _article_gzip(base_url: str) -> bytes:
    # mtime=0 keeps the compressed bytes identical across runs (and so across recordings).
    return gzip.compress(article_html(base_url).encode("utf-8"), compresslevel=9, mtime=0)


def _split(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    pieces: list[bytes] = []
    for size in sizes:
        if not data:
            break
        pieces.append(data[:size])
        data = data[size:]
    if data:
        pieces.append(data)
    return pieces


def _frame_chunks(pieces: list[bytes]) -> bytes:
    framed = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for piece in pieces)
    return framed + b"0\r\n\r\n"


def article_wire_body(base_url: str) -> bytes:
    """Return the exact bytes after the article's header block: gzip data, chunk-framed."""
    return _frame_chunks(_split(_article_gzip(base_url), _ARTICLE_CHUNK_SIZES))


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------

_SERVER = "CourierEdge/2.4"
_SITE_UPDATED = "Fri, 11 Aug 2017 16:00:00 GMT"
_Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Route:
    """A canned response; ``Date`` and ``Connection`` are added per request."""

    status: int
    headers: _Headers
    body: bytes
    #: gzip payload sent chunked to HTTP/1.1 clients (``body`` is then the framed form)
    chunked_payload: bytes | None = None
    slow: bool = False


def _plain(
    status: int, content_type: str, body: bytes, *extra: tuple[str, str], slow: bool = False
) -> _Route:
    headers = (
        ("Server", _SERVER),
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        *extra,
    )
    return _Route(status, headers, body, slow=slow)


def _status_page(status: int, text_html: str) -> bytes:
    phrase = http.HTTPStatus(status).phrase
    values = {"STATUS": str(status), "REASON": phrase, "TEXT": text_html}
    return _render(_resource_text("pages", "status.html"), values).encode("utf-8")


def _article_route(base_url: str) -> _Route:
    payload = _article_gzip(base_url)
    headers = (
        ("Server", _SERVER),
        ("Content-Type", _HTML),
        ("Transfer-Encoding", "chunked"),
        ("Content-Encoding", "gzip"),
        ("Vary", "Accept-Encoding"),
        ("Last-Modified", "Mon, 14 Aug 2017 09:30:00 GMT"),
        ("ETag", 'W/"bridge-vote-20170814"'),
        ("Cache-Control", "public, max-age=300"),
        ("X-Served-By", "cache-hal-edge-07"),
        ("x-cache", "MISS"),
        ("content-language", ARTICLE_LANGUAGE),
        ("X-Frame-Options", "SAMEORIGIN"),
    )
    return _Route(200, headers, article_wire_body(base_url), chunked_payload=payload)


def _page_route(name: str, base_url: str, *, slow: bool = False) -> _Route:
    body = _render(_resource_text("pages", name), _base_values(base_url)).encode("utf-8")
    return _plain(
        200,
        _HTML,
        body,
        ("Last-Modified", _SITE_UPDATED),
        ("Cache-Control", "public, max-age=600"),
        slow=slow,
    )


def _legacy_route() -> _Route:
    # The source file is UTF-8 for editing; the wire carries cp1252, as a 1998 CMS would have.
    body = _resource_text("pages", "stadtrat-protokoll.html").encode(LEGACY_CHARSET)
    return _plain(200, _LEGACY_HTML, body, ("Last-Modified", "Thu, 19 Mar 1998 08:12:40 GMT"))


def _redirect_route(hop: RedirectHop, base_url: str) -> _Route:
    location = hop.location_for(base_url)
    body = _status_page(
        hop.status, f'This document has moved <a href="{html.escape(location)}">here</a>.'
    )
    cache = "public, max-age=3600" if hop.status == 301 else "no-store"
    return _plain(hop.status, _HTML, body, ("Location", location), ("Cache-Control", cache))


def _error_route(status: int, text: str) -> _Route:
    return _plain(
        status, _HTML, _status_page(status, html.escape(text)), ("Cache-Control", "no-store")
    )


def _static_text_route(path: str) -> _Route:
    text = _resource_text(*path.strip("/").split("/"))
    return _plain(
        200,
        REQUISITE_CONTENT_TYPES[path],
        text.encode("utf-8"),
        ("Last-Modified", _SITE_UPDATED),
        ("Cache-Control", "public, max-age=86400"),
    )


def _binary_route(content_type: str, body: bytes) -> _Route:
    return _plain(
        200,
        content_type,
        body,
        ("Last-Modified", _SITE_UPDATED),
        ("Cache-Control", "public, max-age=86400"),
    )


#: small pages behind the boilerplate links: (title, one paragraph)
_PLAIN_PAGES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "/": ("Front page", "News, opinion and analysis from Halvern and the Wendel valley."),
        "/section/politics": ("Politics", "Council, parliament and the people who run them."),
        "/section/city": ("City", "Everything that happens between the harbour and the ring road."),
        "/section/opinion": ("Opinion", "Columns and editorials from Courier writers and readers."),
        "/about": (
            "About us",
            "The Halvern Courier has been published since 1887. It is fictional.",
        ),
        "/tag/bridges": (
            "Bridges",
            "Stories about the Wendel Crossing and the city's other bridges.",
        ),
        "/tag/city-council": ("City council", "Reporting on Halvern city council."),
        "/share/twitter": (
            "Share on Twitter",
            "This sample site never contacts a social network; "
            "a real site would redirect to the network's share dialog here.",
        ),
        "/share/facebook": (
            "Share on Facebook",
            "This sample site never contacts a social network; "
            "a real site would redirect to the network's share dialog here.",
        ),
        ARTICLE_PATH + "/comments": ("Comments", "Comments are closed on this sample site."),
        "/2017/08/other-story": (
            "Harbour ferry timetable cut again",
            "The evening ferry to Eastbank will run only on weekdays.",
        ),
        "/2017/08/harbour-tolls": (
            "Why the harbour tolls will not go away",
            "The tolls pay for dredging, and dredging never ends.",
        ),
        "/2017/07/school-budget": (
            "School budget: the small print",
            "Most of the increase goes to heating, not teaching.",
        ),
        "/2017/06/wendel-crossing-closed": (
            "Wendel Crossing closed for emergency repairs",
            "Engineers found corrosion in two deck bearings.",
        ),
        "/2017/05/bridge-consultation-opens": (
            "Bridge consultation opens to the public",
            "Residents have six weeks to comment on the plans.",
        ),
        "/privacy": ("Privacy", "This sample site keeps no logs beyond the test that started it."),
        "/terms": ("Terms of use", "Everything here is invented for testing provenance."),
        "/contact": ("Contact", "Write to letters@courier.example; nobody will answer."),
        "/archive/": ("Archive", "Documents from the Courier's archive, 1887 to today."),
    }
)


def _plain_page_route(title: str, text: str) -> _Route:
    values = {"TITLE": html.escape(title), "TEXT": html.escape(text)}
    body = _render(_resource_text("pages", "page.html"), values).encode("utf-8")
    return _plain(200, _HTML, body, ("Cache-Control", "public, max-age=600"))


def _build_routes(base_url: str) -> dict[str, _Route]:
    routes = {path: _plain_page_route(*page) for path, page in _PLAIN_PAGES.items()}
    routes[ARTICLE_PATH] = _article_route(base_url)
    routes[REPORT_PATH] = _page_route("council-report.html", base_url)
    routes[FINAL_DESTINATION_PATH] = _page_route("final-audit.html", base_url)
    routes[SLOW_PATH] = _page_route("traffic-analysis.html", base_url, slow=True)
    routes[LEGACY_PATH] = _legacy_route()
    routes[GONE_PATH] = _error_route(404, "The statement you are looking for has been removed.")
    routes[BROKEN_PATH] = _error_route(500, "The statistics service failed. Try again later.")
    routes.update({hop.source: _redirect_route(hop, base_url) for hop in REDIRECT_HOPS})
    for path in ("/static/css/site.css", "/static/css/print.css", "/static/js/site.js"):
        routes[path] = _static_text_route(path)
    for path, (content_type, body) in _binary_assets().items():
        routes[path] = _binary_route(content_type, body)
    return routes


@functools.cache
def _not_found() -> _Route:
    return _error_route(404, "No page lives at this address.")


def route_paths() -> tuple[str, ...]:
    """Every path the site answers (anything else is a 404), sorted."""
    return tuple(sorted(_build_routes("http://127.0.0.1:0")))


def _serialise(
    route: _Route, *, date: str, chunked: bool, connection: str | None, include_body: bool
) -> bytes:
    """Build the full response as it goes on the wire, headers in their listed order."""
    headers = route.headers
    body = route.body
    if route.chunked_payload is not None and not chunked:
        # HTTP/1.0 clients cannot parse chunked framing; give them a plain sized body.
        body = route.chunked_payload
        headers = tuple(
            ("Content-Length", str(len(body))) if name == "Transfer-Encoding" else (name, value)
            for name, value in headers
        )
    lines = [f"HTTP/1.1 {route.status} {http.HTTPStatus(route.status).phrase}", f"Date: {date}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if include_body else head


# --------------------------------------------------------------------------------------------
# What the server saw and sent
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One parsed request line plus headers, as received."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """The path component of the request target (no query, percent-encoding untouched)."""
        return urllib.parse.urlsplit(self.target).path


@dataclass(frozen=True)
class SentResponse:
    """The bytes the server wrote for one request (``wire`` starts at the status line)."""

    method: str
    target: str
    status: int
    wire: bytes


class RequestLog:
    """Thread-safe record of requests, responses and unexpected server errors, in order.

    ``paths()`` (also ``log()``, iteration and ``in``) gives request paths without queries;
    ``targets()`` gives request targets exactly as received.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._responses: list[SentResponse] = []
        self._errors: list[str] = []

    def add_request(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def add_response(self, response: SentResponse) -> None:
        with self._changed:
            self._responses.append(response)
            self._changed.notify_all()

    def add_error(self, description: str) -> None:
        with self._changed:
            self._errors.append(description)

    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def paths(self) -> list[str]:
        return [request.path for request in self.requests()]

    def targets(self) -> list[str]:
        return [request.target for request in self.requests()]

    def count(self, path: str) -> int:
        """How many requests had exactly this path (query ignored)."""
        return self.paths().count(path)

    def responses(self) -> list[SentResponse]:
        with self._changed:
            return list(self._responses)

    def errors(self) -> list[str]:
        """Tracebacks of handler failures other than clients hanging up; should stay empty."""
        with self._changed:
            return list(self._errors)

    def wait_for(self, path: str, timeout: float) -> bool:
        """Block until a request for ``path`` has arrived; False if ``timeout`` ran out first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: any(request.path == path for request in self._requests), timeout
            )

    def __call__(self) -> list[str]:
        return self.paths()

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths())

    def __len__(self) -> int:
        with self._changed:
            return len(self._requests)

    def __contains__(self, path: object) -> bool:
        return path in self.paths()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _SampleServer(ThreadingHTTPServer):
    # Non-daemon handler threads let server_close() join them, so nothing outlives the fixture.
    daemon_threads = False
    block_on_close = True

    def __init__(self, host: str, port: int, log: RequestLog, slow_delay: float) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.log = log
        self.slow_delay = slow_delay
        self.stopping = threading.Event()
        self.routes: dict[str, _Route] = {}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup; the fixture must
        # not send a single packet beyond the loopback interface, so skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: socketserver._RequestType, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socketserver._RequestType) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive connections so they can finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: the handler thread closed it in the meantime.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: socketserver._RequestType, client_address: Any) -> None:
        # Clients hanging up mid-response is normal for a capture tool under test; anything else
        # is kept for the test to inspect instead of being printed to stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        self.log.add_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SampleServer
    # A stuck client must not pin a handler thread forever.
    timeout = 30

    def version_string(self) -> str:
        return _SERVER

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: tests read the RequestLog instead."""

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            self.server.log.add_request(
                RecordedRequest(
                    method=self.command,
                    target=self.path,
                    version=self.request_version,
                    headers=tuple((name, str(value)) for name, value in self.headers.items()),
                )
            )
        return parsed

    def do_GET(self) -> None:
        self._respond(include_body=True)

    def do_HEAD(self) -> None:
        self._respond(include_body=False)

    def _discard_request_body(self) -> None:
        """Read any request body so the next request on a keep-alive connection parses."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # not worth parsing chunked uploads for a fixture
            return
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and 0 < int(length) <= 1 << 20:
            self.rfile.read(int(length))
        elif length != "0":
            self.close_connection = True

    def _connection_header(self) -> str | None:
        if self.close_connection:
            return "close"
        if self.request_version == "HTTP/1.0":
            return "keep-alive"  # 1.0 clients only stay if told so
        return None

    def _respond(self, *, include_body: bool) -> None:
        self._discard_request_body()
        route = self.server.routes.get(urllib.parse.urlsplit(self.path).path) or _not_found()
        if route.slow:
            # Waiting on the stop event rather than sleeping lets shutdown cut the delay short.
            self.server.stopping.wait(self.server.slow_delay)
        wire = _serialise(
            route,
            date=email.utils.formatdate(usegmt=True),
            chunked=self.request_version != "HTTP/1.0",
            connection=self._connection_header(),
            include_body=include_body,
        )
        self.server.log.add_response(SentResponse(self.command, self.path, route.status, wire))
        self.wfile.write(wire)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSite:
    """A running sample site. ``requested_paths`` is the live, thread-safe request log."""

    base_url: str
    article_url: str
    requested_paths: RequestLog
    slow_delay: float = 1.0

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.base_url).port or 80

    def url(self, path: str) -> str:
        """Absolute URL on this site for a path such as ``/docs/leaked-budget-memo.pdf``."""
        return urllib.parse.urljoin(self.base_url + "/", path)

    def paths(self) -> list[str]:
        """Request paths seen so far, in arrival order (queries stripped)."""
        return self.requested_paths.paths()

    def responses(self) -> list[SentResponse]:
        return self.requested_paths.responses()

    def errors(self) -> list[str]:
        return self.requested_paths.errors()


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@contextmanager
def serve_sample_site(
    host: str = "127.0.0.1", port: int = 0, slow_delay: float = 1.0
) -> Iterator[SampleSite]:
    """Serve the sample site on ``host``:``port`` (0 lets the OS choose) for a ``with`` block.

    The server runs in a background thread and is shut down, with every connection closed and
    every handler thread joined, when the block exits.
    """
    if slow_delay < 0:
        raise ValueError("slow_delay must not be negative")
    log = RequestLog()
    server = _SampleServer(host, port, log, slow_delay)
    base_url = _base_url(host, server.server_port)
    try:
        server.routes = _build_routes(base_url)
    except BaseException:
        server.server_close()  # shutdown() would wait forever for a loop that never ran
        raise
    # A short poll interval keeps shutdown() (and so every test using the fixture) fast.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="provenance-sample-site",
        daemon=True,
    )
    thread.start()
    try:
        yield SampleSite(base_url, base_url + ARTICLE_PATH, log, slow_delay)
    finally:
        server.stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    """Serve the sample site in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m provenance.demo.site", description="Serve the provenance sample news site."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slow-delay", type=float, default=1.0)
    options = parser.parse_args(argv)
    with serve_sample_site(options.host, options.port, options.slow_delay) as site:
        print(f"Sample article: {site.article_url}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
