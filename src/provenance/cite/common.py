"""Pieces every citation style shares: times, author lists, the provenance statement, keys."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from provenance.cite.context import CitationContext
from provenance.timeutil import rfc3339

_KEY_STOP_WORDS = frozenset({"the", "and", "for", "with", "from", "that", "this", "der",
                             "die", "das", "und", "les", "des", "une", "los", "las", "del"})


def author_list(authors: tuple[str, ...]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    if len(authors) <= 2:
        return " and ".join(authors)
    return ", ".join(authors[:-1]) + " and " + authors[-1]


def sentence(text: str) -> str:
    """``text`` ending in one full stop (none added after ``.``, ``?`` or ``!``)."""
    return text if text.endswith((".", "?", "!")) else text + "."


def stamp_phrases(context: CitationContext) -> list[str]:
    """``RFC 3161 time-stamp 2026-11-26T13:58:29Z by <TSA>``, one per token."""
    return [f"RFC 3161 time-stamp {rfc3339(stamp.gen_time, micros=False)}"
            + (f" by {stamp.tsa}" if stamp.tsa else "")
            for stamp in context.timestamps]


def provenance_phrases(context: CitationContext) -> list[str]:
    """The evidence in plain words: snapshot, capture time, manifest digest, signer, TSA."""
    signed = "Signed" if context.signer_fingerprint else "Unsigned"
    phrases = [f"{signed} snapshot {context.capture_id} captured "
               f"{rfc3339(context.captured_at, micros=False)} (UTC)"]
    if context.resource_id:
        phrases.append(f"resource {context.resource_id}, linked from {context.linked_from}")
    phrases.append(f"manifest {context.manifest_sha256}")
    if context.signer_fingerprint:
        phrases.append(f"signer {context.signer_fingerprint}")
    phrases.extend(stamp_phrases(context))
    return phrases


def ascii_word(text: str) -> str:
    """Lowercase ASCII letters and digits of ``text`` (accents dropped: "Müller" -> "muller")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode().lower())


def citation_key(context: CitationContext) -> str:
    """A BibTeX/CSL key in the usual ``authorYEARword`` shape: ``oyelaran2017opinion``.

    Who: the first author's last name (the last word of the name), else the site name, else
    the host. Year: publication, else capture. Word: the title's first word of at least three
    letters that is not an article or conjunction.
    """
    who = ""
    if context.authors and context.authors[0].split():
        who = ascii_word(context.authors[0].split()[-1])
    if not who and context.site_name and context.site_name.split():
        who = ascii_word(context.site_name.split()[0])
    if not who:
        host = re.sub(r"^www\.", "", urlsplit(context.url).hostname or "")
        who = ascii_word(host.split(".")[0])
    if not who[:1].isalpha():
        who = "snapshot"  # no name, or an address such as 127.0.0.1
    year = (context.published or context.capture_date).year
    # a title that is only the URL (nothing better was known) gives no word
    title = "" if context.title == context.url else context.title
    words = (ascii_word(word) for word in re.split(r"[\s\-–—/]+", title))
    word = next((w for w in words if len(w) >= 3 and w not in _KEY_STOP_WORDS), "")
    return f"{who}{year}{word}"
