"""Citations for reference managers: BibTeX, BibLaTeX and CSL-JSON.

BibTeX and BibLaTeX both get an ``@online`` entry. BibLaTeX knows the type natively (its
manual, section 2.1.1: ``organization``, ``date``, ``url``, ``urldate``, ``addendum``).
Classic BibTeX styles without an ``online`` function treat an unknown type as ``misc``, so the
BibTeX entry also carries what ``misc`` prints (``howpublished``, ``year``, ``month``) and says
"Accessed <date>" in ``note``, since those styles ignore ``urldate``.

CSL-JSON follows the CSL data schema (``csl-data.json``, v1.0): an array of one ``webpage``
item, dates as ``date-parts``, names as ``literal`` (see :mod:`provenance.cite.styles` on not
splitting names), the snapshot as ``archive``/``archive_location``, the evidence in ``note``
for people and in ``custom`` for programs.
"""

from __future__ import annotations

import json
import re
from datetime import date

from provenance.cite.common import (
    citation_key,
    provenance_phrases,
    sentence,
)
from provenance.cite.context import CitationContext
from provenance.timeutil import rfc3339

# The ten characters special to (La)TeX, as text-mode commands.
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
    "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
# A URL field is verbatim (biber) or set with \url at the top level of the .bbl (BibTeX), so it
# stays raw except for what would unbalance the field's braces or end it: percent-encoding
# those keeps the URL the same resource (RFC 3986 section 2.1).
_URL_UNSAFE = {"{": "%7B", "}": "%7D", "\\": "%5C", " ": "%20", "\n": "", "\r": ""}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
ARCHIVE_NAME = "provenance signed web capture"


def tex(text: str) -> str:
    """``text`` with every TeX special character escaped and whitespace collapsed."""
    return "".join(_TEX_SPECIAL.get(c, c) for c in " ".join(text.split()))


def _url_field(url: str) -> str:
    return "".join(_URL_UNSAFE.get(c, c) for c in url)


def _tex_url(url: str) -> str:
    # \url inside another command's argument (a note printed by the style) cannot read % and #
    # verbatim; hyperref's \url turns \% and \# back into % and #.
    return r"\url{" + _url_field(url).replace("%", r"\%").replace("#", r"\#") + "}"


def _names(authors: tuple[str, ...]) -> str:
    # "and" separates names in BibTeX; a name that contains the word is braced whole.
    return " and ".join(f"{{{tex(name)}}}" if " and " in f" {name} " else tex(name)
                        for name in authors)


def _entry(key: str, fields: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in fields)
    body = "".join(f"  {name.ljust(width)} = {value},\n" for name, value in fields)
    return f"@online{{{key},\n{body}}}"


def _evidence(context: CitationContext) -> str:
    """The provenance statement in TeX, with the snapshot location as a link."""
    phrases = "; ".join(tex(phrase) for phrase in provenance_phrases(context))
    where = _tex_url(context.location_url) if context.location_is_public \
        else tex(context.location)
    return f"{phrases}; archived at {where}"


def _quote_note(context: CitationContext) -> str | None:
    if context.quote is None:
        return None
    return (f"Quoted: ``{tex(context.quote.passage)}'' (verified in the archived text; "
            f"passage: {_tex_url(context.quote.fragment_url)})")


def bibtex_citation(context: CitationContext) -> str:
    fields: list[tuple[str, str]] = []
    if context.authors:
        fields.append(("author", f"{{{_names(context.authors)}}}"))
    # Double braces keep the title's capitalisation: it is quoted exactly as published.
    fields.append(("title", f"{{{{{tex(context.title)}}}}}"))
    if context.site_name:
        fields.append(("howpublished", f"{{{tex(context.site_name)}}}"))
    if context.published:
        fields.append(("year", f"{{{context.published.year}}}"))
        fields.append(("month", _MONTHS[context.published.month - 1]))
    fields.append(("url", f"{{{_url_field(context.url)}}}"))
    fields.append(("urldate", f"{{{context.capture_date.isoformat()}}}"))
    notes = [f"Accessed {context.capture_date.isoformat()}", _evidence(context)]
    quote = _quote_note(context)
    if quote:
        notes.append(quote)
    fields.append(("note", "{" + " ".join(sentence(note) for note in notes) + "}"))
    return _entry(citation_key(context), fields)


def biblatex_citation(context: CitationContext) -> str:
    fields: list[tuple[str, str]] = []
    if context.authors:
        fields.append(("author", f"{{{_names(context.authors)}}}"))
    fields.append(("title", f"{{{{{tex(context.title)}}}}}"))
    if context.site_name:
        fields.append(("organization", f"{{{tex(context.site_name)}}}"))
    if context.published:
        fields.append(("date", f"{{{context.published.isoformat()}}}"))
    fields.append(("url", f"{{{_url_field(context.url)}}}"))
    fields.append(("urldate", f"{{{context.capture_date.isoformat()}}}"))
    quote = _quote_note(context)
    if quote:
        fields.append(("note", f"{{{quote}}}"))
    fields.append(("addendum", f"{{{_evidence(context)}}}"))
    return _entry(citation_key(context), fields)


def _date_parts(day: date) -> dict[str, list[list[int]]]:
    return {"date-parts": [[day.year, day.month, day.day]]}


def csl_json_citation(context: CitationContext) -> str:
    item: dict[str, object] = {
        "id": citation_key(context),
        "type": "webpage",
        "title": context.title,
    }
    if context.authors:
        item["author"] = [{"literal": name} for name in context.authors]
    if context.site_name:
        item["container-title"] = context.site_name
    if context.published:
        item["issued"] = _date_parts(context.published)
    item["accessed"] = _date_parts(context.capture_date)
    item["URL"] = context.url
    item["archive"] = ARCHIVE_NAME
    item["archive_location"] = context.location_url if context.location_is_public \
        else context.location
    note = "; ".join(provenance_phrases(context))
    if context.quote:
        note += f". Quoted: “{context.quote.passage}” (verified in the archived text)"
    item["note"] = note
    custom: dict[str, object] = {
        "capture-id": context.capture_id,
        "capture-time": rfc3339(context.captured_at, micros=False),
        "manifest-sha256": context.manifest_sha256,
        "signer-fingerprint": context.signer_fingerprint,
        "snapshot": context.location_url,
        "timestamps": [{"tsa": stamp.tsa, "time": rfc3339(stamp.gen_time, micros=False)}
                       for stamp in context.timestamps],
    }
    if context.resource_id:
        custom["resource"] = context.resource_id
        custom["linked-from"] = context.linked_from
    if context.quote:
        custom["quote"] = context.quote.passage
        custom["text-fragment-url"] = context.quote.fragment_url
    item["custom"] = custom
    return _compact_dates(json.dumps([item], ensure_ascii=False, indent=2))


# An array of integers, as json.dumps(indent=2) spreads it over lines; JSON strings cannot hold
# a raw newline, so this matches structure only.
_NUMBER_ARRAY = re.compile(r"\[\s+(-?\d+(?:,\s+-?\d+)*)\s+\]")
_NESTED_ARRAY = re.compile(r"\[\s+(\[[-\d, ]+\])\s+\]")


def _compact_dates(text: str) -> str:
    """Put each ``date-parts`` value on one line: ``[[2017, 8, 14]]``."""
    text = _NUMBER_ARRAY.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split())
                             + "]", text)
    return _NESTED_ARRAY.sub(r"[\1]", text)
