"""Citations for reading and for the web: plain text, Markdown, Wikipedia, Robust Links HTML.

Every value is escaped for its format: Markdown's inline syntax characters, wiki markup
(``|``, braces, brackets, tags, ``''`` and ``~~~``) in template values, HTML in Robust Links.
"""

from __future__ import annotations

import html
import re

from provenance.cite.common import (
    author_list,
    provenance_phrases,
    sentence,
    stamp_phrases,
)
from provenance.cite.context import CitationContext
from provenance.timeutil import rfc3339

# ---------------------------------------------------------------------------------------------
# Plain text


def _where(context: CitationContext) -> str:
    parts = [part for part in (context.site_name,
                               context.published.isoformat() if context.published else None)
             if part]
    return ", ".join(parts)


def text_citation(context: CitationContext) -> str:
    """One readable paragraph: who, what, where, when, the URL, then the evidence."""
    parts: list[str] = []
    if context.authors:
        parts.append(sentence(author_list(context.authors)))
    parts.append(f"“{context.title}”.")
    if _where(context):
        parts.append(sentence(_where(context)))
    parts.append(sentence(context.url))
    parts.append(sentence("; ".join(provenance_phrases(context))))
    parts.append(sentence(f"Archived at {context.location}"))
    if context.quote is not None:
        parts.append(f"Quoted: “{context.quote.passage}” (verified in the archived text; "
                     f"passage: {context.quote.fragment_url}).")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Markdown (CommonMark)

# CommonMark section 2.4: any ASCII punctuation may be backslash-escaped; these are the ones
# that can start inline syntax (emphasis, code, links, autolinks, HTML, entities, GFM tables
# and strikethrough).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!#])")


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_destination(url: str) -> str:
    # CommonMark section 6.3: a destination in <...> may hold anything but <, > and line ends.
    return "<" + url.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20") + ">"


def _md_code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def markdown_citation(context: CitationContext) -> str:
    """A Markdown paragraph with the title linked; a verified quote as a block quote above it."""
    parts: list[str] = []
    if context.authors:
        parts.append(sentence(_md(author_list(context.authors))))
    parts.append(f"“[{_md(context.title)}]({_md_destination(context.url)})”.")
    where = [f"*{_md(context.site_name)}*"] if context.site_name else []
    if context.published:
        where.append(context.published.isoformat())
    if where:
        parts.append(", ".join(where) + ".")
    signed = "Signed" if context.signer_fingerprint else "Unsigned"
    evidence = [f"{signed} snapshot {_md_code(context.capture_id)} captured "
                f"{rfc3339(context.captured_at, micros=False)} (UTC)"]
    if context.resource_id:
        evidence.append(f"resource {_md_code(context.resource_id)}, linked from "
                        f"{_md_destination(context.linked_from or '')}")
    evidence.append(f"manifest {_md_code(context.manifest_sha256)}")
    if context.signer_fingerprint:
        evidence.append(f"signer {_md_code(context.signer_fingerprint)}")
    evidence.extend(_md(phrase) for phrase in stamp_phrases(context))
    parts.append("; ".join(evidence) + ".")
    parts.append(f"Archived at [{_md(context.location)}]({_md_destination(context.location_url)}).")
    paragraph = " ".join(parts)
    if context.quote is None:
        return paragraph
    quote = (f"> “{_md(context.quote.passage)}” "
             f"([passage]({_md_destination(context.quote.fragment_url)}))")
    return f"{quote}\n\n{paragraph}"


# ---------------------------------------------------------------------------------------------
# Wikipedia {{cite web}} (Help:Citation Style 1)

# "~" too: three or more in a row sign the text with the saving editor's name.
_WIKI_TEXT = {"|": "&#124;", "{": "&#123;", "}": "&#125;", "[": "&#91;", "]": "&#93;",
              "<": "&lt;", ">": "&gt;", "&": "&amp;", "~": "&#126;"}
# Characters a URL in a template value may not carry raw: they would end the value, the
# template or the link (percent-encoding keeps the URL the same resource, RFC 3986 2.1).
_WIKI_URL = {" ": "%20", "|": "%7C", "{": "%7B", "}": "%7D", "[": "%5B", "]": "%5D",
             "<": "%3C", ">": "%3E", '"': "%22"}


def _wiki(text: str) -> str:
    escaped = "".join(_WIKI_TEXT.get(c, c) for c in " ".join(text.split()))
    # two apostrophes start italics (three bold), even inside a template value
    return escaped.replace("''", "&#39;&#39;")


def _wiki_url(url: str) -> str:
    return "".join(_WIKI_URL.get(c, c) for c in url)


def wikipedia_citation(context: CitationContext) -> str:
    """``{{cite web}}`` on one line, then the evidence in an HTML comment readers do not see.

    Authors are given whole (``author``, ``author1``...) rather than split into ``last`` and
    ``first``: the page names them as one string, and splitting guesses wrong for many names.
    ``archive-url``, ``archive-date`` and ``url-status`` are given only for a public snapshot
    (``--archive-url``): CS1 requires a reachable archive URL, and a local path is not one.
    With a verified quote, ``url`` links straight to the passage (a text fragment).
    """
    url = context.quote.fragment_url if context.quote else context.url
    fields: list[tuple[str, str]] = [("url", _wiki_url(url)), ("title", _wiki(context.title))]
    if len(context.authors) == 1:
        fields.append(("author", _wiki(context.authors[0])))
    else:
        fields.extend((f"author{n}", _wiki(name)) for n, name in enumerate(context.authors, 1))
    if context.site_name:
        fields.append(("website", _wiki(context.site_name)))
    if context.published:
        fields.append(("date", context.published.isoformat()))
    fields.append(("access-date", context.capture_date.isoformat()))
    if context.location_is_public:
        fields.extend([("archive-url", _wiki_url(context.location_url)),
                       ("archive-date", context.capture_date.isoformat()),
                       ("url-status", context.url_status)])
    if context.quote:
        fields.append(("quote", _wiki(context.quote.passage)))
    template = "{{cite web " + " ".join(f"|{name}={value}" for name, value in fields) + "}}"
    evidence = provenance_phrases(context)
    if not context.location_is_public:
        evidence.append(f"snapshot at {context.location} (not public: use --archive-url)")
    # A wiki comment ends at the first "-->", so none may occur inside it.
    comment = "; ".join(evidence).replace("-->", "--&gt;")
    return f"{template}<!-- provenance: {comment} -->"


# ---------------------------------------------------------------------------------------------
# Robust Links (robustlinks.mementoweb.org/spec)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def robust_html_citation(context: CitationContext) -> str:
    """An HTML citation whose title is a Robust Link to the original and the snapshot.

    ``data-originalurl`` is the original URL, ``data-versionurl`` the snapshot, and
    ``data-versiondate`` the capture time (ISO 8601, UTC). ``href`` is the original URL, or
    the text-fragment link to a verified quote, which a ``<blockquote cite>`` carries above.
    """
    href = context.quote.fragment_url if context.quote else context.url
    link = (f'<a href="{_attr(href)}" data-originalurl="{_attr(context.url)}" '
            f'data-versionurl="{_attr(context.location_url)}" '
            f'data-versiondate="{rfc3339(context.captured_at, micros=False)}">'
            f"{html.escape(context.title, quote=False)}</a>")
    parts: list[str] = []
    if context.authors:
        parts.append(html.escape(sentence(author_list(context.authors)), quote=False))
    parts.append(f"“{link}”.")
    where = [f"<cite>{html.escape(context.site_name, quote=False)}</cite>"] \
        if context.site_name else []
    if context.published:
        where.append(f'<time datetime="{context.published.isoformat()}">'
                     f"{context.published.isoformat()}</time>")
    if where:
        parts.append(", ".join(where) + ".")
    parts.append(html.escape(sentence("; ".join(provenance_phrases(context))), quote=False))
    paragraph = " ".join(parts)
    if context.quote is None:
        return paragraph
    quote = (f'<blockquote cite="{_attr(context.quote.fragment_url)}">'
             f"<p>{html.escape(context.quote.passage, quote=False)}</p></blockquote>")
    return f"{quote}\n{paragraph}"
