"""Read one captured HTML page: its metadata, article text, body links and page requisites.

Everything here is a pure function of the page we were given (its bytes, or the text
decoded from them): no network, no printing.

Body links are the ``<a href>`` elements inside the article's main content. trafilatura decides
what the main content is; to map its answer back onto the original elements (so that ``href``,
anchor text and context are exact), every ``href`` is swapped for a numbered marker before
trafilatura sees the tree, and the markers that survive in its output name the chosen anchors.
When trafilatura finds nothing, or the page is too large for it (its cost grows faster than
linearly), a linear heuristic picks the content container instead. Either way, links sitting in
navigation, share bars, tag lists, sidebars, comments and the like are dropped.
"""

from __future__ import annotations

from provenance.capture.extract.article import PageReading, extract_article, read_article
from provenance.capture.extract.charset import decode_html
from provenance.capture.extract.css import css_references
from provenance.capture.extract.models import (
    REQUISITE_KINDS,
    ArticleExtraction,
    BodyLink,
    PageMetadata,
    Requisite,
)
from provenance.capture.extract.requisites import find_requisites

__all__ = [
    "REQUISITE_KINDS",
    "ArticleExtraction",
    "BodyLink",
    "PageMetadata",
    "PageReading",
    "Requisite",
    "css_references",
    "decode_html",
    "extract_article",
    "find_requisites",
    "read_article",
]
