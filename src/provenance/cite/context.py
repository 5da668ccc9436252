"""Gather what every citation style needs from a snapshot: the :class:`CitationContext`.

Decisions (README, "Citing a capture"):

* **Original URL** is the URL the cited bytes were served from: the article's final URL after
  redirects (or the requested URL when there is none); for ``--source``, the source's final
  URL. The requested URL may be a shortener or an old address, and the page's
  ``rel=canonical`` is the page's own unverified claim (it can name any site), so neither is
  what the signed evidence shows.
* **Capture time** is the manifest's ``started_at`` (UTC, to the second), the time the
  capture id is named after; every resource of a capture is fetched within its run.
* **Where the snapshot lives** is the bundle directory, or ``BASE/<capture id>`` when the user
  says the archive is published at ``--archive-url BASE`` (http or https only).
* **url-status** (Wikipedia) is ``dead`` when the capture saw the cited URL answer an HTTP
  error, or when the user says so (``--dead``); otherwise ``live``.
* A **quote** is verified against the archived text (:mod:`provenance.cite.quotes`) and
  cited as the archived passage itself, with a text-fragment link built from the original text.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from provenance.capture.urls import without_fragment
from provenance.cite.fragments import text_fragment_url
from provenance.cite.quotes import (
    FoldedText,
    QuoteMatch,
    closest_start,
    find_quote,
    fold,
    fold_quote,
)
from provenance.cite.sources import ArchivedDocument, read_document
from provenance.cite.stamps import TimeStamp, bundle_timestamps
from provenance.errors import UsageError, VerificationError
from provenance.models import BodyLink, Manifest, Resource
from provenance.snapshot import Snapshot, article_resource, article_text

#: how many captured sources an "unknown --source" error lists, and how much of each URL
_LISTED_SOURCES = 5
_LISTED_URL_CHARS = 120


class QuoteNotFoundError(VerificationError):
    """The quoted passage is not in the archived text (exit 1, like a failed verification)."""


@dataclass(frozen=True)
class CiteOptions:
    """What the user asked for besides the style."""

    source: str | None = None
    quote: str | None = None
    archive_url: str | None = None
    dead: bool = False


@dataclass(frozen=True)
class Quote:
    """A verified quote: the passage as archived (whitespace collapsed) and a link to it."""

    passage: str
    fragment_url: str


@dataclass(frozen=True)
class CitationContext:
    """Everything a citation style may print, already checked and resolved."""

    title: str
    authors: tuple[str, ...]
    site_name: str | None
    published: date | None
    url: str
    captured_at: datetime
    capture_id: str
    manifest_sha256: str
    signer_fingerprint: str | None
    timestamps: tuple[TimeStamp, ...]
    #: the public snapshot URL, or the bundle directory's absolute path
    location: str
    #: ``location`` as a URL (a ``file:`` URI for a local bundle)
    location_url: str
    location_is_public: bool
    url_status: Literal["live", "dead"]
    #: for ``--source``: the article that links to the cited source, and the resource id
    linked_from: str | None = None
    resource_id: str | None = None
    quote: Quote | None = None

    @property
    def capture_date(self) -> date:
        return self.captured_at.date()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(
        microsecond=0)


def _parse_date(value: str | None) -> date | None:
    # Page metadata dates are RFC 3339 dates or date-times (extract/models.py): the calendar
    # date as the page states it is the first ten characters.
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _location(snapshot: Snapshot, archive_url: str | None) -> tuple[str, str, bool]:
    capture_id = snapshot.manifest.capture_id
    if archive_url is None:
        path = snapshot.path.resolve()
        return str(path), path.as_uri(), False
    parts = urlsplit(archive_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--archive-url must be an http(s) URL, not {archive_url!r}")
    if parts.query or parts.fragment:
        raise UsageError("--archive-url must not have a query or fragment: "
                         "the capture id is appended to it as a path segment")
    public = f"{archive_url.rstrip('/')}/{capture_id}"
    return public, public, True


def _by_id(manifest: Manifest) -> dict[str, Resource]:
    return {resource.id: resource for resource in manifest.resources}


def _link_urls(link: BodyLink, resources: dict[str, Resource]) -> set[str]:
    urls = {link.url, without_fragment(link.url)}
    if link.final_url:
        urls.add(link.final_url)
    urls.update(resources[hop].url for hop in link.chain if hop in resources)
    return urls


def _shortened(url: str) -> str:
    return url if len(url) <= _LISTED_URL_CHARS else url[:_LISTED_URL_CHARS - 1] + "…"


def _find_source(manifest: Manifest, wanted: str) -> tuple[BodyLink, Resource]:
    """The body link ``wanted`` names (as linked, or its final URL) and its final resource."""
    resources = _by_id(manifest)
    keys = {wanted, without_fragment(wanted)}
    matches = [link for link in manifest.links if keys & _link_urls(link, resources)]
    followed = [link for link in matches if link.outcome != "skipped"]
    if not matches:
        captured = [_shortened(link.final_url or link.url) for link in manifest.links
                    if link.outcome == "captured"]
        listed = ", ".join(captured[:_LISTED_SOURCES])
        more = f" and {len(captured) - _LISTED_SOURCES} more" \
            if len(captured) > _LISTED_SOURCES else ""
        known = f"; its captured sources: {listed}{more}" if captured else \
            "; it has no captured sources"
        raise UsageError(f"capture {manifest.capture_id} has no linked source {wanted}{known}")
    if not followed:
        raise UsageError(f"{wanted} was not fetched in capture {manifest.capture_id}: "
                         f"{matches[0].reason or 'skipped'}")
    link = followed[0]
    resource = resources.get(link.resource or "")
    if resource is None or resource.response is None:
        raise UsageError(f"{wanted} was not captured in capture {manifest.capture_id}: "
                         f"{link.reason or 'no response'}")
    return link, resource


@dataclass(frozen=True)
class _Cited:
    """The cited resource's own facts: the article's, or a linked source's."""

    title: str
    authors: tuple[str, ...]
    site_name: str | None
    published: date | None
    url: str
    status: int | None
    quote: Quote | None
    linked_from: str | None = None
    resource_id: str | None = None


class _Text:
    """An archived text, and its fold made once, however many searches and links read it.

    A quote check may search one text, search it again to cite it, build its fragment link
    and look for a near miss. Each of these used to fold the whole text anew, and folding
    is most of a check's time once the text is read (three folds of a 0.6 MB page: 160 ms,
    one: 55 ms).
    """

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def folded(self) -> FoldedText:
        return fold(self.text)

    def find(self, quote: str) -> QuoteMatch | None:
        return find_quote(quote, self.text, folded=self.folded)


def _document_texts(document: ArchivedDocument) -> list[_Text]:
    """The main text first; then, for HTML, everything visible on the page."""
    texts = [_Text(document.text)]
    if document.full_text:
        texts.append(_Text(document.full_text))
    return texts


def _verified_quote(quote: str, url: str, texts: list[_Text]) -> Quote:
    for text in texts:
        match = text.find(quote)
        if match is not None:
            return Quote(passage=" ".join(match.passage.split()),
                         fragment_url=text_fragment_url(url, text.text, match.start, match.end,
                                                        folded=text.folded))
    hint = next((near for near in (closest_start(quote, text.text, folded=text.folded)
                                   for text in texts) if near), None)
    raise QuoteNotFoundError(
        f"quote not found in the archived text of {url}",
        remedy=f"the closest passage there reads “{hint}”" if hint else None)


def _article_quote(snapshot: Snapshot, article: Resource | None, url: str, quote: str,
                   document: ArchivedDocument | None) -> Quote:
    """Check ``quote`` against the archived article text (for a document, its whole text).

    A passage that is on the archived page but outside the article (a "most read" sidebar, a
    navigation label) is not a quote of the article: citing it under the article's authors
    would misattribute it, so it is refused, with a hint saying where it was seen.
    """
    stored_text = article_text(snapshot)
    if stored_text:
        stored = _Text(stored_text)
        if stored.find(quote) is not None:
            return _verified_quote(quote, url, [stored])
        elsewhere = None
        if article is not None and article.response is not None:
            with contextlib.suppress(UsageError):
                page = document or read_document(snapshot, article)
                elsewhere = next((text for text in _document_texts(page)[1:]
                                  if text.find(quote) is not None), None)
        if elsewhere is not None:
            raise QuoteNotFoundError(
                f"quote not found in the archived article text of {url}",
                remedy="it appears elsewhere on the archived page (navigation, a sidebar, a "
                       "byline or footer), which is not the article's text")
        return _verified_quote(quote, url, [stored])
    texts: list[_Text] = []
    if document is None and article is not None and article.response is not None:
        document = read_document(snapshot, article)
    if document is not None:
        texts += _document_texts(document)
    if not texts:
        manifest = snapshot.manifest
        raise UsageError(f"capture {manifest.capture_id} has no archived text to quote from "
                         f"({manifest.state_reason or manifest.state})")
    return _verified_quote(quote, url, texts)


def _cite_article(snapshot: Snapshot, quote: str | None) -> _Cited:
    manifest = snapshot.manifest
    article = article_resource(manifest)
    url = manifest.final_url or manifest.requested_url
    page = manifest.page
    document = None
    if manifest.article_kind == "document" and article is not None \
            and article.response is not None:
        # A PDF (say) captured as the article: the manifest has no page metadata for it,
        # but the document describes itself. If it cannot be read, cite it without that.
        with contextlib.suppress(UsageError):
            document = read_document(snapshot, article)
    return _Cited(
        title=page.title or (document.title if document else None) or url,
        authors=tuple(page.authors) or (document.authors if document else ()),
        site_name=page.site_name, published=_parse_date(page.published), url=url,
        status=article.status if article is not None else None,
        quote=_article_quote(snapshot, article, url, quote, document)
        if quote is not None else None)


def _cite_source(snapshot: Snapshot, source: str, quote: str | None) -> _Cited:
    manifest = snapshot.manifest
    link, resource = _find_source(manifest, source)
    url = link.final_url or resource.url
    document = read_document(snapshot, resource)
    return _Cited(
        title=document.title or link.text or url, authors=document.authors,
        site_name=document.site_name, published=_parse_date(document.published), url=url,
        status=resource.status,
        quote=_verified_quote(quote, url, _document_texts(document))
        if quote is not None else None,
        linked_from=manifest.final_url or manifest.requested_url, resource_id=resource.id)


def build_context(snapshot: Snapshot, options: CiteOptions) -> CitationContext:
    """Resolve ``options`` against ``snapshot``; raises UsageError or QuoteNotFoundError."""
    manifest = snapshot.manifest
    if options.quote is not None and not fold_quote(options.quote):
        raise UsageError("--quote is empty: give the passage to look for")
    location, location_url, public = _location(snapshot, options.archive_url)
    cited = (_cite_article(snapshot, options.quote) if options.source is None
             else _cite_source(snapshot, options.source, options.quote))
    dead = options.dead or cited.status is None or cited.status >= 400
    return CitationContext(
        title=cited.title, authors=cited.authors, site_name=cited.site_name,
        published=cited.published, url=cited.url,
        captured_at=_parse_time(manifest.started_at), capture_id=manifest.capture_id,
        manifest_sha256=snapshot.manifest_sha256,
        signer_fingerprint=manifest.signer.fingerprint if manifest.signer else None,
        timestamps=bundle_timestamps(snapshot.path),
        location=location, location_url=location_url, location_is_public=public,
        url_status="dead" if dead else "live",
        linked_from=cited.linked_from, resource_id=cited.resource_id, quote=cited.quote)
