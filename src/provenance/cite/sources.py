"""The archived text and self-description of one captured resource (the article or a source).

Read only through the manifest's own record location. The response record's block is the HTTP
response as transferred (DESIGN.md section 2, "response fidelity"): status line, headers, then
the body with its chunk framing and content coding intact. Here the framing is undone (RFC 9112
section 7.1), then the content coding (RFC 9110 section 8.4, gzip and deflate only), each under
``MAX_BODY_BYTES``, so a bomb costs bounded memory; then HTML becomes text through the same
extraction the capture uses, and a PDF through pypdf.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import cached_property

from provenance.capture.content import (
    UnsupportedEncodingError,
    decoded_prefix,
    parse_content_type,
)
from provenance.cite.pdf import pdf_text
from provenance.errors import UsageError
from provenance.models import Resource
from provenance.snapshot import Snapshot, read_record

#: largest body (after de-chunking, and again after decoding) turned into text
MAX_BODY_BYTES = 32 * 1024 * 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})


@dataclass(frozen=True)
class HttpBody:
    """A response body as the client saw it: framing and content coding removed."""

    status: int | None
    media_type: str | None
    charset: str | None
    body: bytes


@dataclass(frozen=True)
class ArchivedDocument:
    """What a resource says about itself, and its text.

    ``text`` is the main text (the article extraction, as at capture time); ``full_text`` is
    everything visible on an HTML page, for passages outside the main text.
    """

    url: str
    text: str
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None
    site_name: str | None = None
    html: str | None = field(default=None, repr=False)

    @cached_property
    def full_text(self) -> str | None:
        if self.html is None:
            return None
        from provenance.capture.extract.parsing import _parse_document
        from provenance.capture.extract.text import _HTML, _render_text

        return _render_text(_parse_document(self.html), _HTML)


#: Fields that are one value, never a list (RFC 9110 section 8.3 for Content-Type): of
#: repeated ones the first counts, as in the capture (``Exchange.header``), so that cite reads
#: the media type the manifest records rather than "text/html, image/png".
_SINGLE_VALUED = frozenset({"content-type"})


def _parse_head(head: bytes) -> tuple[int | None, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            if key not in headers:
                headers[key] = value.strip()
            elif key not in _SINGLE_VALUED:
                # RFC 9110 section 5.3: repeated fields combine as a comma-separated list.
                headers[key] = f"{headers[key]}, {value.strip()}"
    return status, headers


def dechunk(data: bytes, limit: int) -> bytes:
    """Undo chunked framing (RFC 9112 section 7.1), tolerating a cut-off end, up to ``limit``."""
    out = bytearray()
    position = 0
    while len(out) < limit:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            break
        size_text = data[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            break
        if size == 0:
            break
        start = line_end + 2
        out += data[start : start + min(size, limit - len(out))]
        position = start + size + 2
    return bytes(out[:limit])


def read_body(snapshot: Snapshot, resource: Resource) -> HttpBody:
    """The body of ``resource``'s archived response, framing and coding undone, under caps."""
    if resource.response is None:
        raise UsageError(f"{resource.url} has no archived response"
                         + (f" ({resource.reason})" if resource.reason else ""))
    # The raw body may be framed or compressed: allow room for both before the caps apply.
    record = read_record(snapshot.path, resource.response, limit=2 * MAX_BODY_BYTES)
    head, _, raw = record.block.partition(b"\r\n\r\n")
    status, headers = _parse_head(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = dechunk(raw, 2 * MAX_BODY_BYTES)
    try:
        body, _cut = decoded_prefix(io.BytesIO(raw), headers.get("content-encoding"),
                                    MAX_BODY_BYTES)
    except UnsupportedEncodingError as error:
        raise UsageError(f"the archived response of {resource.url} uses the content coding "
                         f"{error}, which cannot be decoded here") from None
    content_type = parse_content_type(headers.get("content-type"))
    return HttpBody(status=status, media_type=content_type.media_type,
                    charset=content_type.charset, body=body)


def _sniff(body: bytes) -> str | None:
    start = body[:1024].lstrip()
    if start.startswith(b"%PDF-"):
        return "application/pdf"
    if start[:1] == b"<":
        return "text/html"
    return None


def document_from_body(url: str, http: HttpBody) -> ArchivedDocument:
    """Text and metadata of a decoded body, by its media type (sniffed when unlabelled)."""
    # Imported here, not with the module: the extraction (trafilatura, lxml) is needed to read
    # a page, not to cite an article from its stored text, nor by the commands that import
    # provenance.cite without citing (as pdf.py does with pypdf).
    from provenance.capture.extract import decode_html, extract_article

    media_type = http.media_type or _sniff(http.body)
    if media_type in HTML_TYPES:
        html = decode_html(http.body, http.charset)
        # Decoded once: the extraction parses the same text that full_text is made from.
        # The body links are not needed here: none are described (30 us each).
        extraction = extract_article(html, url, max_links=0)
        meta = extraction.metadata
        return ArchivedDocument(url=url, text=extraction.text, title=meta.title,
                                authors=meta.authors, published=meta.published,
                                site_name=meta.site_name, html=html)
    if media_type in PDF_TYPES or (media_type == "application/octet-stream"
                                   and _sniff(http.body) == "application/pdf"):
        pdf = pdf_text(http.body, url)
        return ArchivedDocument(url=url, text=pdf.text, title=pdf.title,
                                authors=(pdf.author,) if pdf.author else ())
    if media_type is not None and media_type.startswith("text/"):
        # Plain text is decoded by the same WHATWG label rules a browser applies.
        return ArchivedDocument(url=url, text=decode_html(http.body, http.charset))
    raise UsageError(f"{url} was archived as {media_type or 'unlabelled data'}, "
                     "which has no text to quote from")


def read_document(snapshot: Snapshot, resource: Resource) -> ArchivedDocument:
    """Text and self-description of a captured resource (HTML, PDF or plain text)."""
    return document_from_body(resource.url, read_body(snapshot, resource))
