"""Cite a signed snapshot, or one source it links to, optionally with a verified quote.

Pure functions from a :class:`~provenance.snapshot.Snapshot` and :class:`CiteOptions` to a
citation string; nothing here prints. ``cite`` does not verify the bundle (that is
``provenance verify``): it states what the manifest records and names the manifest's digest
and signer so that a reader can check them.

Usage: ``cite(open_snapshot(bundle), CitationFormat.WIKIPEDIA, CiteOptions(quote="..."))``.

Only :class:`CitationFormat` is defined on import; the rest is imported on first use (PEP 562
``__getattr__``). Every CLI command needs the enum for ``cite --format``, and none but
``cite`` and ``capture`` needs what citing reads with: the manifest models (pydantic) and
the time-stamp tokens (cryptography).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provenance.cite.context import (
        CitationContext,
        CiteOptions,
        Quote,
        QuoteNotFoundError,
        build_context,
    )
    from provenance.cite.fragments import text_directive, text_fragment_url
    from provenance.cite.quotes import QuoteMatch, find_quote, fold
    from provenance.snapshot import Snapshot

#: the names this package re-exports, by the module that defines them
_LAZY = {
    "CitationContext": "provenance.cite.context",
    "CiteOptions": "provenance.cite.context",
    "Quote": "provenance.cite.context",
    "QuoteNotFoundError": "provenance.cite.context",
    "build_context": "provenance.cite.context",
    "text_directive": "provenance.cite.fragments",
    "text_fragment_url": "provenance.cite.fragments",
    "QuoteMatch": "provenance.cite.quotes",
    "find_quote": "provenance.cite.quotes",
    "fold": "provenance.cite.quotes",
}


def __getattr__(name: str) -> Any:
    if name == "RENDERERS":
        return _renderers()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups find it without calling __getattr__
    return value


class CitationFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    BIBTEX = "bibtex"
    BIBLATEX = "biblatex"
    CSL_JSON = "csl-json"
    WIKIPEDIA = "wikipedia"
    ROBUST_HTML = "robust-html"


@cache
def _renderers() -> dict[CitationFormat, Callable[[CitationContext], str]]:
    """The renderer of each style (``RENDERERS``), imported on first use."""
    from provenance.cite.bibliography import (
        biblatex_citation,
        bibtex_citation,
        csl_json_citation,
    )
    from provenance.cite.styles import (
        markdown_citation,
        robust_html_citation,
        text_citation,
        wikipedia_citation,
    )

    return {
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
    return _renderers()[style](context)


def cite(snapshot: Snapshot, style: CitationFormat = CitationFormat.TEXT,
         options: CiteOptions | None = None) -> str:
    """The citation of ``snapshot`` (or of ``options.source``) in ``style``.

    Raises :class:`~provenance.errors.UsageError` for an unknown source, an empty quote or a
    bad archive URL, and :class:`QuoteNotFoundError` when the quote is not in the archived text.
    """
    from provenance.cite.context import CiteOptions, build_context

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
