"""Parse HTML into an lxml tree and resolve the URLs written in it against the document base."""

from __future__ import annotations

from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

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
