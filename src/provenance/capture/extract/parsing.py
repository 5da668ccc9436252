"""Parse HTML into an lxml tree and resolve the URLs written in it against the document base."""

from __future__ import annotations

import re
from itertools import islice
from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

_ASCII_WHITESPACE = " \t\n\f\r"
# C0 controls other than whitespace, and DEL: invisible in a browser, and lxml refuses them in
# any value set through its API (so a page holding one could not be processed at all). NUL
# too: WHATWG HTML section 13.2.6.4.7, in body a U+0000 character is ignored (dropping it also
# makes a page of zeros cost nothing to parse). One regular expression: str.translate with a
# table took 53 ms per MB of a page holding any non-ASCII character, this takes 4.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SKIPPED_SCHEMES = ("data:", "javascript:", "about:", "blob:")
_SRCSET_SEPARATORS = _ASCII_WHITESPACE + ","
# Memory for a parsed page grows with its markup, not its bytes: 8 bytes of "<p>a</p>" make an
# element of about 300 bytes in lxml, 4 bytes of " a1" an attribute of about 110, so a 32 MB
# page of either (a gzip bomb carries one in 32 KB) would take a gigabyte. Parsing stops once
# the start tags (2 units each) and attributes (1 unit) reach the budget: about 150 MB of tree
# at worst. Articles use 10,000 to 50,000 units; a 10 MB page of dense markup 750,000.
_MAX_MARKUP = 1_000_000
_TAG_UNITS = 2
# HTML's tokenizer (WHATWG HTML section 13.2.5.32 onwards), as regular expressions that cannot
# backtrack: an attribute is an optional separator, a name, and an optional "=" and value.
_ATTRIBUTE = (
    r"[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r /=>]*+"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))?+"
)
_ATTRIBUTES = re.compile(_ATTRIBUTE)
_START_TAG = re.compile(rf"<[A-Za-z][^\t\n\f\r />]*+((?>(?:{_ATTRIBUTE})*+))")
# libxml2 checks each attribute against all before it in the tag, so one tag of 170,000
# attributes (1 MB) takes it 30 s, and our tree walks a minute more. Real elements have a
# handful; attributes past the 256th are dropped before parsing (with the budget above, the
# checks then cost at most about a second).
_MAX_ATTRIBUTES = 256


# Every element an ``HtmlElement`` (text_content, drop_tree: what trafilatura and we use),
# chosen inside lxml. lxml.html's own parser asks a Python method for the class of each
# element object it makes (forms and inputs get their own), about a tenth of trafilatura's
# time on an article; we use none of those form classes.
_ELEMENT_CLASSES = etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity)


def _bounded_markup(html: str, limit: int = _MAX_MARKUP) -> tuple[str, bool]:
    """Return ``html`` cut before the start tag that takes it past ``limit`` markup units.

    Also drops the attributes of any tag past its ``_MAX_ATTRIBUTES``-th. The flag says
    whether the document was cut short. One pass: each start tag is matched once, as a
    whole, so markup nested in attribute names is never scanned twice.
    """
    units = 0
    end = len(html)
    kept: list[str] = []  # the document up to ``done``, less the attributes dropped
    done = 0
    for tag in _START_TAG.finditer(html):
        units += _TAG_UNITS
        if tag.end(1) - tag.start(1) <= _MAX_ATTRIBUTES:
            # every attribute takes at least one character: no more than the limit here
            units += len(_ATTRIBUTES.findall(html, tag.start(1), tag.end(1)))
        else:
            attributes = _ATTRIBUTES.finditer(html, tag.start(1), tag.end(1))
            for count, attribute in enumerate(islice(attributes, _MAX_ATTRIBUTES + 1), 1):
                if count > _MAX_ATTRIBUTES:
                    kept.append(html[done : attribute.start()])
                    done = tag.end(1)
                else:
                    units += 1
        if units > limit:
            end = tag.start()
            break
    if not kept:
        return html[:end], end < len(html)
    kept.append(html[done:end])
    return "".join(kept), end < len(html)


def _parse_document(html: str) -> HtmlElement:
    """Parse HTML into an ``<html>`` root, whatever the input looks like."""
    return _parse_bounded(html)[0]


def _parse_bounded(html: str) -> tuple[HtmlElement, bool]:
    """Parse at most ``_MAX_MARKUP`` units of markup; also say whether the page was cut."""
    cleaned, cut = _bounded_markup(_CONTROL_CHARACTERS.sub("", html))
    # bytes with an explicit encoding sidestep lxml's refusal of str with an XML declaration
    data = cleaned.encode("utf-8", errors="replace")
    del cleaned
    parser = etree.HTMLParser(
        encoding="utf-8", huge_tree=True, remove_comments=True, remove_pis=True
    )
    parser.set_element_class_lookup(_ELEMENT_CLASSES)
    try:
        root = lxml.html.document_fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        root = None
    if root is None:
        root = lxml.html.document_fromstring(b"<html><body></body></html>", parser=parser)
    return root, cut


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
