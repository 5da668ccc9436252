"""List the resources a browser loads to render a page (stylesheets, scripts, images, fonts...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree
from lxml.html import HtmlElement

from provenance.capture.extract.css import _css_targets
from provenance.capture.extract.models import Requisite
from provenance.capture.extract.parsing import (
    _ASCII_WHITESPACE,
    _SRCSET_SEPARATORS,
    _document_base,
    _parse_document,
    _requisite_url,
    _tag,
)

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
_MEDIA_PARENTS = frozenset({"video", "audio"})
_LEGACY_BACKGROUND_TAGS = frozenset({"body", "table", "tr", "td", "th"})


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
