"""Turn trees into text: collapsed block text with anchor offsets, paragraphs, context snippets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from lxml.html import HtmlElement

from provenance.capture.extract.parsing import _tag

_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "head", "title"})
_HTML_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
     "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
     "h4", "h5", "h6", "header", "hr", "html", "legend", "li", "main", "nav", "ol", "p", "pre",
     "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
)
_EXTRACT_BLOCK_TAGS = frozenset(
    {"body", "code", "div", "head", "item", "list", "p", "quote", "row", "table"}
)


@dataclass(frozen=True)
class _Vocabulary:
    """Which tags start paragraphs and which hold no readable text."""

    blocks: frozenset[str]
    hidden: frozenset[str]


_HTML = _Vocabulary(_HTML_BLOCK_TAGS, _INVISIBLE_TAGS)
# trafilatura's output is TEI-like: <head> is a heading there, <list>/<item> are lists
_EXTRACTED = _Vocabulary(_EXTRACT_BLOCK_TAGS, frozenset())
_LINE_BREAK_TAGS = frozenset({"br", "lb"})
_CELL_TAGS = frozenset({"td", "th", "cell"})
_CONTEXT_LIMIT = 240
_SENTENCE_END = re.compile(r"[.!?…。！？]['\"”’»)\]]*\s")
# str.split() makes an object per word: 16 million of them (800 MB) for a 32 MB paragraph of
# "a a a ...". Long texts are collapsed a slice at a time, gluing words cut at slice ends.
_COLLAPSE_SLICE = 1 << 16


def _collapse(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends: ``" ".join(text.split())``."""
    if len(text) <= _COLLAPSE_SLICE:
        return " ".join(text.split())
    runs: list[str] = []  # collapsed runs of whole words
    partial: list[str] = []  # the pieces of a word that runs across slice boundaries
    for start in range(0, len(text), _COLLAPSE_SLICE):
        chunk = text[start : start + _COLLAPSE_SLICE]
        words = chunk.split()
        if partial and (not words or chunk[0].isspace()):
            runs.append("".join(partial))
            partial = []
        if not words:
            continue
        if partial:
            partial.append(words[0])
            if len(words) == 1 and not chunk[-1].isspace():
                continue  # one word, still running on into the next slice
            runs.append("".join(partial))
            partial = []
            words = words[1:]
        if words and not chunk[-1].isspace():
            partial.append(words.pop())
        if words:
            runs.append(" ".join(words))
    if partial:
        runs.append("".join(partial))
    return " ".join(runs)


class _CollapsedText:
    """Accumulates text with whitespace collapsed, tracking offsets into the result."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending_space = False

    def add(self, text: str | None) -> None:
        if not text:
            return
        joined = _collapse(text)
        if not joined:
            self.pending_space = True
            return
        if text[0].isspace():
            self.pending_space = True
        if self.pending_space and self.length:
            self.parts.append(" ")
            self.length += 1
        self.parts.append(joined)
        self.length += len(joined)
        self.pending_space = text[-1].isspace()

    def boundary(self) -> None:
        self.pending_space = True

    def value(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class _BlockText:
    text: str
    spans: dict[HtmlElement, tuple[int, int]]


def _block_text(block: HtmlElement, anchors: set[HtmlElement]) -> _BlockText:
    """Collapse the visible text of ``block``, noting where each of ``anchors`` sits in it."""
    builder = _CollapsedText()
    raw_spans: dict[HtmlElement, tuple[int, int]] = {}
    starts: dict[HtmlElement, int] = {}
    walker = etree.iterwalk(block, events=("start", "end"))
    for event, element in walker:
        tag = _tag(element)
        if event == "start":
            if tag in _INVISIBLE_TAGS and element is not block:
                walker.skip_subtree()
                continue
            if tag in _HTML_BLOCK_TAGS or tag in _LINE_BREAK_TAGS:
                builder.boundary()
            if element in anchors:
                starts[element] = builder.length
            builder.add(element.text)
            continue
        if element in starts:
            raw_spans[element] = (starts.pop(element), builder.length)
        if tag in _HTML_BLOCK_TAGS:
            builder.boundary()
        if element is not block:
            builder.add(element.tail)
    text = builder.value()
    spans: dict[HtmlElement, tuple[int, int]] = {}
    for anchor, (start, end) in raw_spans.items():
        # the separating space was emitted with the anchor's first word
        if start < end and text[start] == " ":
            start += 1
        spans[anchor] = (start, max(start, end))
    return _BlockText(text, spans)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    window_start = max(0, start - _CONTEXT_LIMIT)
    low = window_start
    for match in _SENTENCE_END.finditer(text, window_start, start):
        low = match.end()
    high_match = _SENTENCE_END.search(text, end, end + _CONTEXT_LIMIT)
    high = high_match.end() if high_match else min(len(text), end + _CONTEXT_LIMIT)
    return low, high


def _window(text: str, start: int, end: int, low: int, high: int) -> str:
    """Cut at most 240 characters of text[low:high], centred on text[start:end]."""
    spare = _CONTEXT_LIMIT - (end - start)
    left = max(low, start - spare // 2)
    right = min(high, left + _CONTEXT_LIMIT)
    left = max(low, right - _CONTEXT_LIMIT)
    # cut at word boundaries, never into the anchor text
    if left > low and text[left - 1] != " ":
        space = text.find(" ", left, start)
        if space != -1:
            left = space + 1
    if right < high and text[right] != " ":
        space = text.rfind(" ", end, right)
        if space != -1:
            right = space
    return text[left:right].strip()


def _snippet(text: str, start: int, end: int) -> str:
    """Return the sentence (or paragraph) around text[start:end], at most 240 characters."""
    if len(text) <= _CONTEXT_LIMIT:
        return text
    if end - start >= _CONTEXT_LIMIT:
        return text[start : start + _CONTEXT_LIMIT]
    low, high = _sentence_bounds(text, start, end)
    if high - low <= _CONTEXT_LIMIT:
        return text[low:high].strip()
    return _window(text, start, end, low, high)


class _Paragraphs:
    """Renders a tree as plain text: one paragraph per block, blank lines between them."""

    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.lines: list[str] = []
        self.line: list[str] = []

    def text(self, value: str | None) -> None:
        if value:
            self.line.append(value)

    def cell(self) -> None:
        self.line.append(" ")

    def line_break(self) -> None:
        collapsed = _collapse("".join(self.line))
        if collapsed:
            self.lines.append(collapsed)
        self.line = []

    def flush(self) -> None:
        self.line_break()
        if self.lines:
            self.paragraphs.append("\n".join(self.lines))
        self.lines = []

    def value(self) -> str:
        self.flush()
        return "\n\n".join(self.paragraphs)


def _render_text(
    root: Any,
    vocabulary: _Vocabulary,
    skip: Callable[[HtmlElement], bool] | None = None,
) -> str:
    """Render ``root`` as plain text: blocks become paragraphs, ``skip`` prunes subtrees."""
    out = _Paragraphs()
    skipped: set[Any] = set()
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = _tag(element)
        if event == "start":
            if element is not root and (
                tag in vocabulary.hidden or (skip is not None and skip(element))
            ):
                walker.skip_subtree()
                skipped.add(element)
                continue
            if tag in vocabulary.blocks:
                out.flush()
            elif tag in _LINE_BREAK_TAGS:
                out.line_break()
            elif tag in _CELL_TAGS:
                out.cell()
            out.text(element.text)
            continue
        if tag in vocabulary.blocks and element not in skipped:
            out.flush()
        if element is not root:
            out.text(element.tail)
    return out.value()


def _text_length(element: HtmlElement) -> int:
    # serialising as text runs in C: ten times faster than summing itertext()
    text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    return len(text) if isinstance(text, str) else 0
