"""Read what a page says about itself: meta tags, JSON-LD, dates, languages, trafilatura's view."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from html import unescape
from typing import Any

import lxml.html
from lxml import etree
from lxml.html import HtmlElement
from trafilatura import extract_metadata
from trafilatura.settings import Document

from provenance.capture.extract.models import PageMetadata
from provenance.capture.extract.parsing import _resolve, _tag
from provenance.capture.extract.quiet import _quiet_libraries
from provenance.capture.extract.text import _collapse, _text_length

_LOG = logging.getLogger(__name__)

# metadata sits near the top of a page; a huge page's metadata is read from its first
# elements, each text cut short (htmldate runs its date regexes over all the text)
_METADATA_MAX_ELEMENTS = 15_000
_METADATA_MAX_TEXT = 1_000_000
_METADATA_BUDGET = 10_000
_METADATA_TEXT_CAP = 5_000
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
    collapsed = _collapse(value)
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


def _canonical_url(facts: _PageFacts, base: str) -> str | None:
    og_url = facts.meta.get("og:url")
    return facts.canonical or (_resolve(base, og_url) if og_url else None)


def _metadata(facts: _PageFacts, found: Document | None,
              canonical_url: str | None) -> PageMetadata:
    """The page metadata; ``canonical_url`` as ``_canonical_url`` found it."""
    return PageMetadata(
        title=_first(
            _clean(found.title) if found is not None else None,
            facts.meta.get("og:title"),
            _jsonld_text(facts.article.get("headline")),
            facts.title,
        ),
        authors=_authors(facts, found),
        published=_published(facts, found),
        canonical_url=canonical_url,
        language=_language(facts, found),
        site_name=_site_name(facts, found),
        description=_first(
            _clean(found.description) if found is not None else None,
            facts.meta.get("description"),
            facts.meta.get("og:description"),
            _jsonld_text(facts.article.get("description")),
        ),
    )


def _shallow_copy(
    element: HtmlElement, parent: HtmlElement | None, budget: list[int]
) -> HtmlElement | None:
    """Copy ``element`` without children (into ``parent``); None if lxml refuses it.

    ``budget`` holds the characters of text the copy may still take; each text is charged.
    """
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
        if value:
            room = max(0, budget[0])
            value = value[: room if cap is None else min(cap, room)]
            budget[0] -= len(value)
        try:
            setattr(clone, attribute, value)
        except (TypeError, ValueError):
            continue  # control characters the tree API rejects
    return clone


def _truncated_copy(root: HtmlElement, budget: int) -> HtmlElement:
    """Copy the first ``budget`` elements of the page, in document order.

    The copy also holds at most ``_METADATA_MAX_TEXT`` characters of text: htmldate's regexes
    take seconds per 10 MB, and 10,000 paragraphs of a long page are that much.
    """
    text_budget = [_METADATA_MAX_TEXT]
    copy_root = _shallow_copy(root, None, text_budget)
    if copy_root is None:
        return lxml.html.document_fromstring("<html><body></body></html>")
    count = 1
    stack: list[tuple[Iterator[HtmlElement], HtmlElement]] = [(root.iterchildren(), copy_root)]
    while stack and count < budget and text_budget[0] > 0:
        children, target = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        clone = _shallow_copy(child, target, text_budget)
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
