"""Text-fragment links (``#:~:text=``) to a quoted passage, per the WICG Scroll-to-Text spec.

Syntax (URL Fragment Text Directives, "Syntax"): ``#:~:text=[prefix-,]textStart[,textEnd]
[,-suffix]``. The fragment directive follows the delimiter ``:~:``, after any ordinary fragment
the URL already has (``page#section:~:text=...``); a directive already present is replaced.

Encoding ("Syntax": the directive's values are percent-decoded): every character outside the
URL unreserved set is percent-encoded as UTF-8, and so are ``-``, ``,`` and ``&``, which are
the directive's own syntax (``-`` is unreserved, so it is encoded explicitly).

Matching ("Finding ranges in a document"): a browser finds the *first* occurrence of
``textStart`` in the page, then the first ``textEnd`` after it, each on word boundaries and
each inside one block of text. So the directive is built from the original archived text
(never the folded form used to verify the quote), widened to whole words, each whitespace run
(no-break spaces and line breaks included) written as one space, as in rendered text. A
short passage in one block is given whole as ``textStart``; a long one, or one that spans
blocks, is given as its first and last few words, lengthened until those words first occur
exactly where the passage does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote as percent_encode

from provenance.cite.quotes import FoldedText, fold

#: passages longer than this (whitespace collapsed) are linked as textStart,textEnd
MAX_START_ONLY = 80
#: how many words textStart and textEnd start with, and the most they grow to (to stay
#: unambiguous in repetitive text; past that the link may land on an earlier repetition)
EDGE_WORDS = 4
MAX_EDGE_WORDS = 32

_WORD = re.compile(r"\S+")
_DIRECTIVE_DELIMITER = ":~:"


def encode_value(value: str) -> str:
    """Percent-encode one directive value (textStart, textEnd, prefix or suffix)."""
    return percent_encode(value, safe="").replace("-", "%2D")


@dataclass(frozen=True)
class _Word:
    start: int
    end: int
    block: int


def _widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    # A directive only matches on word boundaries, so a quote that starts or ends inside a
    # word is linked by the whole word.
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


def _words(text: str, start: int, end: int) -> list[_Word]:
    words: list[_Word] = []
    block, seen = 0, start
    for match in _WORD.finditer(text, start, end):
        # Line and paragraph breaks in archived text are block boundaries.
        block += text.count("\n", seen, match.start())
        seen = match.start()
        words.append(_Word(match.start(), match.end(), block))
    return words


def _phrase(text: str, words: list[_Word]) -> str:
    return " ".join(text[words[0].start : words[-1].end].split())


class _Locator:
    """Folded text of the whole page, to check where a phrase first occurs."""

    def __init__(self, text: str, folded: FoldedText | None) -> None:
        self.text = text
        self.folded = fold(text) if folded is None else folded

    def index(self, offset: int) -> int:
        """The folded index of the character at original ``offset``."""
        return self.folded.folded_index(offset)

    def first_at(self, words: list[_Word], searched_from: int) -> bool:
        """Whether the phrase ``words`` first occurs (from ``searched_from``) where it is."""
        phrase = fold(_phrase(self.text, words)).text
        return self.folded.text.find(phrase, searched_from) == self.index(words[0].start)


def text_directive(text: str, start: int, end: int, *,
                   folded: FoldedText | None = None) -> str:
    """The ``text=...`` directive for the passage ``text[start:end]`` of an archived text.

    ``folded`` is ``fold(text)`` if the caller has it already (the quote was just found in
    it), so that a long passage's link does not fold the whole page once more.
    """
    start, end = _widen_to_words(text, start, end)
    words = _words(text, start, end)
    if not words:
        raise ValueError("a text directive needs a passage with words in it")
    one_block = words[0].block == words[-1].block
    if one_block and len(_phrase(text, words)) <= MAX_START_ONLY:
        return "text=" + encode_value(_phrase(text, words))
    locator = _Locator(text, folded)
    first_block = [w for w in words if w.block == words[0].block]
    last_block = [w for w in words if w.block == words[-1].block]
    if one_block:
        # Split one long block in two halves so that start and end never overlap.
        half = len(words) // 2
        first_block, last_block = words[:half], words[half:]
        if not first_block:
            return "text=" + encode_value(_phrase(text, words))
    count = min(EDGE_WORDS, len(first_block))
    longest = min(MAX_EDGE_WORDS, len(first_block))
    while count < longest and not locator.first_at(first_block[:count], 0):
        count += 1
    head = first_block[:count]
    after_head = locator.index(head[-1].end)
    count = min(EDGE_WORDS, len(last_block))
    longest = min(MAX_EDGE_WORDS, len(last_block))
    while count < longest and not locator.first_at(last_block[-count:], after_head):
        count += 1
    tail = last_block[-count:]
    return f"text={encode_value(_phrase(text, head))},{encode_value(_phrase(text, tail))}"


def with_directive(url: str, directive: str) -> str:
    """``url`` with the fragment directive ``directive`` (replacing any it already had)."""
    base, hash_sign, fragment = url.partition("#")
    fragment = fragment.split(_DIRECTIVE_DELIMITER, 1)[0] if hash_sign else ""
    return f"{base}#{fragment}{_DIRECTIVE_DELIMITER}{directive}"


def text_fragment_url(url: str, text: str, start: int, end: int, *,
                      folded: FoldedText | None = None) -> str:
    """A link to ``url`` that scrolls to and highlights ``text[start:end]``.

    ``folded`` is ``fold(text)``, if the caller has it (see ``text_directive``).
    """
    return with_directive(url, text_directive(text, start, end, folded=folded))
