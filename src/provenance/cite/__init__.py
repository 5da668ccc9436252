"""Cite a signed snapshot, or one source it links to, optionally with a verified quote.

Pure functions from a :class:`~provenance.snapshot.Snapshot` and :class:`CiteOptions` to a
citation string; nothing here prints. ``cite`` does not verify the bundle (that is
``provenance verify``): it states what the manifest records and names the manifest's digest
and signer so that a reader can check them.

Usage: ``cite(open_snapshot(bundle), CitationFormat.WIKIPEDIA, CiteOptions(quote="..."))``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from provenance.cite.bibliography import biblatex_citation, bibtex_citation, csl_json_citation
from provenance.cite.context import (
    CitationContext,
    CiteOptions,
    Quote,
    QuoteNotFoundError,
    build_context,
)
from provenance.cite.fragments import text_directive, text_fragment_url
from provenance.cite.quotes import QuoteMatch, find_quote, fold
from provenance.cite.styles import (
    markdown_citation,
    robust_html_citation,
    text_citation,
    wikipedia_citation,
)
from provenance.snapshot import Snapshot


class CitationFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    BIBTEX = "bibtex"
    BIBLATEX = "biblatex"
    CSL_JSON = "csl-json"
    WIKIPEDIA = "wikipedia"
    ROBUST_HTML = "robust-html"


RENDERERS: dict[CitationFormat, Callable[[CitationContext], str]] = {
    CitationFormat.TEXT: text_citation,
    CitationFormat.MARKDOWN: markdown_citation,
    CitationFormat.BIBTEX: bibtex_citation,
    CitationFormat.BIBLATEX: biblatex_citation,
    CitationFormat.CSL_JSON: csl_json_citation,
    CitationFormat.WIKIPEDIA: wikipedia_citation,
    CitationFormat.ROBUST_HTML: robust_html_citation,
}


def render(context: CitationContext, style: CitationFormat) -> str:
    """The citation of an already-built context in ``style``."""
    return RENDERERS[style](context)


def cite(snapshot: Snapshot, style: CitationFormat = CitationFormat.TEXT,
         options: CiteOptions | None = None) -> str:
    """The citation of ``snapshot`` (or of ``options.source``) in ``style``.

    Raises :class:`~provenance.errors.UsageError` for an unknown source, an empty quote or a
    bad archive URL, and :class:`QuoteNotFoundError` when the quote is not in the archived text.
    """
    return render(build_context(snapshot, options or CiteOptions()), style)


__all__ = [
    "CitationContext",
    "CitationFormat",
    "CiteOptions",
    "Quote",
    "QuoteMatch",
    "QuoteNotFoundError",
    "build_context",
    "cite",
    "find_quote",
    "fold",
    "render",
    "text_directive",
    "text_fragment_url",
]
