"""Tell whether an element is page furniture (navigation, share bars, related links, ...)."""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import HtmlElement

from provenance.capture.extract.parsing import _tag
from provenance.capture.extract.text import _collapse, _text_length

# boilerplate by definition, whatever they hold (and <header>, outside an article)
_BOILERPLATE_TAGS = frozenset({"nav", "aside", "footer", "menu", "dialog"})
_BOILERPLATE_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
     "toolbar", "dialog", "alertdialog"}
)
# words of a class or id (split on anything but letters and digits): whole words, and word
# beginnings for names that sites compound ("jp-relatedposts", "sharedaddy", "socialbar")
_BOILERPLATE_WORDS = re.compile(
    r"(?<![a-z0-9])(?:(?:"
    r"nav|menu|skip|pagination|pager|toolbar|masthead|header|footer|kicker|eyebrow|"
    r"byline|dateline|author|authors|contributors?|bio|meta|permalink|posted|"
    r"tags?|taglist|tagcloud|topics|keywords|categories|rail|comments?|"
    r"popular|recommended|mostread|most-read|trending|more-stories|"
    r"ad|ads|cookie|consent|gdpr|popup|modal|banner|search"
    r")(?![a-z0-9])|(?:"
    r"related|share|sharing|social|sidebar|breadcrumb|widget|newsletter|subscri|signup|"
    r"promo|advert|sponsor|outbrain|taboola|disqus|addthis|navbar|navigation"
    r"))"
)
# headings that announce a box of links that is not the story's own ("Related topics")
_BOILERPLATE_HEADINGS = re.compile(
    r"(?:"
    # phrases that introduce other stories, whatever follows them
    r"related|more on this|more from|more stories|more like this|most read|most popular|"
    r"most viewed|recommended|you may also|you might also|you may have missed|read more|"
    r"read next|top stories|follow us|sign up|ähnliche|mehr zum thema|meistgelesen|"
    r"à lire aussi|sur le même sujet|les plus lus|relacionad|más leíd"
    r")|(?:"
    # words that do so only standing alone ("Share", but not "Share prices fall")
    r"share(?: this(?: article| story| page)?)?|topics|tags|trending(?: now)?|latest|popular|"
    r"comments?(?: \(\d+\))?|\d+ comments|newsletter|advertisement|sponsored|themen|teilen"
    r")\W*$",
    re.IGNORECASE,
)
_HEADING_MAX_LENGTH = 60
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# a box's heading comes first; looking further would make each check cost its subtree
_HEADING_LOOKAHEAD = 3
# where pages name their components (React sites favour data-* over classes)
_NAMING_ATTRIBUTES = ("class", "id", "data-component", "data-testid")
# an element merely named like boilerplate that holds at least this share of the content is
# the content itself (WordPress puts tag-* and category-* classes on the article element)
_CONTENT_SHARE = 0.5


def _boilerplate_by_structure(element: HtmlElement) -> bool:
    tag = _tag(element)
    if tag == "header":
        # a page's header is its banner; an article's holds the headline and standfirst (its
        # byline and share buttons are caught by their names)
        return next(element.iterancestors("article"), None) is None
    if tag in _BOILERPLATE_TAGS:
        return True
    return (element.get("role") or "").strip().lower() in _BOILERPLATE_ROLES


def _boilerplate_by_name(element: HtmlElement) -> bool:
    tag = _tag(element)
    if tag in ("html", "body", "main", "article"):
        return False
    if tag == "form":
        # a newsletter box inside the story; ASP.NET wraps whole pages in one (share rule)
        return True
    marker = " ".join(element.get(name) or "" for name in _NAMING_ATTRIBUTES).lower()
    return _BOILERPLATE_WORDS.search(marker) is not None


def _boilerplate_by_heading(element: HtmlElement) -> bool:
    """Tell whether a box opens with a heading such as "Related topics" or "Most read"."""
    if _tag(element) in ("html", "body", "main", "article"):
        return False
    for position, child in enumerate(element.iterchildren(tag=etree.Element)):
        if position >= _HEADING_LOOKAHEAD:
            break
        if _tag(child) in _HEADING_TAGS or child.get("role") == "heading":
            heading = _collapse(child.text_content())
            return (
                len(heading) <= _HEADING_MAX_LENGTH
                and _BOILERPLATE_HEADINGS.match(heading) is not None
            )
    return False


class _BoilerplateFilter:
    """Memoised verdicts on whether an element sits in boilerplate (or outside ``stop``)."""

    def __init__(self, content_length: int, stop: HtmlElement | None = None,
                 memo: dict[HtmlElement, bool] | None = None) -> None:
        self.threshold = content_length * _CONTENT_SHARE
        self.stop = stop
        #: verdicts of ``is_boilerplate``: shareable between filters of the same length
        #: (they do not depend on ``stop``)
        self.memo: dict[HtmlElement, bool] = {} if memo is None else memo
        self.inside: dict[HtmlElement, bool] = {}

    def is_boilerplate(self, element: HtmlElement) -> bool:
        cached = self.memo.get(element)
        if cached is None:
            named = _boilerplate_by_name(element) or _boilerplate_by_heading(element)
            cached = _boilerplate_by_structure(element) or (
                named and _text_length(element) < self.threshold
            )
            self.memo[element] = cached
        return cached

    def rejects(self, element: HtmlElement) -> bool:
        """Tell whether ``element`` is outside ``stop`` or in boilerplate below ``stop``."""
        path: list[HtmlElement] = []
        node: HtmlElement | None = element
        # falling off the top means the element is not inside ``stop`` at all
        verdict = self.stop is not None
        while node is not None:
            if node is self.stop:
                verdict = False
                break
            known = self.inside.get(node)
            if known is not None:
                verdict = known
                break
            path.append(node)
            if self.is_boilerplate(node):
                verdict = True
                break
            node = node.getparent()
        for visited in path:
            self.inside[visited] = verdict
        return verdict
