"""Extract one page whole: decode, parse, then gather requisites, body links, text and metadata."""

from __future__ import annotations

from provenance.capture.extract.charset import decode_html
from provenance.capture.extract.links import _body_links, _count_elements, _main_content
from provenance.capture.extract.metadata import (
    _collect_facts,
    _metadata,
    _trafilatura_metadata,
)
from provenance.capture.extract.models import ArticleExtraction
from provenance.capture.extract.parsing import _MAX_MARKUP, _document_base, _parse_bounded
from provenance.capture.extract.requisites import _requisites_from_tree


def extract_article(
    body: bytes, url: str, declared_charset: str | None = None, *, max_links: int | None = None
) -> ArticleExtraction:
    """Extract metadata, text, body links and requisites of the page ``body`` fetched from ``url``.

    With ``max_links``, only the first that many body links are described (resolving and
    quoting each costs 30 µs: 3 s for a page of 100,000); ``more_links`` counts the rest.
    Never raises on bad input: a page with no article yields best-effort text.
    """
    root, cut = _parse_bounded(decode_html(body, declared_charset))
    base = _document_base(root, url)
    requisites = _requisites_from_tree(root, base)
    anchors = [anchor for anchor in root.iter("a") if anchor.get("href") is not None]
    hrefs = [str(anchor.get("href")) for anchor in anchors]
    total = _count_elements(root)
    content = _main_content(root, anchors, total)
    links = _body_links(anchors, hrefs, content.chosen, base, max_links)
    facts = _collect_facts(root, base)
    # last: trafilatura's metadata pass may modify the tree it is given
    found = _trafilatura_metadata(root, total)
    return ArticleExtraction(
        metadata=_metadata(facts, found, base),
        text=content.text,
        body_links=links,
        requisites=requisites,
        more_links=len(content.chosen) - len(links),
        truncated=(f"only the first {_MAX_MARKUP:,} units of markup were parsed (a start "
                   "tag counts 2, an attribute 1)" if cut else None),
    )
