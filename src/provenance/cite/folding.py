"""Fold text for typography-tolerant comparison, remembering where each part came from.

The fold (the rules are listed in :mod:`provenance.cite.quotes`) maps most characters one to
one; only whitespace runs (many to one), the ellipsis (one to three), invisible characters
(one to none) and, in text not in NFC, a character with its combining marks change length.
So the offset map is a list of *segments* rather than one entry per character: a *linear*
segment maps folded characters one to one onto an original span; any other segment stands as
a whole for its original span. For text in NFC (nearly all text) the one-to-one part is done
by ``str.translate`` and only the length-changing places are visited in Python, so folding a
page of several megabytes costs little time and memory.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from array import array

# Typographic variants and the ASCII character each folds to.
_SINGLE_QUOTES = "‘’‚‛‹›′ʼ"  # U+2018-U+201B, U+2039/U+203A, prime U+2032, U+02BC
_DOUBLE_QUOTES = "“”„‟«»″"  # U+201C-U+201F, U+00AB/U+00BB, double prime U+2033
_DASHES = "‐‑‒–—―−"  # U+2010-U+2015, minus sign U+2212
ELLIPSIS = "…"
# Invisible in rendered text, so never part of what a reader copies.
INVISIBLE = "\u00ad\u200b\u2060\ufeff"
# Every character str.isspace() accepts lies below U+3001 (the last is U+3000).
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())

# One-to-one folds: every whitespace character becomes a space (runs are merged afterwards).
_ONE_TO_ONE = str.maketrans({
    **dict.fromkeys(_SINGLE_QUOTES, "'"),
    **dict.fromkeys(_DOUBLE_QUOTES, '"'),
    **dict.fromkeys(_DASHES, "-"),
    **dict.fromkeys(_WHITESPACE, " "),
})
# After the one-to-one folds, the places whose length changes: a run of spaces and invisible
# characters that holds an invisible one or more than one space, and the ellipsis.
_LENGTH_CHANGES = re.compile(f"[ {INVISIBLE}]*[{INVISIBLE}][ {INVISIBLE}]*| {{2,}}|{ELLIPSIS}")


class FoldedText:
    """Folded text and the map from folded positions back to the original text."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        # per segment: folded start, original start and end, and whether it is linear
        self._folded = array("q")
        self._start = array("q")
        self._end = array("q")
        self._linear = bytearray()
        self.text = ""

    # building -----------------------------------------------------------------------------

    def _add(self, folded: str, start: int, end: int, linear: bool) -> None:
        if not folded:
            return  # dropped characters leave a gap in the original spans
        if linear and self._linear and self._linear[-1] and self._end[-1] == start:
            self._end[-1] = end  # extend the previous linear segment
        else:
            self._folded.append(self._length)
            self._start.append(start)
            self._end.append(end)
            self._linear.append(linear)
        self._parts.append(folded)
        self._length += len(folded)

    def _finish(self) -> FoldedText:
        self.text = "".join(self._parts)
        self._parts = []
        return self

    # mapping ------------------------------------------------------------------------------

    def _segment(self, index: int) -> int:
        return bisect.bisect_right(self._folded, index) - 1

    def _segment_end(self, segment: int) -> int:
        return self._folded[segment + 1] if segment + 1 < len(self._folded) else len(self.text)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covered by the folded characters ``[start, end)`` (end > start)."""
        first, last = self._segment(start), self._segment(end - 1)
        low = self._start[first] + (start - self._folded[first] if self._linear[first] else 0)
        high = (self._start[last] + (end - self._folded[last]) if self._linear[last]
                else self._end[last])
        return low, high

    def is_aligned(self, start: int, end: int) -> bool:
        """False when ``[start, end)`` takes part of what one original span folded to."""
        first, last = self._segment(start), self._segment(end - 1)
        return (bool(self._linear[first]) or start == self._folded[first]) and \
            (bool(self._linear[last]) or end == self._segment_end(last))

    def folded_index(self, offset: int) -> int:
        """The folded position of original ``offset`` (the next one, if it was dropped)."""
        segment = bisect.bisect_right(self._start, offset) - 1
        if segment < 0:
            return 0
        if offset < self._end[segment]:
            return self._folded[segment] + (
                offset - self._start[segment] if self._linear[segment] else 0)
        return self._segment_end(segment)


def _fold_nfc(text: str) -> FoldedText:
    folded = FoldedText()
    mapped = text.translate(_ONE_TO_ONE)
    position = 0
    for change in _LENGTH_CHANGES.finditer(mapped):
        folded._add(mapped[position:change.start()], position, change.start(), linear=True)
        run = change.group()
        replacement = "..." if run == ELLIPSIS else " " if " " in run else ""
        folded._add(replacement, change.start(), change.end(), linear=False)
        position = change.end()
    folded._add(mapped[position:], position, len(mapped), linear=True)
    return folded._finish()


def _fold_units(text: str) -> FoldedText:
    """The slow path for text not in NFC: one character with its combining marks at a time."""
    folded = FoldedText()
    start = 0
    pending_space: int | None = None  # start of a whitespace run not yet emitted
    for index in range(1, len(text) + 1):
        # a combining mark joins the character before it, unless that is whitespace or an
        # invisible character (which fold away): then it starts a unit of its own, as in
        # the fast path
        if index < len(text) and unicodedata.combining(text[index]) and \
                not text[index - 1].isspace() and text[index - 1] not in INVISIBLE:
            continue
        unit, unit_start, start = text[start:index], start, index
        if unit.isspace():
            pending_space = unit_start if pending_space is None else pending_space
            continue
        if unit in INVISIBLE:
            continue
        if pending_space is not None:
            folded._add(" ", pending_space, unit_start, linear=unit_start - pending_space == 1)
            pending_space = None
        normal = unicodedata.normalize("NFC", unit).translate(_ONE_TO_ONE)
        normal = normal.replace(ELLIPSIS, "...")
        folded._add(normal, unit_start, index, linear=normal == unit)
    if pending_space is not None:
        folded._add(" ", pending_space, len(text), linear=len(text) - pending_space == 1)
    return folded._finish()


def fold(text: str) -> FoldedText:
    """Fold ``text`` (see :mod:`provenance.cite.quotes`), keeping the map back to it."""
    if unicodedata.is_normalized("NFC", text):
        return _fold_nfc(text)
    return _fold_units(text)
