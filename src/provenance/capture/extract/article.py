"""Extract one page: decode and parse, find requisites and body links; then describe the rest.

Two steps, so that a capture can send its requests as soon as it knows what to fetch: the
first (``read_article``) ends with the body links' URLs, the canonical URL and the requisites;
the second (``PageReading.finish``) adds what only the manifest needs (each link's anchor
text and context, the page metadata), while the linked sources are on their way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lxml.html import HtmlElement

from provenance.capture.extract.charset import decode_html
from provenance.capture.extract.links import (
    _body_links,
    _count_elements,
    _link_targets,
    _main_content,
)
from provenance.capture.extract.metadata import (
    _canonical_url,
    _collect_facts,
    _metadata,
    _PageFacts,
    _trafilatura_metadata,
)
from provenance.capture.extract.models import ArticleExtraction, Requisite
from provenance.capture.extract.parsing import _MAX_MARKUP, _document_base, _parse_bounded
from provenance.capture.extract.requisites import _requisites_from_tree


@dataclass
class PageReading:
    """A parsed page whose body links are known but not yet described.

    ``link_urls`` are the body links' resolved URLs in document order (fragments kept); the
    ``body_links`` of ``finish()`` describe exactly these, in the same order.
    """

    canonical_url: str | None
    requisites: tuple[Requisite, ...]
    text: str
    more_links: int
    truncated: str | None
    _root: HtmlElement | None
    _anchors: list[HtmlElement]
    _hrefs: list[str]
    _targets: tuple[tuple[int, str], ...]
    _facts: _PageFacts
    _elements: int

    @cached_property
    def link_urls(self) -> tuple[str, ...]:
        return tuple(url for _, url in self._targets)

    def finish(self) -> ArticleExtraction:
        """Describe the body links and read the page metadata (once: the tree is let go)."""
        root = self._root
        if root is None:
            raise RuntimeError("PageReading.finish() was already called")
        links = _body_links(self._anchors, self._hrefs, self._targets)
        # last: trafilatura's metadata pass may modify the tree it is given
        found = _trafilatura_metadata(root, self._elements)
        # Freed here, while a capture waits for its sources, rather than when it returns:
        # freeing a page's tree costs 0.3 ms of a 50-source capture's critical path.
        self._root, self._anchors = None, []
        return ArticleExtraction(
            metadata=_metadata(self._facts, found, self.canonical_url),
            text=self.text,
            body_links=links,
            requisites=self.requisites,
            more_links=self.more_links,
            truncated=self.truncated,
        )


def read_article(
    body: bytes | str, url: str, declared_charset: str | None = None, *,
    max_links: int | None = None
) -> PageReading:
    """Parse the page ``body`` fetched from ``url`` as far as its body links and requisites.

    ``body`` is the bytes as served, or a caller that needs the decoded text too (``cite``)
    gives the ``str`` that ``decode_html(body, declared_charset)`` made of them, so that a
    page is decoded once (``declared_charset`` is then not used).

    With ``max_links``, only the first that many body links are kept (describing each costs
    30 µs: 3 s for a page of 100,000); ``more_links`` counts the rest. Never raises on bad
    input: a page with no article yields best-effort text.
    """
    markup = body if isinstance(body, str) else decode_html(body, declared_charset)
    root, cut = _parse_bounded(markup)
    base = _document_base(root, url)
    requisites = _requisites_from_tree(root, base)
    anchors = [anchor for anchor in root.iter("a") if anchor.get("href") is not None]
    hrefs = [str(anchor.get("href")) for anchor in anchors]
    total = _count_elements(root)
    content = _main_content(root, anchors, total)
    targets = _link_targets(hrefs, content.chosen, base, max_links)
    facts = _collect_facts(root, base)
    return PageReading(
        canonical_url=_canonical_url(facts, base),
        requisites=requisites,
        text=content.text,
        more_links=len(content.chosen) - len(targets),
        truncated=(f"only the first {_MAX_MARKUP:,} units of markup were parsed (a start "
                   "tag counts 2, an attribute 1)" if cut else None),
        _root=root,
        _anchors=anchors,
        _hrefs=hrefs,
        _targets=targets,
        _facts=facts,
        _elements=total,
    )


def extract_article(
    body: bytes | str, url: str, declared_charset: str | None = None, *,
    max_links: int | None = None
) -> ArticleExtraction:
    """Extract metadata, text, body links and requisites of the page ``body`` fetched from ``url``.

    Both steps at once (see ``read_article`` for ``body`` as ``str`` and ``max_links``).
    """
    return read_article(body, url, declared_charset, max_links=max_links).finish()
