"""Find a quoted passage in archived text: tolerant of typography, otherwise exact.

Both the quote and the text are *folded* the same way before an exact, case-sensitive
substring search:

* curly, low-9, reversed, guillemet and prime quotation marks become ``'`` or ``"``;
* every hyphen and dash (U+2010 to U+2015, U+2212 minus) becomes ``-``;
* the ellipsis ``…`` becomes ``...``;
* any run of whitespace (spaces, tabs, line and paragraph breaks, NBSP, thin and other
  Unicode spaces) becomes one space, so a quote may run across lines and paragraphs;
* invisible formatting characters (soft hyphen, zero-width space, word joiner, BOM) vanish;
* each character with its combining marks is put in NFC, which changes nothing a reader can
  see (canonical equivalence, Unicode UAX #15), unlike NFKC, which would equate "ﬁ" and "fi"
  or "²" and "2" and so is not used.

Nothing else is forgiven: letters, digits, case and other punctuation must match, so a quote
with one word or one letter changed is not found. A match must also start and end on word
boundaries, so "he council" is not a quote of "the council". The fold keeps a map back to the
original characters (:mod:`provenance.cite.folding`), so a match is reported (and a text
fragment is built) in the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provenance.cite.folding import FoldedText, fold

_NEXT_WORD = re.compile(r"\s*\S+")  # \s is str.isspace, as in the text's own words

__all__ = ["FoldedText", "QuoteMatch", "closest_start", "find_quote", "fold", "fold_quote"]


def fold_quote(quote: str) -> str:
    """The folded form of a user's quote, without leading or trailing whitespace."""
    return fold(quote).text.strip(" ")


@dataclass(frozen=True)
class QuoteMatch:
    """Where a quote was found: the span in the original text and that original passage."""

    start: int
    end: int
    passage: str


def find_quote(quote: str, text: str, *, folded: FoldedText | None = None) -> QuoteMatch | None:
    """The first place ``quote`` occurs in ``text`` (folded on both sides), or None.

    ``folded`` is ``fold(text)``, from a caller that reads one text more than once (folding
    is a pass over the whole text; the quote is short). An empty quote (nothing left after
    folding) is the caller's mistake; it never matches.
    """
    needle = fold_quote(quote)
    if not needle:
        return None
    haystack = fold(text) if folded is None else folded
    at = haystack.text.find(needle)
    while at >= 0:
        if _on_word_boundaries(haystack.text, at, at + len(needle)) and \
                haystack.is_aligned(at, at + len(needle)):
            start, end = haystack.original_span(at, at + len(needle))
            return QuoteMatch(start=start, end=end, passage=text[start:end])
        at = haystack.text.find(needle, at + 1)
    return None


def _on_word_boundaries(text: str, start: int, end: int) -> bool:
    """True unless the span cuts a word (a letter or digit on both sides of an edge)."""
    cuts_start = start > 0 and text[start - 1].isalnum() and text[start].isalnum()
    cuts_end = end < len(text) and text[end - 1].isalnum() and text[end].isalnum()
    return not (cuts_start or cuts_end)


def closest_start(quote: str, text: str, *, folded: FoldedText | None = None,
                  min_words: int = 3, context_words: int = 6) -> str | None:
    """What the text says where the longest matching start of ``quote`` is found, if anything.

    A cheap hint for a near miss: the longest prefix of the quote (whole words, at least
    ``min_words``) that occurs in the text, followed by the next ``context_words`` words of
    the original text there. Prefix occurrence is monotonic, so a binary search needs only
    O(log words) substring searches. ``folded`` is ``fold(text)``, as for ``find_quote``.
    """
    words = fold_quote(quote).split(" ")
    haystack = fold(text) if folded is None else folded
    low, high = 0, len(words)  # invariant: words[:low] occurs (or low == 0)
    while low < high:
        middle = (low + high + 1) // 2
        if " ".join(words[:middle]) in haystack.text:
            low = middle
        else:
            high = middle - 1
    if low < min_words:
        return None
    prefix = " ".join(words[:low])
    at = haystack.text.find(prefix)
    start, end = haystack.original_span(at, at + len(prefix))
    # extend over the next words of the original text, exactly as they stand there
    for _ in range(context_words):
        word = _NEXT_WORD.match(text, end)
        if word is None:
            break
        end = word.end()
    return " ".join(text[start:end].split())
