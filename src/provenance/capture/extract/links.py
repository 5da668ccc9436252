"""Choose the article's body links: the ``<a href>`` elements inside its main content.

trafilatura decides what the main content is; to map its answer back onto the original elements
(so that ``href``, anchor text and context are exact), every ``href`` is swapped for a numbered
marker before trafilatura sees the tree, and the markers that survive in its output name the
chosen anchors. When trafilatura finds nothing, or the page is too large for it, a linear
heuristic picks the content container instead. Either way, links in boilerplate are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import lxml.html
from lxml import etree
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.settings import Document, Extractor

from provenance.capture.extract.boilerplate import _CONTENT_SHARE, _BoilerplateFilter
from provenance.capture.extract.models import BodyLink
from provenance.capture.extract.parsing import _ASCII_WHITESPACE, _resolve, _tag
from provenance.capture.extract.quiet import _quiet_libraries
from provenance.capture.extract.text import (
    _EXTRACT_BLOCK_TAGS,
    _EXTRACTED,
    _HTML,
    _HTML_BLOCK_TAGS,
    _block_text,
    _BlockText,
    _collapse,
    _render_text,
    _snippet,
    _text_length,
)

_LOG = logging.getLogger(__name__)

# trafilatura's cost grows faster than linearly (libxml2's "//p//text()" among others): about
# 1.5 s at 10,000 link-heavy elements, 5 s at 25,000, minutes at 200,000. Larger pages only
# show it a smaller candidate container, if there is one. Typical articles have 2,000 to 8,000.
_TRAFILATURA_MAX_ELEMENTS = 15_000
# its cost grows with text too: 10 MB of paragraphs take it 5 s and 200 MB more than the
# heuristic needs (0.3 s). A long article is 100 KB of text, a book-length page 2 MB.
_TRAFILATURA_MAX_TEXT = 2_000_000
# an absolute URL so that nothing in trafilatura mistakes it for a relative or odd link
_MARKER = "https://provenance.invalid/anchor/"
# text matching (used when trafilatura's chosen extractor drops links) is a substring search;
# bound its total work, and ignore blocks too short to be recognisable
_TEXT_MATCH_BUDGET = 20_000_000
_TEXT_MATCH_MIN_LENGTH = 40
# how much more text than trafilatura kept the story's region may hold and still count as
# the story (the surplus being what trafilatura dropped: reference lists, captions)
_REGION_TEXT_RATIO = 1.5
_REGION_TEXT_SLACK = 500


@dataclass(frozen=True)
class _MainContent:
    chosen: frozenset[int]  # indices into the page's anchor list
    text: str


def _count_elements(element: HtmlElement) -> int:
    return sum(1 for _ in element.iter())


def _score_paragraph(paragraph: HtmlElement, scores: dict[HtmlElement, float]) -> None:
    """Credit a paragraph's text to its parent, and half of it to its grandparent."""
    # the grandparent share lets a page of one-paragraph <div>s still add up to one container
    length = float(_text_length(paragraph))
    parent = paragraph.getparent()
    if parent is None:
        return
    scores[parent] = scores.get(parent, 0.0) + length
    grandparent = parent.getparent()
    if grandparent is not None:
        scores[grandparent] = scores.get(grandparent, 0.0) + length / 2


def _candidate_container(root: HtmlElement) -> HtmlElement:
    """Find the element most likely to hold the article, in one pass over the page."""
    body = root.find("body")
    if body is None:
        body = root
    articles: list[HtmlElement] = []
    mains: list[HtmlElement] = []
    paragraph_text: dict[HtmlElement, float] = {}
    for element in body.iter():
        tag = _tag(element)
        if "articlebody" in (element.get("itemprop") or "").lower().split():
            return element
        if tag == "article":
            articles.append(element)
        elif tag == "main" or (element.get("role") or "").strip().lower() == "main":
            mains.append(element)
        elif tag == "p":
            _score_paragraph(element, paragraph_text)
    densest = max(paragraph_text.items(), key=lambda item: item[1], default=None)
    if articles:
        # listing pages have many <article> teasers; the story is the longest
        lengths = [(_text_length(article), article) for article in articles]
        length, article = max(lengths, key=lambda item: item[0])
        if densest is None or length >= densest[1] * _CONTENT_SHARE:
            return article
    if mains:
        return mains[0]
    return densest[0] if densest is not None else body


def _fits_trafilatura(element: HtmlElement, elements: int) -> bool:
    """Tell whether trafilatura can take ``element`` (of ``elements`` elements) in good time."""
    if elements > _TRAFILATURA_MAX_ELEMENTS:
        return False
    # scripts and styles are the first thing trafilatura drops: they cost it nothing
    hidden = sum(len(code.text or "") for code in element.iter("script", "style"))
    return _text_length(element) - hidden <= _TRAFILATURA_MAX_TEXT


def _trafilatura_input(
    root: HtmlElement, fits: bool, container: HtmlElement | None
) -> HtmlElement | None:
    """Return what trafilatura may see: the page, or a copy of a small candidate container."""
    if fits:
        return root
    if container is None or _tag(container) in ("html", "body"):
        return None
    if not _fits_trafilatura(container, _count_elements(container)):
        return None
    wrapper = lxml.html.document_fromstring("<html><body></body></html>")
    clone = deepcopy(container)
    clone.tail = None
    wrapper.find("body").append(clone)
    return wrapper


def _extractor() -> Extractor:
    return Extractor(
        output_format="python",
        comments=False,
        links=True,
        images=False,
        tables=True,
        formatting=False,
    )


def _run_trafilatura(
    root: HtmlElement, anchors: list[HtmlElement], fits: bool, container: HtmlElement | None
) -> Document | None:
    """Run trafilatura with every anchor's href replaced by its numbered marker."""
    originals = [anchor.get("href") for anchor in anchors]
    try:
        for index, anchor in enumerate(anchors):
            anchor.set("href", f"{_MARKER}{index}")
        target = _trafilatura_input(root, fits, container)
        if target is None:
            return None
        with _quiet_libraries():
            result = bare_extraction(target, options=_extractor())
    except Exception:  # a bug in an extraction library must not cost the capture
        _LOG.debug("trafilatura failed; falling back to the heuristic", exc_info=True)
        return None
    finally:
        _restore_hrefs(anchors, originals)
    return result if isinstance(result, Document) else None


def _restore_hrefs(anchors: list[HtmlElement], hrefs: list[str]) -> None:
    for anchor, href in zip(anchors, hrefs, strict=True):
        try:
            anchor.set("href", href)
        except ValueError:
            # lxml refuses some values the parser accepted; callers use their own copy
            _LOG.debug("could not restore href %r", href)


def _links_in(body: Any) -> list[str]:
    return [ref.get("target") or ref.get("href") or "" for ref in body.iter("ref", "a")]


def _chosen_by_markers(targets: list[str]) -> set[int]:
    chosen: set[int] = set()
    for target in targets:
        suffix = target[len(_MARKER) :] if target.startswith(_MARKER) else ""
        if suffix.isdigit():
            chosen.add(int(suffix))
    return chosen


def _block_of(element: HtmlElement) -> HtmlElement:
    """Return the nearest block-level ancestor: the paragraph a link is read in."""
    node = element.getparent()
    while node is not None:
        if _tag(node) in _HTML_BLOCK_TAGS:
            return node
        node = node.getparent()
    return element


def _block_texts(anchors: Iterable[HtmlElement]) -> dict[HtmlElement, _BlockText]:
    """Map each anchor to its block's text, walking each block once however many links."""
    members: dict[HtmlElement, set[HtmlElement]] = {}
    owner: dict[HtmlElement, HtmlElement] = {}
    for anchor in anchors:
        block = _block_of(anchor)
        members.setdefault(block, set()).add(anchor)
        owner[anchor] = block
    texts = {block: _block_text(block, group) for block, group in members.items()}
    return {anchor: texts[block] for anchor, block in owner.items()}


def _collapsed(element: Any) -> str:
    text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    return _collapse(text) if isinstance(text, str) else ""


def _extracted_paragraphs(body: Any) -> set[str]:
    """Return the collapsed text of every block trafilatura kept."""
    texts = {_collapsed(element) for element in body.iter() if _tag(element) in _EXTRACT_BLOCK_TAGS}
    texts.discard("")
    return texts


def _chosen_by_text(
    anchors: list[HtmlElement], body: Any, text: str, keep: Callable[[HtmlElement], bool]
) -> set[int]:
    """Pick anchors whose paragraph is in the extracted text (for extractors that drop links)."""
    paragraphs = _extracted_paragraphs(body)
    flat = _collapse(text)
    candidates = [(index, anchor) for index, anchor in enumerate(anchors) if keep(anchor)]
    texts = _block_texts(anchor for _, anchor in candidates)
    budget = _TEXT_MATCH_BUDGET
    chosen: set[int] = set()
    for index, anchor in candidates:
        block = texts[anchor].text
        if block in paragraphs:
            chosen.add(index)
        elif len(block) >= _TEXT_MATCH_MIN_LENGTH and budget > 0:
            budget -= len(flat)
            if block in flat:
                chosen.add(index)
    return chosen


def _lowest_common_ancestor(elements: list[HtmlElement]) -> HtmlElement | None:
    chain: list[HtmlElement] = []
    node: HtmlElement | None = elements[0]
    while node is not None:
        chain.append(node)
        node = node.getparent()
    position = {element: index for index, element in enumerate(chain)}
    highest = 0
    for element in elements[1:]:
        node = element
        while node is not None and node not in position:
            node = node.getparent()
        if node is None:
            return None
        highest = max(highest, position[node])
    return chain[highest]


def _kept_paragraphs(candidates: list[HtmlElement], body: Any) -> list[HtmlElement]:
    """The ``candidates`` whose collapsed text is that of a block trafilatura kept.

    A kept block's text is a stretch of the whole extraction's text, so once collapsed it
    lies inside the collapsed whole; a paragraph whose text does not is not compared with
    every block (rendering each block of a long story costs more than the whole once).
    """
    whole = _collapsed(body)
    texts = [(paragraph, _collapsed(paragraph)) for paragraph in candidates]
    possible = [(paragraph, text) for paragraph, text in texts if text and text in whole]
    if not possible:
        return []
    blocks = _extracted_paragraphs(body)
    return [paragraph for paragraph, text in possible if text in blocks]


def _content_region(
    root: HtmlElement, anchors: list[HtmlElement], chosen: set[int], body: Any
) -> HtmlElement | None:
    """Find the smallest element holding the paragraphs and links trafilatura kept.

    That is the common ancestor of the kept links and of the page's ``<p>`` whose text
    trafilatura kept (only ``<p>``: a headline above the story would lift the region to the
    whole layout), with at least two of them.
    """
    links = [anchors[index] for index in chosen]
    if len(links) >= 2:
        # The links' common ancestor first: a paragraph inside it cannot lift it, so only the
        # page's paragraphs outside it are rendered and compared, usually none. Rendering
        # every paragraph took a tenth of reading a 50-link page, all of it before the first
        # request could go out (benchmarks/README.md).
        start = _lowest_common_ancestor(links)
        if start is None or _tag(start) in ("html", "body"):
            return None  # paragraphs could only lift it further
        inside = set(start.iter("p"))
        rest = [p for p in root.iter("p") if p not in inside]
        members, enough = [start], True
    else:
        rest, members, enough = list(root.iter("p")), links, False  # with the links, 2 or more
    if rest:
        members += _kept_paragraphs(rest, body)
    if not enough and len(members) < 2:
        return None
    region = _lowest_common_ancestor(members)
    if region is None or _tag(region) in ("html", "body"):
        return None
    return region


def _expanded(
    root: HtmlElement, anchors: list[HtmlElement], chosen: set[int], body: Any, text: str,
    verdicts: dict[HtmlElement, bool],
) -> set[int]:
    """Add the links trafilatura dropped from inside the story, such as a list of sources.

    trafilatura discards link-dense blocks, and a story's reference list is exactly that. Links
    in the region holding the kept content are added back unless they sit in boilerplate, and
    only if that region holds little text beyond what trafilatura kept (else it is the layout).
    """
    region = _content_region(root, anchors, chosen, body)
    if region is None:
        return chosen
    index_of = {anchor: index for index, anchor in enumerate(anchors)}
    candidates = [index for index in (index_of.get(a) for a in region.iter("a"))
                  if index is not None and index not in chosen]
    if not candidates:
        # Nothing to add (the usual case: trafilatura kept every link of the story), so the
        # region's text need not be rendered: a quarter of reading a 50-link page, all of it
        # before the first request can go out (benchmarks/README.md).
        return chosen
    boilerplate = _BoilerplateFilter(len(text), stop=region, memo=verdicts)
    region_text = _render_text(region, _HTML, boilerplate.is_boilerplate)
    if len(region_text) > len(text) * _REGION_TEXT_RATIO + _REGION_TEXT_SLACK:
        return chosen
    # ``rejects`` refuses whatever lies outside the region, so only its own anchors count
    extra = {index for index in candidates if not boilerplate.rejects(anchors[index])}
    return chosen | extra


def _from_trafilatura(
    root: HtmlElement, result: Document, anchors: list[HtmlElement]
) -> _MainContent | None:
    text = _render_text(result.body, _EXTRACTED)
    if not text:
        return None
    # trafilatura sometimes keeps a related-links box or a tag list at the end of the story
    boilerplate = _BoilerplateFilter(len(text))
    targets = _links_in(result.body)
    if targets:
        chosen = _chosen_by_markers(targets)
    else:
        chosen = _chosen_by_text(anchors, result.body, text, lambda a: not boilerplate.rejects(a))
    chosen = _expanded(root, anchors, chosen, result.body, text, boilerplate.memo)
    kept = frozenset(index for index in chosen if not boilerplate.rejects(anchors[index]))
    return _MainContent(kept, text)


def _heuristic_content(
    root: HtmlElement, anchors: list[HtmlElement], container: HtmlElement
) -> _MainContent:
    boilerplate = _BoilerplateFilter(_text_length(container), stop=container)
    text = _render_text(container, _HTML, boilerplate.is_boilerplate)
    if not text:
        body = root.find("body")
        text = _render_text(root if body is None else body, _HTML)
    chosen = frozenset(
        index for index, anchor in enumerate(anchors) if not boilerplate.rejects(anchor)
    )
    return _MainContent(chosen, text)


def _main_content(root: HtmlElement, anchors: list[HtmlElement], total: int) -> _MainContent:
    # the candidate is needed up front only when the page is too big for trafilatura
    fits = _fits_trafilatura(root, total)
    container = None if fits else _candidate_container(root)
    result = _run_trafilatura(root, anchors, fits, container)
    content = _from_trafilatura(root, result, anchors) if result is not None else None
    if content is not None:
        return content
    if container is None:
        container = _candidate_container(root)
    return _heuristic_content(root, anchors, container)


def _link_targets(
    hrefs: list[str], chosen: frozenset[int], base: str, limit: int | None = None
) -> tuple[tuple[int, str], ...]:
    """The chosen anchors in document order (the first ``limit``), each with its resolved URL.

    Cheap on purpose: this is all a capture needs before it can send the requests.
    """
    resolved: dict[str, str] = {}  # articles cite the same source more than once
    targets = []
    for index in sorted(chosen)[:limit]:
        href = hrefs[index]
        if href not in resolved:
            resolved[href] = _resolve(base, href) or href.strip(_ASCII_WHITESPACE)
        targets.append((index, resolved[href]))
    return tuple(targets)


def _body_links(
    anchors: list[HtmlElement], hrefs: list[str], targets: tuple[tuple[int, str], ...]
) -> tuple[BodyLink, ...]:
    """Describe the targeted anchors: anchor text and the sentence around it."""
    texts = _block_texts(anchors[index] for index, _ in targets)
    links: list[BodyLink] = []
    for index, url in targets:
        block = texts[anchors[index]]
        # an anchor hidden in an invisible subtree (noscript, svg) has no span: no text
        start, end = block.spans.get(anchors[index], (0, 0))
        links.append(
            BodyLink(
                href=hrefs[index],
                url=url,
                text=block.text[start:end],
                context=_snippet(block.text, start, end),
            )
        )
    return tuple(links)
