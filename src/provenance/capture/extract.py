"""Read one captured HTML page: its metadata, article text, body links and page requisites.

Everything here is a pure function of the bytes we were given: no network, no printing.

Body links are the ``<a href>`` elements inside the article's main content. trafilatura decides
what the main content is; to map its answer back onto the original elements (so that ``href``,
anchor text and context are exact), every ``href`` is swapped for a numbered marker before
trafilatura sees the tree, and the markers that survive in its output name the chosen anchors.
When trafilatura finds nothing, or the page is too large for it (its cost grows faster than
linearly), a linear heuristic picks the content container instead. Either way, links sitting in
navigation, share bars, tag lists, sidebars, comments and the like are dropped.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from html import unescape
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import tinycss2
from charset_normalizer import from_bytes
from lxml import etree
from lxml.html import HtmlElement
from tinycss2.bytes import decode_stylesheet_bytes
from trafilatura import bare_extraction, extract_metadata
from trafilatura.settings import Document, Extractor

__all__ = [
    "REQUISITE_KINDS",
    "ArticleExtraction",
    "BodyLink",
    "PageMetadata",
    "Requisite",
    "css_references",
    "decode_html",
    "extract_article",
    "find_requisites",
]

_LOG = logging.getLogger(__name__)

REQUISITE_KINDS = ("stylesheet", "script", "image", "icon", "font", "media", "other")


@dataclass(frozen=True)
class PageMetadata:
    """What the page says about itself.

    ``published`` is an RFC 3339 date ("2017-08-14") or, when the page gives a time with an
    offset, date-time ("2017-08-14T09:30:00Z"); ``canonical_url`` is absolute; ``language`` is
    a BCP 47 tag ("en", "de-DE").
    """

    title: str | None
    authors: tuple[str, ...]
    published: str | None
    canonical_url: str | None
    language: str | None
    site_name: str | None
    description: str | None


@dataclass(frozen=True)
class BodyLink:
    """One ``<a href>`` in the article body.

    ``href`` is the attribute as written; ``url`` is resolved against the document base (a
    ``<base href>`` counts), fragment kept; ``text`` is the anchor text, whitespace collapsed;
    ``context`` is the sentence or paragraph around it (at most 240 characters).
    """

    href: str
    url: str
    text: str
    context: str


@dataclass(frozen=True)
class Requisite:
    """A resource the page loads; ``kind`` is one of ``REQUISITE_KINDS``."""

    url: str
    kind: str


@dataclass(frozen=True)
class ArticleExtraction:
    """Everything read from one page.

    ``body_links`` are in document order and include mailto:, fragment-only and repeated links:
    the caller decides what to skip. ``requisites`` are deduplicated, in document order.
    ``text`` is plain text, paragraphs separated by blank lines.
    """

    metadata: PageMetadata
    text: str
    body_links: tuple[BodyLink, ...]
    requisites: tuple[Requisite, ...]


# ---------------------------------------------------------------------------------------------
# Character decoding (WHATWG "determine the character encoding", simplified)
# ---------------------------------------------------------------------------------------------

# WHATWG labels whose Python codec differs by name or by behaviour. The web treats latin-1 and
# ascii as windows-1252, gbk as gb18030, euc-kr and shift_jis as the Microsoft supersets.
_LABEL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cp1252", ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
                "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
                "iso_8859-1:1987", "l1", "latin1", "latin-1", "us-ascii", "windows-1252",
                "x-cp1252")),
    ("cp1254", ("cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599",
                "iso_8859-9", "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254")),
    ("cp874", ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874")),
    ("gb18030", ("chinese", "csgb2312", "csiso58gb231280", "gb18030", "gb2312", "gb_2312",
                 "gb_2312-80", "gbk", "iso-ir-58", "x-gbk")),
    ("big5hkscs", ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5")),
    ("cp949", ("cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987",
               "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949")),
    ("cp932", ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis",
               "windows-31j", "x-sjis")),
    ("utf-16-le", ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16",
                   "utf-16le")),
    ("utf-16-be", ("unicodefffe", "utf-16be")),
    ("utf-8", ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8",
               "x-unicode20utf8")),
    ("iso8859-8", ("csiso88598i", "iso-8859-8-i", "logical")),
    ("mac-roman", ("csmacintosh", "mac", "macintosh", "x-mac-roman")),
    ("mac-cyrillic", ("x-mac-cyrillic", "x-mac-ukrainian")),
    ("koi8-u", ("koi8-ru", "koi8-u")),
    ("cp866", ("866", "cp866", "csibm866", "ibm866")),
)
_LABEL_CODECS: dict[str, str] = {
    label: codec for codec, labels in _LABEL_GROUPS for label in labels
}

# Python codecs (by canonical name) that correspond to a WHATWG encoding; anything else Python
# knows (utf-7, utf-32, iso2022_kr, rot13, ...) is not a web encoding and is ignored.
_WEB_CODECS = frozenset(
    {codec for codec, _ in _LABEL_GROUPS}
    | {f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)}
    | {f"cp{n}" for n in range(1250, 1259)}
    | {"koi8-r", "euc_jp", "iso2022_jp"}
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)

_PRESCAN_BYTES = 1024
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_META_TAG = re.compile(r"<meta[\s/]([^>]*)", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_CHARSET_PARAM = re.compile(
    r"""charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.IGNORECASE
)

# windows-1252 leaves five bytes undefined; WHATWG decodes them to the C1 control of the same
# number, so the text round-trips instead of turning into U+FFFD.
_C1_ERRORS = "provenance-whatwg-c1"
# how much more "chaos" (charset_normalizer's mess score, 0 to 1) windows-1252 may show than
# the detector's favourite and still be preferred
_CHAOS_TOLERANCE = 0.05


def _c1_passthrough(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(chr(byte) for byte in error.object[error.start : error.end]), error.end


codecs.register_error(_C1_ERRORS, _c1_passthrough)


def _codec_for_label(label: str | None) -> str | None:
    """Return the Python codec for an encoding label, None when it names no web encoding."""
    if not label:
        return None
    key = label.strip(" \t\n\f\r\"'").lower()
    if key in _LABEL_CODECS:
        return _LABEL_CODECS[key]
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    name = _LABEL_CODECS.get(name, name)
    return name if name in _WEB_CODECS else None


def _charset_from_content_type(value: str) -> str | None:
    match = _CHARSET_PARAM.search(value)
    if match is None:
        return None
    return next((group for group in match.groups() if group is not None), None)


def _prescan_meta(body: bytes) -> str | None:
    """Find the encoding a ``<meta>`` in the first 1024 bytes declares (WHATWG prescan)."""
    head = _COMMENT.sub("", body[:_PRESCAN_BYTES].decode("latin-1"))
    for tag in _META_TAG.finditer(head):
        attributes: dict[str, str] = {}
        for match in _ATTRIBUTE.finditer(tag.group(1)):
            name = match.group(1).lower()
            attributes.setdefault(name, (match.group(2) or "").strip("\"'"))
        label = attributes.get("charset")
        if label is None and attributes.get("http-equiv", "").lower() == "content-type":
            label = _charset_from_content_type(attributes.get("content", ""))
        codec = _codec_for_label(label)
        if codec is not None:
            # a meta can only be read if the page is ASCII-compatible, so utf-16 here is a lie
            return "utf-8" if codec.startswith("utf-16") else codec
    return None


def _guess_codec(body: bytes) -> str | None:
    """Guess the encoding of undeclared, non-UTF-8 bytes, leaning towards windows-1252.

    windows-1252 is what browsers assume for such pages in most locales, and the detector's
    favourite for short Latin text is often a sibling (cp1257 reading "à" as "ą"); it still
    decides when the text is clearly another script.
    """
    matches = from_bytes(body)
    best = matches.best()
    if best is None:
        return None
    favourite = _codec_for_label(best.encoding) or best.encoding
    if favourite == "cp1252":
        return favourite
    for match in matches:
        plausible = match.chaos <= best.chaos + _CHAOS_TOLERANCE
        if plausible and _codec_for_label(match.encoding) == "cp1252":
            return "cp1252"
    if _decode(body, favourite) == _decode(body, "cp1252"):
        return "cp1252"
    return favourite


def _decode(data: bytes, codec: str) -> str:
    errors = _C1_ERRORS if codec == "cp1252" else "replace"
    try:
        return data.decode(codec, errors=errors)
    except LookupError:
        return data.decode("utf-8", errors="replace")


def decode_html(body: bytes, declared_charset: str | None) -> str:
    """Decode an HTML body: BOM, then the HTTP charset, then ``<meta>``, then a guess.

    ``declared_charset`` is the HTTP ``charset`` parameter (a whole Content-Type value is
    accepted too). Never raises: undecodable bytes become U+FFFD.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _decode(body[len(bom) :], codec)
    declared = declared_charset
    if declared and "=" in declared:
        declared = _charset_from_content_type(declared)
    chosen = _codec_for_label(declared) or _prescan_meta(body)
    if chosen is not None:
        return _decode(body, chosen)
    try:
        # valid UTF-8 beyond ASCII is almost never another encoding by accident
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode(body, _guess_codec(body) or "utf-8")


# ---------------------------------------------------------------------------------------------
# Parsing and URLs
# ---------------------------------------------------------------------------------------------

_ASCII_WHITESPACE = " \t\n\f\r"
# C0 controls other than whitespace, and DEL: invisible in a browser, and lxml refuses them in
# any value set through its API (so a page holding one could not be processed at all)
_CONTROL_CHARACTERS = dict.fromkeys([*range(0x01, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_SKIPPED_SCHEMES = ("data:", "javascript:", "about:", "blob:")
_SRCSET_SEPARATORS = _ASCII_WHITESPACE + ","


def _parse_document(html: str) -> HtmlElement:
    """Parse HTML into an ``<html>`` root, whatever the input looks like."""
    # bytes with an explicit encoding sidestep lxml's refusal of str with an XML declaration
    cleaned = html.replace("\x00", "\ufffd").translate(_CONTROL_CHARACTERS)
    data = cleaned.encode("utf-8", errors="replace")
    parser = lxml.html.HTMLParser(
        encoding="utf-8", huge_tree=True, remove_comments=True, remove_pis=True
    )
    try:
        root = lxml.html.document_fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        root = None
    if root is None:
        root = lxml.html.document_fromstring(b"<html><body></body></html>", parser=parser)
    return root


def _resolve(base: str, reference: str) -> str | None:
    """Resolve a URL as written in a page, None if it cannot be."""
    # browsers strip surrounding ASCII whitespace and drop tabs and newlines anywhere
    cleaned = reference.strip(_ASCII_WHITESPACE)
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    try:
        return urljoin(base, cleaned)
    except ValueError:
        return None


def _document_base(root: HtmlElement, url: str) -> str:
    """Return the document base URL: the first ``<base href>``, resolved against the page URL."""
    for element in root.iter("base"):
        href = element.get("href")
        if href is None:
            continue
        resolved = _resolve(url, href)
        if resolved and not resolved.lower().startswith(_SKIPPED_SCHEMES):
            return resolved
        break
    return url


def _tag(element: Any) -> str:
    tag = element.tag
    return tag if isinstance(tag, str) else ""


# ---------------------------------------------------------------------------------------------
# Requisites and CSS
# ---------------------------------------------------------------------------------------------

_FONT_EXTENSIONS = (".woff2", ".woff", ".ttf", ".otf", ".eot")
_ICON_RELS = frozenset(
    {"icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon", "fluid-icon"}
)
_PRELOAD_KINDS = {
    "style": "stylesheet",
    "script": "script",
    "font": "font",
    "image": "image",
    "audio": "media",
    "video": "media",
    "track": "media",
}
_IMAGE_SET_FUNCTIONS = frozenset({"image-set", "-webkit-image-set"})
_MEDIA_PARENTS = frozenset({"video", "audio"})
_LEGACY_BACKGROUND_TAGS = frozenset({"body", "table", "tr", "td", "th"})


@dataclass(frozen=True)
class _CssReference:
    url: str
    kind: str  # "import", "font" or "url"


def _parse_css(css: str) -> list[Any]:
    return list(tinycss2.parse_component_value_list(css, skip_comments=True))


def _first_string(nodes: Iterable[Any]) -> str | None:
    for node in nodes:
        if node.type == "string":
            return str(node.value)
        if node.type == "url":
            return str(node.value)
    return None


def _import_target(nodes: list[Any], start: int) -> tuple[str | None, int]:
    """Return the URL of an ``@import`` whose prelude starts at ``nodes[start]``.

    Also returns the index after the URL token, so that it is not visited again as a url().
    """
    for index in range(start, len(nodes)):
        node = nodes[index]
        if node.type in ("whitespace", "comment"):
            continue
        if node.type in ("string", "url"):
            return str(node.value), index + 1
        if node.type == "function" and node.lower_name == "url":
            return _first_string(node.arguments), index + 1
        return None, index
    return None, len(nodes)


def _function_targets(node: Any) -> list[str]:
    """Return the URLs a CSS function names directly."""
    name = node.lower_name
    if name in ("url", "src"):
        target = _first_string(node.arguments)
        return [target] if target is not None else []
    if name in _IMAGE_SET_FUNCTIONS:
        # image-set("a.png" 1x) takes plain strings as URLs
        return [str(arg.value) for arg in node.arguments if arg.type == "string"]
    return []


@dataclass
class _CssFrame:
    nodes: list[Any]
    font: bool  # inside @font-face, where url() names a font
    index: int = 0
    font_block_next: bool = False


def _css_reference_nodes(nodes: list[Any]) -> Iterator[_CssReference]:
    """Walk a tinycss2 component list in source order (iteratively: CSS can nest deeply)."""
    stack = [_CssFrame(nodes, font=False)]
    while stack:
        frame = stack[-1]
        if frame.index >= len(frame.nodes):
            stack.pop()
            continue
        node = frame.nodes[frame.index]
        frame.index += 1
        kind = "font" if frame.font else "url"
        if node.type == "at-keyword":
            if node.lower_value == "import":
                target, frame.index = _import_target(frame.nodes, frame.index)
                if target is not None:
                    yield _CssReference(target, "import")
            frame.font_block_next = node.lower_value == "font-face"
        elif node.type == "url":
            yield _CssReference(str(node.value), kind)
        elif node.type == "function":
            yield from (_CssReference(target, kind) for target in _function_targets(node))
            if node.lower_name not in ("url", "src"):
                stack.append(_CssFrame(list(node.arguments), font=frame.font))
        elif node.type in ("{} block", "() block", "[] block"):
            stack.append(_CssFrame(list(node.content), font=frame.font or frame.font_block_next))
            frame.font_block_next = False


def _css_targets(css: str, base: str) -> list[tuple[str, str]]:
    """Return absolute (url, reference kind) pairs of a stylesheet in source order."""
    found: list[tuple[str, str]] = []
    for reference in _css_reference_nodes(_parse_css(css)):
        url = _requisite_url(base, reference.url)
        if url is not None:
            found.append((url, reference.kind))
    return found


def css_references(css: bytes | str, url: str) -> tuple[str, ...]:
    """Return the URLs a stylesheet refers to through ``url()`` and ``@import``.

    Absolute (resolved against ``url``, the stylesheet's own URL), deduplicated, in source
    order; ``data:`` URLs are skipped. Bytes are decoded as CSS says (BOM, ``@charset``, UTF-8).
    """
    text = css if isinstance(css, str) else str(decode_stylesheet_bytes(css)[0])
    seen: dict[str, None] = {}
    for target, _ in _css_targets(text, url):
        seen.setdefault(target, None)
    return tuple(seen)


def _requisite_url(base: str, raw: str | None) -> str | None:
    """Resolve a resource reference; None for values a browser would not fetch."""
    if raw is None:
        return None
    value = raw.strip(_ASCII_WHITESPACE)
    if not value or value.startswith("#"):
        return None
    resolved = _resolve(base, value)
    if resolved is None or resolved.lower().startswith(_SKIPPED_SCHEMES):
        return None
    # a fragment never changes what is fetched; keeping it would fetch sprite.svg once per icon
    return urldefrag(resolved)[0] or None


def _srcset_urls(value: str) -> list[str]:
    """Return every candidate URL of a ``srcset`` (WHATWG parsing: URLs may contain commas)."""
    urls: list[str] = []
    position, length = 0, len(value)
    while position < length:
        while position < length and value[position] in _SRCSET_SEPARATORS:
            position += 1
        start = position
        while position < length and value[position] not in _ASCII_WHITESPACE:
            position += 1
        candidate = value[start:position]
        if candidate.endswith(","):
            candidate = candidate.rstrip(",")
        else:
            position = _skip_descriptors(value, position)
        if candidate:
            urls.append(candidate)
    return urls


def _skip_descriptors(value: str, position: int) -> int:
    """Return the index just past the comma ending a srcset candidate's descriptors."""
    depth = 0
    while position < len(value):
        char = value[position]
        position += 1
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            break
    return position


def _css_kind(url: str, reference_kind: str) -> str:
    if reference_kind == "import":
        return "stylesheet"
    path = urlsplit(url).path.lower()
    if reference_kind == "font" or path.endswith(_FONT_EXTENSIONS):
        return "font"
    if path.endswith(".css"):
        return "stylesheet"
    # outside @font-face, url() feeds background, list-style, border, cursor, mask: images
    return "image"


@dataclass
class _RequisiteCollector:
    base: str
    found: dict[str, str] = field(default_factory=dict)
    # pages repeat the same values (one icon, one inline style) thousands of times
    urls: dict[str, str | None] = field(default_factory=dict)
    styles: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, raw: str | None, kind: str) -> None:
        if raw is None:
            return
        if raw not in self.urls:
            self.urls[raw] = _requisite_url(self.base, raw)
        url = self.urls[raw]
        if url is not None:
            self.found.setdefault(url, kind)

    def add_srcset(self, raw: str | None, kind: str) -> None:
        if raw:
            for candidate in _srcset_urls(raw):
                self.add(candidate, kind)

    def add_css(self, css: str | None) -> None:
        if not css or ("url" not in css.lower() and "@import" not in css.lower()):
            return  # most style attributes name no URL; skip tokenising them
        if css not in self.styles:
            self.styles[css] = _css_targets(css, self.base)
        for url, reference_kind in self.styles[css]:
            self.found.setdefault(url, _css_kind(url, reference_kind))

    def result(self) -> tuple[Requisite, ...]:
        return tuple(Requisite(url=url, kind=kind) for url, kind in self.found.items())


def _link_requisite(element: HtmlElement, collector: _RequisiteCollector) -> None:
    rels = set((element.get("rel") or "").lower().split())
    href = element.get("href")
    if "stylesheet" in rels:
        collector.add(href, "stylesheet")
    elif rels & _ICON_RELS:
        collector.add(href, "icon")
    elif "modulepreload" in rels:
        collector.add(href, "script")
    elif "preload" in rels:
        kind = _PRELOAD_KINDS.get((element.get("as") or "").strip().lower(), "other")
        collector.add(href, kind)
        collector.add_srcset(element.get("imagesrcset"), "image")
    elif "manifest" in rels:
        collector.add(href, "other")


def _image_requisite(element: HtmlElement, collector: _RequisiteCollector) -> None:
    collector.add(element.get("src"), "image")
    collector.add_srcset(element.get("srcset"), "image")
    # lazy-loading scripts swap these in; without them the capture shows placeholders
    collector.add(element.get("data-src"), "image")
    collector.add_srcset(element.get("data-srcset"), "image")


def _source_requisite(element: HtmlElement, collector: _RequisiteCollector) -> None:
    parent = element.getparent()
    in_media = parent is not None and _tag(parent) in _MEDIA_PARENTS
    collector.add(element.get("src"), "media" if in_media else "image")
    collector.add_srcset(element.get("srcset"), "image")
    collector.add_srcset(element.get("data-srcset"), "image")


def _media_requisite(element: HtmlElement, collector: _RequisiteCollector) -> None:
    collector.add(element.get("poster"), "image")
    collector.add(element.get("src"), "media")


def _input_requisite(element: HtmlElement, collector: _RequisiteCollector) -> None:
    if (element.get("type") or "").strip().lower() == "image":
        collector.add(element.get("src"), "image")


_REQUISITE_HANDLERS: dict[str, Callable[[HtmlElement, _RequisiteCollector], None]] = {
    "link": _link_requisite,
    "script": lambda element, collector: collector.add(element.get("src"), "script"),
    "img": _image_requisite,
    "source": _source_requisite,
    "video": _media_requisite,
    "audio": _media_requisite,
    "track": lambda element, collector: collector.add(element.get("src"), "media"),
    "input": _input_requisite,
    "embed": lambda element, collector: collector.add(element.get("src"), "other"),
    "object": lambda element, collector: collector.add(element.get("data"), "other"),
    "style": lambda element, collector: collector.add_css(element.text),
}


def _requisites_from_tree(root: HtmlElement, base: str) -> tuple[Requisite, ...]:
    collector = _RequisiteCollector(base)
    walker = etree.iterwalk(root, events=("start",))
    for _, element in walker:
        tag = _tag(element)
        if tag == "template":
            walker.skip_subtree()  # inert until a script clones it
            continue
        handler = _REQUISITE_HANDLERS.get(tag)
        if handler is not None:
            handler(element, collector)
        if tag in _LEGACY_BACKGROUND_TAGS:
            collector.add(element.get("background"), "image")
        collector.add_css(element.get("style"))
    return collector.result()


def find_requisites(html: str, url: str) -> tuple[Requisite, ...]:
    """List the resources a browser loads to render the page, deduplicated, in document order."""
    root = _parse_document(html)
    return _requisites_from_tree(root, _document_base(root, url))


# ---------------------------------------------------------------------------------------------
# Text: collapsed block text with anchor offsets, paragraph rendering, context snippets
# ---------------------------------------------------------------------------------------------

_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "head", "title"})
_HTML_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
     "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
     "h4", "h5", "h6", "header", "hr", "html", "legend", "li", "main", "nav", "ol", "p", "pre",
     "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
)
_EXTRACT_BLOCK_TAGS = frozenset(
    {"body", "code", "div", "head", "item", "list", "p", "quote", "row", "table"}
)


@dataclass(frozen=True)
class _Vocabulary:
    """Which tags start paragraphs and which hold no readable text."""

    blocks: frozenset[str]
    hidden: frozenset[str]


_HTML = _Vocabulary(_HTML_BLOCK_TAGS, _INVISIBLE_TAGS)
# trafilatura's output is TEI-like: <head> is a heading there, <list>/<item> are lists
_EXTRACTED = _Vocabulary(_EXTRACT_BLOCK_TAGS, frozenset())
_LINE_BREAK_TAGS = frozenset({"br", "lb"})
_CELL_TAGS = frozenset({"td", "th", "cell"})
_CONTEXT_LIMIT = 240
_SENTENCE_END = re.compile(r"[.!?…。！？]['\"”’»)\]]*\s")


class _CollapsedText:
    """Accumulates text with whitespace collapsed, tracking offsets into the result."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending_space = False

    def add(self, text: str | None) -> None:
        if not text:
            return
        words = text.split()
        if not words:
            self.pending_space = True
            return
        if text[0].isspace():
            self.pending_space = True
        joined = " ".join(words)
        if self.pending_space and self.length:
            self.parts.append(" ")
            self.length += 1
        self.parts.append(joined)
        self.length += len(joined)
        self.pending_space = text[-1].isspace()

    def boundary(self) -> None:
        self.pending_space = True

    def value(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class _BlockText:
    text: str
    spans: dict[HtmlElement, tuple[int, int]]


def _block_text(block: HtmlElement, anchors: set[HtmlElement]) -> _BlockText:
    """Collapse the visible text of ``block``, noting where each of ``anchors`` sits in it."""
    builder = _CollapsedText()
    raw_spans: dict[HtmlElement, tuple[int, int]] = {}
    starts: dict[HtmlElement, int] = {}
    walker = etree.iterwalk(block, events=("start", "end"))
    for event, element in walker:
        tag = _tag(element)
        if event == "start":
            if tag in _INVISIBLE_TAGS and element is not block:
                walker.skip_subtree()
                continue
            if tag in _HTML_BLOCK_TAGS or tag in _LINE_BREAK_TAGS:
                builder.boundary()
            if element in anchors:
                starts[element] = builder.length
            builder.add(element.text)
            continue
        if element in starts:
            raw_spans[element] = (starts.pop(element), builder.length)
        if tag in _HTML_BLOCK_TAGS:
            builder.boundary()
        if element is not block:
            builder.add(element.tail)
    text = builder.value()
    spans: dict[HtmlElement, tuple[int, int]] = {}
    for anchor, (start, end) in raw_spans.items():
        # the separating space was emitted with the anchor's first word
        if start < end and text[start] == " ":
            start += 1
        spans[anchor] = (start, max(start, end))
    return _BlockText(text, spans)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    window_start = max(0, start - _CONTEXT_LIMIT)
    low = window_start
    for match in _SENTENCE_END.finditer(text, window_start, start):
        low = match.end()
    high_match = _SENTENCE_END.search(text, end, end + _CONTEXT_LIMIT)
    high = high_match.end() if high_match else min(len(text), end + _CONTEXT_LIMIT)
    return low, high


def _window(text: str, start: int, end: int, low: int, high: int) -> str:
    """Cut at most 240 characters of text[low:high], centred on text[start:end]."""
    spare = _CONTEXT_LIMIT - (end - start)
    left = max(low, start - spare // 2)
    right = min(high, left + _CONTEXT_LIMIT)
    left = max(low, right - _CONTEXT_LIMIT)
    # cut at word boundaries, never into the anchor text
    if left > low and text[left - 1] != " ":
        space = text.find(" ", left, start)
        if space != -1:
            left = space + 1
    if right < high and text[right] != " ":
        space = text.rfind(" ", end, right)
        if space != -1:
            right = space
    return text[left:right].strip()


def _snippet(text: str, start: int, end: int) -> str:
    """Return the sentence (or paragraph) around text[start:end], at most 240 characters."""
    if len(text) <= _CONTEXT_LIMIT:
        return text
    if end - start >= _CONTEXT_LIMIT:
        return text[start : start + _CONTEXT_LIMIT]
    low, high = _sentence_bounds(text, start, end)
    if high - low <= _CONTEXT_LIMIT:
        return text[low:high].strip()
    return _window(text, start, end, low, high)


class _Paragraphs:
    """Renders a tree as plain text: one paragraph per block, blank lines between them."""

    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.lines: list[str] = []
        self.line: list[str] = []

    def text(self, value: str | None) -> None:
        if value:
            self.line.append(value)

    def cell(self) -> None:
        self.line.append(" ")

    def line_break(self) -> None:
        collapsed = " ".join("".join(self.line).split())
        if collapsed:
            self.lines.append(collapsed)
        self.line = []

    def flush(self) -> None:
        self.line_break()
        if self.lines:
            self.paragraphs.append("\n".join(self.lines))
        self.lines = []

    def value(self) -> str:
        self.flush()
        return "\n\n".join(self.paragraphs)


def _render_text(
    root: Any,
    vocabulary: _Vocabulary,
    skip: Callable[[HtmlElement], bool] | None = None,
) -> str:
    """Render ``root`` as plain text: blocks become paragraphs, ``skip`` prunes subtrees."""
    out = _Paragraphs()
    skipped: set[Any] = set()
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = _tag(element)
        if event == "start":
            if element is not root and (
                tag in vocabulary.hidden or (skip is not None and skip(element))
            ):
                walker.skip_subtree()
                skipped.add(element)
                continue
            if tag in vocabulary.blocks:
                out.flush()
            elif tag in _LINE_BREAK_TAGS:
                out.line_break()
            elif tag in _CELL_TAGS:
                out.cell()
            out.text(element.text)
            continue
        if tag in vocabulary.blocks and element not in skipped:
            out.flush()
        if element is not root:
            out.text(element.tail)
    return out.value()


# ---------------------------------------------------------------------------------------------
# Boilerplate detection
# ---------------------------------------------------------------------------------------------

# boilerplate by definition, whatever they hold (and <header>, outside an article)
_BOILERPLATE_TAGS = frozenset({"nav", "aside", "footer", "menu", "dialog"})
_BOILERPLATE_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
     "toolbar", "dialog", "alertdialog"}
)
# words of a class or id (split on anything but letters and digits): whole words, and word
# beginnings for names that sites compound ("jp-relatedposts", "sharedaddy", "socialbar")
_BOILERPLATE_WORDS = re.compile(
    r"(?<![a-z0-9])(?:(?:"
    r"nav|menu|skip|pagination|pager|toolbar|masthead|header|footer|kicker|eyebrow|"
    r"byline|dateline|author|authors|contributors?|bio|meta|permalink|posted|"
    r"tags?|taglist|tagcloud|topics|keywords|categories|rail|comments?|"
    r"popular|recommended|mostread|most-read|trending|more-stories|"
    r"ad|ads|cookie|consent|gdpr|popup|modal|banner|search"
    r")(?![a-z0-9])|(?:"
    r"related|share|sharing|social|sidebar|breadcrumb|widget|newsletter|subscri|signup|"
    r"promo|advert|sponsor|outbrain|taboola|disqus|addthis|navbar|navigation"
    r"))"
)
# headings that announce a box of links that is not the story's own ("Related topics")
_BOILERPLATE_HEADINGS = re.compile(
    r"(?:"
    # phrases that introduce other stories, whatever follows them
    r"related|more on this|more from|more stories|more like this|most read|most popular|"
    r"most viewed|recommended|you may also|you might also|you may have missed|read more|"
    r"read next|top stories|follow us|sign up|ähnliche|mehr zum thema|meistgelesen|"
    r"à lire aussi|sur le même sujet|les plus lus|relacionad|más leíd"
    r")|(?:"
    # words that do so only standing alone ("Share", but not "Share prices fall")
    r"share(?: this(?: article| story| page)?)?|topics|tags|trending(?: now)?|latest|popular|"
    r"comments?(?: \(\d+\))?|\d+ comments|newsletter|advertisement|sponsored|themen|teilen"
    r")\W*$",
    re.IGNORECASE,
)
_HEADING_MAX_LENGTH = 60
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# a box's heading comes first; looking further would make each check cost its subtree
_HEADING_LOOKAHEAD = 3
# where pages name their components (React sites favour data-* over classes)
_NAMING_ATTRIBUTES = ("class", "id", "data-component", "data-testid")
# an element merely named like boilerplate that holds at least this share of the content is
# the content itself (WordPress puts tag-* and category-* classes on the article element)
_CONTENT_SHARE = 0.5


def _boilerplate_by_structure(element: HtmlElement) -> bool:
    tag = _tag(element)
    if tag == "header":
        # a page's header is its banner; an article's holds the headline and standfirst (its
        # byline and share buttons are caught by their names)
        return next(element.iterancestors("article"), None) is None
    if tag in _BOILERPLATE_TAGS:
        return True
    return (element.get("role") or "").strip().lower() in _BOILERPLATE_ROLES


def _boilerplate_by_name(element: HtmlElement) -> bool:
    tag = _tag(element)
    if tag in ("html", "body", "main", "article"):
        return False
    if tag == "form":
        # a newsletter box inside the story; ASP.NET wraps whole pages in one (share rule)
        return True
    marker = " ".join(element.get(name) or "" for name in _NAMING_ATTRIBUTES).lower()
    return _BOILERPLATE_WORDS.search(marker) is not None


def _boilerplate_by_heading(element: HtmlElement) -> bool:
    """Tell whether a box opens with a heading such as "Related topics" or "Most read"."""
    if _tag(element) in ("html", "body", "main", "article"):
        return False
    for position, child in enumerate(element.iterchildren(tag=etree.Element)):
        if position >= _HEADING_LOOKAHEAD:
            break
        if _tag(child) in _HEADING_TAGS or child.get("role") == "heading":
            heading = " ".join(child.text_content().split())
            return (
                len(heading) <= _HEADING_MAX_LENGTH
                and _BOILERPLATE_HEADINGS.match(heading) is not None
            )
    return False


def _text_length(element: HtmlElement) -> int:
    # serialising as text runs in C: ten times faster than summing itertext()
    text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    return len(text) if isinstance(text, str) else 0


class _BoilerplateFilter:
    """Memoised verdicts on whether an element sits in boilerplate (or outside ``stop``)."""

    def __init__(self, content_length: int, stop: HtmlElement | None = None) -> None:
        self.threshold = content_length * _CONTENT_SHARE
        self.stop = stop
        self.memo: dict[HtmlElement, bool] = {}
        self.inside: dict[HtmlElement, bool] = {}

    def is_boilerplate(self, element: HtmlElement) -> bool:
        cached = self.memo.get(element)
        if cached is None:
            named = _boilerplate_by_name(element) or _boilerplate_by_heading(element)
            cached = _boilerplate_by_structure(element) or (
                named and _text_length(element) < self.threshold
            )
            self.memo[element] = cached
        return cached

    def rejects(self, element: HtmlElement) -> bool:
        """Tell whether ``element`` is outside ``stop`` or in boilerplate below ``stop``."""
        path: list[HtmlElement] = []
        node: HtmlElement | None = element
        # falling off the top means the element is not inside ``stop`` at all
        verdict = self.stop is not None
        while node is not None:
            if node is self.stop:
                verdict = False
                break
            known = self.inside.get(node)
            if known is not None:
                verdict = known
                break
            path.append(node)
            if self.is_boilerplate(node):
                verdict = True
                break
            node = node.getparent()
        for visited in path:
            self.inside[visited] = verdict
        return verdict


# ---------------------------------------------------------------------------------------------
# Main content: trafilatura with href markers, or a linear heuristic
# ---------------------------------------------------------------------------------------------

# trafilatura's cost grows faster than linearly (libxml2's "//p//text()" among others): about
# 1.5 s at 10,000 link-heavy elements, 5 s at 25,000, minutes at 200,000. Larger pages only
# show it a smaller candidate container, if there is one. Typical articles have 2,000 to 8,000.
_TRAFILATURA_MAX_ELEMENTS = 15_000
# metadata sits near the top of a page; a huge page's metadata is read from its first
# elements, each text cut short (htmldate runs its date regexes over all the text)
_METADATA_MAX_ELEMENTS = 15_000
_METADATA_MAX_TEXT = 1_000_000
_METADATA_BUDGET = 10_000
_METADATA_TEXT_CAP = 5_000
# an absolute URL so that nothing in trafilatura mistakes it for a relative or odd link
_MARKER = "https://provenance.invalid/anchor/"
# text matching (used when trafilatura's chosen extractor drops links) is a substring search;
# bound its total work, and ignore blocks too short to be recognisable
_TEXT_MATCH_BUDGET = 20_000_000
_TEXT_MATCH_MIN_LENGTH = 40
# how much more text than trafilatura kept the story's region may hold and still count as
# the story (the surplus being what trafilatura dropped: reference lists, captions)
_REGION_TEXT_RATIO = 1.5
_REGION_TEXT_SLACK = 500

_QUIET_LOGGERS = ("trafilatura", "htmldate", "justext", "courlan", "readability")
_QUIET_LOCK = threading.Lock()


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence the extraction libraries: their complaints are about the page, not for users.

    Logger levels and warning filters are process-wide, so calls are serialised; the libraries
    are CPU-bound under the GIL anyway.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@dataclass(frozen=True)
class _MainContent:
    chosen: frozenset[int]  # indices into the page's anchor list
    text: str


def _count_elements(element: HtmlElement) -> int:
    return sum(1 for _ in element.iter())


def _score_paragraph(paragraph: HtmlElement, scores: dict[HtmlElement, float]) -> None:
    """Credit a paragraph's text to its parent, and half of it to its grandparent."""
    # the grandparent share lets a page of one-paragraph <div>s still add up to one container
    length = float(_text_length(paragraph))
    parent = paragraph.getparent()
    if parent is None:
        return
    scores[parent] = scores.get(parent, 0.0) + length
    grandparent = parent.getparent()
    if grandparent is not None:
        scores[grandparent] = scores.get(grandparent, 0.0) + length / 2


def _candidate_container(root: HtmlElement) -> HtmlElement:
    """Find the element most likely to hold the article, in one pass over the page."""
    body = root.find("body")
    if body is None:
        body = root
    articles: list[HtmlElement] = []
    mains: list[HtmlElement] = []
    paragraph_text: dict[HtmlElement, float] = {}
    for element in body.iter():
        tag = _tag(element)
        if "articlebody" in (element.get("itemprop") or "").lower().split():
            return element
        if tag == "article":
            articles.append(element)
        elif tag == "main" or (element.get("role") or "").strip().lower() == "main":
            mains.append(element)
        elif tag == "p":
            _score_paragraph(element, paragraph_text)
    densest = max(paragraph_text.items(), key=lambda item: item[1], default=None)
    if articles:
        # listing pages have many <article> teasers; the story is the longest
        lengths = [(_text_length(article), article) for article in articles]
        length, article = max(lengths, key=lambda item: item[0])
        if densest is None or length >= densest[1] * _CONTENT_SHARE:
            return article
    if mains:
        return mains[0]
    return densest[0] if densest is not None else body


def _trafilatura_input(
    root: HtmlElement, total: int, container: HtmlElement | None
) -> HtmlElement | None:
    """Return what trafilatura may see: the page, or a copy of a small candidate container."""
    if total <= _TRAFILATURA_MAX_ELEMENTS:
        return root
    if container is None or _tag(container) in ("html", "body"):
        return None
    if _count_elements(container) > _TRAFILATURA_MAX_ELEMENTS:
        return None
    wrapper = lxml.html.document_fromstring("<html><body></body></html>")
    clone = deepcopy(container)
    clone.tail = None
    wrapper.find("body").append(clone)
    return wrapper


def _extractor() -> Extractor:
    return Extractor(
        output_format="python",
        comments=False,
        links=True,
        images=False,
        tables=True,
        formatting=False,
    )


def _run_trafilatura(
    root: HtmlElement, anchors: list[HtmlElement], total: int, container: HtmlElement | None
) -> Document | None:
    """Run trafilatura with every anchor's href replaced by its numbered marker."""
    originals = [anchor.get("href") for anchor in anchors]
    try:
        for index, anchor in enumerate(anchors):
            anchor.set("href", f"{_MARKER}{index}")
        target = _trafilatura_input(root, total, container)
        if target is None:
            return None
        with _quiet_libraries():
            result = bare_extraction(target, options=_extractor())
    except Exception:  # a bug in an extraction library must not cost the capture
        _LOG.debug("trafilatura failed; falling back to the heuristic", exc_info=True)
        return None
    finally:
        _restore_hrefs(anchors, originals)
    return result if isinstance(result, Document) else None


def _restore_hrefs(anchors: list[HtmlElement], hrefs: list[str]) -> None:
    for anchor, href in zip(anchors, hrefs, strict=True):
        try:
            anchor.set("href", href)
        except ValueError:
            # lxml refuses some values the parser accepted; callers use their own copy
            _LOG.debug("could not restore href %r", href)


def _links_in(body: Any) -> list[str]:
    return [ref.get("target") or ref.get("href") or "" for ref in body.iter("ref", "a")]


def _chosen_by_markers(targets: list[str]) -> set[int]:
    chosen: set[int] = set()
    for target in targets:
        suffix = target[len(_MARKER) :] if target.startswith(_MARKER) else ""
        if suffix.isdigit():
            chosen.add(int(suffix))
    return chosen


def _block_of(element: HtmlElement) -> HtmlElement:
    """Return the nearest block-level ancestor: the paragraph a link is read in."""
    node = element.getparent()
    while node is not None:
        if _tag(node) in _HTML_BLOCK_TAGS:
            return node
        node = node.getparent()
    return element


def _block_texts(anchors: Iterable[HtmlElement]) -> dict[HtmlElement, _BlockText]:
    """Map each anchor to its block's text, walking each block once however many links."""
    members: dict[HtmlElement, set[HtmlElement]] = {}
    owner: dict[HtmlElement, HtmlElement] = {}
    for anchor in anchors:
        block = _block_of(anchor)
        members.setdefault(block, set()).add(anchor)
        owner[anchor] = block
    texts = {block: _block_text(block, group) for block, group in members.items()}
    return {anchor: texts[block] for anchor, block in owner.items()}


def _collapsed(element: Any) -> str:
    text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    return " ".join(text.split()) if isinstance(text, str) else ""


def _extracted_paragraphs(body: Any) -> set[str]:
    """Return the collapsed text of every block trafilatura kept."""
    texts = {_collapsed(element) for element in body.iter() if _tag(element) in _EXTRACT_BLOCK_TAGS}
    texts.discard("")
    return texts


def _chosen_by_text(
    anchors: list[HtmlElement], body: Any, text: str, keep: Callable[[HtmlElement], bool]
) -> set[int]:
    """Pick anchors whose paragraph is in the extracted text (for extractors that drop links)."""
    paragraphs = _extracted_paragraphs(body)
    flat = " ".join(text.split())
    candidates = [(index, anchor) for index, anchor in enumerate(anchors) if keep(anchor)]
    texts = _block_texts(anchor for _, anchor in candidates)
    budget = _TEXT_MATCH_BUDGET
    chosen: set[int] = set()
    for index, anchor in candidates:
        block = texts[anchor].text
        if block in paragraphs:
            chosen.add(index)
        elif len(block) >= _TEXT_MATCH_MIN_LENGTH and budget > 0:
            budget -= len(flat)
            if block in flat:
                chosen.add(index)
    return chosen


def _lowest_common_ancestor(elements: list[HtmlElement]) -> HtmlElement | None:
    chain: list[HtmlElement] = []
    node: HtmlElement | None = elements[0]
    while node is not None:
        chain.append(node)
        node = node.getparent()
    position = {element: index for index, element in enumerate(chain)}
    highest = 0
    for element in elements[1:]:
        node = element
        while node is not None and node not in position:
            node = node.getparent()
        if node is None:
            return None
        highest = max(highest, position[node])
    return chain[highest]


def _content_region(
    root: HtmlElement, anchors: list[HtmlElement], chosen: set[int], body: Any
) -> HtmlElement | None:
    """Find the smallest element holding the paragraphs and links trafilatura kept."""
    paragraphs = _extracted_paragraphs(body)
    # only <p>: a headline above the story would lift the region to the whole layout
    members = [anchors[index] for index in chosen]
    members += [p for p in root.iter("p") if _collapsed(p) in paragraphs]
    if len(members) < 2:
        return None
    region = _lowest_common_ancestor(members)
    if region is None or _tag(region) in ("html", "body"):
        return None
    return region


def _expanded(
    root: HtmlElement, anchors: list[HtmlElement], chosen: set[int], body: Any, text: str
) -> set[int]:
    """Add the links trafilatura dropped from inside the story, such as a list of sources.

    trafilatura discards link-dense blocks, and a story's reference list is exactly that. Links
    in the region holding the kept content are added back unless they sit in boilerplate, and
    only if that region holds little text beyond what trafilatura kept (else it is the layout).
    """
    region = _content_region(root, anchors, chosen, body)
    if region is None:
        return chosen
    boilerplate = _BoilerplateFilter(len(text), stop=region)
    region_text = _render_text(region, _HTML, boilerplate.is_boilerplate)
    if len(region_text) > len(text) * _REGION_TEXT_RATIO + _REGION_TEXT_SLACK:
        return chosen
    extra = {index for index, anchor in enumerate(anchors) if not boilerplate.rejects(anchor)}
    return chosen | extra


def _from_trafilatura(
    root: HtmlElement, result: Document, anchors: list[HtmlElement]
) -> _MainContent | None:
    text = _render_text(result.body, _EXTRACTED)
    if not text:
        return None
    # trafilatura sometimes keeps a related-links box or a tag list at the end of the story
    boilerplate = _BoilerplateFilter(len(text))
    targets = _links_in(result.body)
    if targets:
        chosen = _chosen_by_markers(targets)
    else:
        chosen = _chosen_by_text(anchors, result.body, text, lambda a: not boilerplate.rejects(a))
    chosen = _expanded(root, anchors, chosen, result.body, text)
    kept = frozenset(index for index in chosen if not boilerplate.rejects(anchors[index]))
    return _MainContent(kept, text)


def _heuristic_content(
    root: HtmlElement, anchors: list[HtmlElement], container: HtmlElement
) -> _MainContent:
    boilerplate = _BoilerplateFilter(_text_length(container), stop=container)
    text = _render_text(container, _HTML, boilerplate.is_boilerplate)
    if not text:
        body = root.find("body")
        text = _render_text(root if body is None else body, _HTML)
    chosen = frozenset(
        index for index, anchor in enumerate(anchors) if not boilerplate.rejects(anchor)
    )
    return _MainContent(chosen, text)


def _main_content(root: HtmlElement, anchors: list[HtmlElement], total: int) -> _MainContent:
    # the candidate is needed up front only when the page is too big for trafilatura
    container = _candidate_container(root) if total > _TRAFILATURA_MAX_ELEMENTS else None
    result = _run_trafilatura(root, anchors, total, container)
    content = _from_trafilatura(root, result, anchors) if result is not None else None
    if content is not None:
        return content
    if container is None:
        container = _candidate_container(root)
    return _heuristic_content(root, anchors, container)


def _body_links(
    anchors: list[HtmlElement], hrefs: list[str], chosen: frozenset[int], base: str
) -> tuple[BodyLink, ...]:
    indices = sorted(chosen)
    texts = _block_texts(anchors[index] for index in indices)
    resolved: dict[str, str] = {}  # articles cite the same source more than once
    links: list[BodyLink] = []
    for index in indices:
        block = texts[anchors[index]]
        # an anchor hidden in an invisible subtree (noscript, svg) has no span: no text
        start, end = block.spans.get(anchors[index], (0, 0))
        href = hrefs[index]
        if href not in resolved:
            resolved[href] = _resolve(base, href) or href.strip(_ASCII_WHITESPACE)
        links.append(
            BodyLink(
                href=href,
                url=resolved[href],
                text=block.text[start:end],
                context=_snippet(block.text, start, end),
            )
        )
    return tuple(links)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------

_ARTICLE_TYPES = frozenset({"Report", "ReportageNews", "Review", "WebPage"})
_AUTHOR_META_KEYS = ("author", "article:author", "dc.creator", "dcterms.creator", "parsely-author")
_DATE_META_KEYS = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "publish-date",
    "publish_date",
    "pubdate",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.date",
    "date",
)
_ISO_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?\s*([Zz]|[+-]\d{2}:?\d{2})?)?"
)
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


@dataclass
class _PageFacts:
    """What the page itself declares: meta tags, JSON-LD, canonical link, language."""

    meta: dict[str, str] = field(default_factory=dict)
    meta_authors: list[str] = field(default_factory=list)
    article: dict[str, Any] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    canonical: str | None = None
    language: str | None = None
    title: str | None = None
    item_date: str | None = None


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    collapsed = " ".join(value.split())
    return collapsed or None


def _collect_meta(root: HtmlElement, facts: _PageFacts) -> None:
    for element in root.iter("meta"):
        key = (
            element.get("property")
            or element.get("name")
            or element.get("itemprop")
            or element.get("http-equiv")
            or ""
        ).strip().lower()
        value = _clean(element.get("content"))
        if not key or value is None:
            continue
        facts.meta.setdefault(key, value)
        if key in _AUTHOR_META_KEYS:
            facts.meta_authors.extend(part for part in re.split(r"[;|]", value) if part.strip())


def _jsonld_nodes(root: HtmlElement) -> list[dict[str, Any]]:
    """Return every JSON object in the page's JSON-LD blocks, outer before inner."""
    nodes: list[dict[str, Any]] = []
    for script in root.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is common; the page's other metadata still counts
        stack: list[Any] = [data]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                nodes.append(value)
                stack.extend(reversed(list(value.values())))
            elif isinstance(value, list):
                stack.extend(reversed(value))
    return nodes


def _jsonld_types(node: dict[str, Any]) -> set[str]:
    raw = node.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    # "http://schema.org/NewsArticle" and "schema:NewsArticle" both mean NewsArticle
    return {re.split(r"[/:#]", value)[-1] for value in values if isinstance(value, str)}


def _is_article_type(types: set[str]) -> bool:
    return any(t.endswith(("Article", "Posting")) or t in _ARTICLE_TYPES for t in types)


def _collect_jsonld(root: HtmlElement, facts: _PageFacts) -> None:
    nodes = _jsonld_nodes(root)
    for node in nodes:
        identifier = node.get("@id")
        if isinstance(identifier, str):
            facts.by_id.setdefault(identifier, node)
    articles = [node for node in nodes if _is_article_type(_jsonld_types(node))]
    # a real article type beats the WebPage that often wraps it
    articles.sort(key=lambda node: "WebPage" in _jsonld_types(node))
    if articles:
        facts.article = articles[0]


def _jsonld_text(value: object) -> str | None:
    return _clean(unescape(value)) if isinstance(value, str) else None


def _jsonld_names(value: object, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """Return the names of the people or organisations in a JSON-LD author or publisher."""
    names: list[str] = []
    pending: list[object] = [value]
    while pending:
        item = pending.pop(0)
        if isinstance(item, list):
            pending[:0] = item
        elif isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            if "name" not in item and isinstance(item.get("@id"), str):
                item = by_id.get(item["@id"], item)
            name = item.get("name")
            if isinstance(name, str):
                names.append(name)
    return [text for text in (_jsonld_text(name) for name in names) if text]


def _collect_document(root: HtmlElement, base: str, facts: _PageFacts) -> None:
    facts.language = root.get("lang") or root.get("xml:lang")
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            facts.canonical = _resolve(base, str(link.get("href")))
            break
    title = root.find("head/title")
    if title is None:
        title = root.find(".//title")
    if title is not None:
        facts.title = _clean(title.text_content())
    for element in root.iterfind(".//*[@itemprop]"):
        if "datepublished" in (element.get("itemprop") or "").lower().split():
            facts.item_date = element.get("datetime") or element.get("content")
            break


def _collect_facts(root: HtmlElement, base: str) -> _PageFacts:
    facts = _PageFacts()
    _collect_meta(root, facts)
    _collect_jsonld(root, facts)
    _collect_document(root, base, facts)
    return facts


def _normalise_zone(zone: str) -> str | None:
    if zone in ("Z", "z"):
        return "Z"
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        return None
    return "Z" if hours == minutes == 0 else f"{zone[0]}{digits[:2]}:{digits[2:]}"


def _normalise_date(value: str | None) -> str | None:
    """Return an RFC 3339 date, or date-time when the value has a time with an offset."""
    if not value:
        return None
    match = _ISO_DATE.match(value.strip())
    if match is None:
        return _normalise_email_date(value)
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    date = f"{year}-{month}-{day}"
    # RFC 3339 has no local time: without an offset only the date is certain
    offset = _normalise_zone(zone) if hour is not None and zone else None
    if offset is None:
        return date
    return f"{date}T{hour}:{minute}:{second or '00'}{offset}"


def _normalise_email_date(value: str) -> str | None:
    """Normalise dates like "Mon, 14 Aug 2017 09:30:00 +0000" (RFC 2822, used by some CMSs)."""
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return parsed.date().isoformat()
    return _normalise_date(parsed.isoformat())


def _normalise_language(value: object) -> str | None:
    """Return a BCP 47 tag with conventional casing ("en_us" becomes "en-US"), or None."""
    text = _clean(value) if isinstance(value, str) else None
    if text is None:
        return None
    candidate = text.split(",")[0].strip().replace("_", "-")
    if not _LANGUAGE_TAG.fullmatch(candidate):
        return None
    first, *rest = candidate.split("-")
    subtags = [first.lower()]
    for subtag in rest:
        if len(subtag) == 2 and subtag.isalpha():
            subtags.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            subtags.append(subtag.title())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)


def _unique_names(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        cleaned = _clean(re.sub(r"^\s*by\s+", "", name, flags=re.IGNORECASE))
        # article:author is often a profile URL, not a name
        if cleaned and not cleaned.lower().startswith(("http://", "https://", "www.")):
            seen.setdefault(cleaned.casefold(), cleaned)
    return tuple(seen.values())


def _authors(facts: _PageFacts, found: Document | None) -> tuple[str, ...]:
    if found is not None and found.author:
        return _unique_names(found.author.split(";"))
    from_jsonld = _jsonld_names(facts.article.get("author"), facts.by_id)
    return _unique_names(from_jsonld or facts.meta_authors)


def _published(facts: _PageFacts, found: Document | None) -> str | None:
    # declared publication times are exact; htmldate's answer is a day, sometimes a guess
    candidates = [facts.article.get("datePublished")]
    candidates += [facts.meta.get(key) for key in _DATE_META_KEYS]
    candidates += [facts.item_date, found.date if found is not None else None]
    for candidate in candidates:
        normalised = _normalise_date(candidate) if isinstance(candidate, str) else None
        if normalised is not None:
            return normalised
    return None


def _language(facts: _PageFacts, found: Document | None) -> str | None:
    in_language = facts.article.get("inLanguage")
    if isinstance(in_language, dict):
        in_language = in_language.get("alternateName") or in_language.get("name")
    candidates: list[object] = [
        facts.language,
        facts.meta.get("content-language"),
        facts.meta.get("og:locale"),
        in_language,
        facts.meta.get("language"),
        facts.meta.get("dc.language"),
        found.language if found is not None else None,
    ]
    return next(
        (tag for tag in (_normalise_language(value) for value in candidates) if tag), None
    )


def _site_name(facts: _PageFacts, found: Document | None) -> str | None:
    publisher = _jsonld_names(facts.article.get("publisher"), facts.by_id)
    return _first(
        facts.meta.get("og:site_name"),
        publisher[0] if publisher else None,
        facts.meta.get("application-name"),
        _clean(found.sitename) if found is not None else None,
    )


def _metadata(facts: _PageFacts, found: Document | None, base: str) -> PageMetadata:
    og_url = facts.meta.get("og:url")
    return PageMetadata(
        title=_first(
            _clean(found.title) if found is not None else None,
            facts.meta.get("og:title"),
            _jsonld_text(facts.article.get("headline")),
            facts.title,
        ),
        authors=_authors(facts, found),
        published=_published(facts, found),
        canonical_url=facts.canonical or (_resolve(base, og_url) if og_url else None),
        language=_language(facts, found),
        site_name=_site_name(facts, found),
        description=_first(
            _clean(found.description) if found is not None else None,
            facts.meta.get("description"),
            facts.meta.get("og:description"),
            _jsonld_text(facts.article.get("description")),
        ),
    )


def _shallow_copy(element: HtmlElement, parent: HtmlElement | None) -> HtmlElement | None:
    """Copy ``element`` without children (into ``parent``); None if lxml refuses it."""
    try:
        if parent is None:
            clone = lxml.html.Element(element.tag)
        else:
            clone = etree.SubElement(parent, element.tag)
    except (TypeError, ValueError):
        return None  # HTML allows tag names the tree API does not ("o:p", "foo<bar")
    for name, value in element.attrib.items():
        try:
            clone.set(name, value)
        except (TypeError, ValueError):
            continue
    # JSON-LD must stay whole to parse; any other text only needs its beginning
    cap = None if _tag(element) == "script" else _METADATA_TEXT_CAP
    for attribute in ("text", "tail"):
        value = getattr(element, attribute)
        try:
            setattr(clone, attribute, value[:cap] if value else value)
        except (TypeError, ValueError):
            continue  # control characters the tree API rejects
    return clone


def _truncated_copy(root: HtmlElement, budget: int) -> HtmlElement:
    """Copy the first ``budget`` elements of the page, in document order."""
    copy_root = _shallow_copy(root, None)
    if copy_root is None:
        return lxml.html.document_fromstring("<html><body></body></html>")
    count = 1
    stack: list[tuple[Iterator[HtmlElement], HtmlElement]] = [(root.iterchildren(), copy_root)]
    while stack and count < budget:
        children, target = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        clone = _shallow_copy(child, target)
        if clone is not None:
            count += 1
            stack.append((child.iterchildren(), clone))
    return copy_root


def _trafilatura_metadata(root: HtmlElement, total: int) -> Document | None:
    small = total <= _METADATA_MAX_ELEMENTS and _text_length(root) <= _METADATA_MAX_TEXT
    tree = root if small else _truncated_copy(root, _METADATA_BUDGET)
    try:
        with _quiet_libraries():
            return extract_metadata(tree)
    except Exception:  # a bug in an extraction library must not cost the capture
        _LOG.debug("trafilatura metadata extraction failed", exc_info=True)
        return None


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def extract_article(
    body: bytes, url: str, declared_charset: str | None = None
) -> ArticleExtraction:
    """Extract metadata, text, body links and requisites of the page ``body`` fetched from ``url``.

    Never raises on bad input: a page with no article yields best-effort text.
    """
    root = _parse_document(decode_html(body, declared_charset))
    base = _document_base(root, url)
    requisites = _requisites_from_tree(root, base)
    anchors = [anchor for anchor in root.iter("a") if anchor.get("href") is not None]
    hrefs = [str(anchor.get("href")) for anchor in anchors]
    total = _count_elements(root)
    content = _main_content(root, anchors, total)
    links = _body_links(anchors, hrefs, content.chosen, base)
    facts = _collect_facts(root, base)
    # last: trafilatura's metadata pass may modify the tree it is given
    found = _trafilatura_metadata(root, total)
    return ArticleExtraction(
        metadata=_metadata(facts, found, base),
        text=content.text,
        body_links=links,
        requisites=requisites,
    )
