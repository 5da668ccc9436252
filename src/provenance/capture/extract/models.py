"""The records extraction returns: page metadata, body links, requisites, the whole result."""

from __future__ import annotations

from dataclasses import dataclass

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
    ``text`` is plain text, paragraphs separated by blank lines. ``more_links`` counts the
    body links past the ``max_links`` the caller asked for, not described. ``truncated`` says
    why only a prefix of the page was read, when it was (the stored record keeps every byte).
    """

    metadata: PageMetadata
    text: str
    body_links: tuple[BodyLink, ...]
    requisites: tuple[Requisite, ...]
    more_links: int = 0
    truncated: str | None = None
