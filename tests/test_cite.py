"""``provenance cite``: every format against golden files, sources, quotes, escaping, the CLI.

Golden files: ``tests/golden/cite/<case>.<format>``. They come from one real capture of the
sample site made with a fixed clock, a fixed signing key and a loopback TSA with a fixed
genTime. What still differs between runs is replaced before comparing: the site's base URL
(its port) by ``{base}``, the bundle path by ``{bundle}`` (``{bundle_uri}`` as a ``file:``
URI), the capture id (random suffix) by ``{capture_id}``, the manifest digest (it covers
random WARC record ids) by ``{sha256}`` and a source's resource id (numbered in the order
concurrent fetches finish) by ``{resource}``. After an intended change, regenerate and review the
diff::

    PROVENANCE_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/test_cite.py
    git diff tests/golden/cite/

CSL-JSON output is validated against the CSL data schema (``tests/data/csl-data.json``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from markdown_it import MarkdownIt

from helpers import run_cli
from provenance.capture.content import parse_content_type
from provenance.capture.pipeline import SigningIdentity, capture
from provenance.cite import (
    CitationContext,
    CitationFormat,
    CiteOptions,
    Quote,
    QuoteNotFoundError,
    build_context,
    cite,
    render,
)
from provenance.cite.bibliography import tex
from provenance.cite.sources import HttpBody, dechunk, document_from_body, read_body, read_document
from provenance.cite.stamps import TimeStamp
from provenance.demo import site as demo
from provenance.errors import UsageError
from provenance.snapshot import Snapshot, article_resource, article_text, open_snapshot
from servers import raw, serve
from tsa import serve_builtin_tsa

GOLDEN = Path(__file__).parent / "golden" / "cite"
CSL_SCHEMA = json.loads((Path(__file__).parent / "data" / "csl-data.json").read_text("utf-8"))
UPDATE = bool(os.environ.get("PROVENANCE_UPDATE_GOLDEN"))

STARTED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TSA_TIME = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)
SIGNER = SigningIdentity.from_key(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
ARCHIVE_BASE = "https://archive.example.org/captures/"
# Runs across a paragraph break in the archived article text.
PARAGRAPH_QUOTE = ("the public consultation was a formality staged for the cameras. "
                   "Start with the official version.")


@dataclass(frozen=True)
class Captured:
    store: Path
    snapshot: Snapshot
    base_url: str

    @property
    def capture_id(self) -> str:
        return self.snapshot.manifest.capture_id

    def normalise(self, text: str, resource: str | None = None) -> str:
        bundle = self.snapshot.path.resolve()
        if resource is not None:
            text = re.sub(rf"\b{resource}\b", "{resource}", text)
        for real, placeholder in ((bundle.as_uri(), "{bundle_uri}"), (str(bundle), "{bundle}"),
                                  (tex(str(bundle)), "{bundle}"),
                                  (self.snapshot.manifest_sha256.removeprefix("sha256:"),
                                   "{sha256}"),
                                  (self.capture_id, "{capture_id}"),
                                  (self.base_url, "{base}")):
            text = text.replace(real, placeholder)
        return text


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Captured]:
    store = tmp_path_factory.mktemp("cite") / "archives"
    store.mkdir()
    with demo.serve_sample_site(slow_delay=0.05) as site, \
            serve_builtin_tsa(gen_time=TSA_TIME) as tsa:
        result = capture(site.article_url, store=store, signer=SIGNER, clock=lambda: STARTED,
                         tsa_urls=[tsa.url])
    yield Captured(store=store, snapshot=open_snapshot(result.bundle), base_url=site.base_url)


CASES: dict[str, CiteOptions] = {
    "article": CiteOptions(),
    "article-quote": CiteOptions(quote=PARAGRAPH_QUOTE, archive_url=ARCHIVE_BASE),
    "source-pdf": CiteOptions(source="{base}" + demo.PDF_PATH,
                              quote="Amount allocated: EUR 47,860,000."),
    "source-report": CiteOptions(source="{base}" + demo.REPORT_REDIRECT_PATH,
                                 archive_url=ARCHIVE_BASE.rstrip("/"), dead=True),
}


@pytest.fixture(scope="module")
def contexts(captured: Captured) -> dict[str, CitationContext]:
    built = {}
    for case, options in CASES.items():
        if options.source:
            options = CiteOptions(source=options.source.replace("{base}", captured.base_url),
                                  quote=options.quote, archive_url=options.archive_url,
                                  dead=options.dead)
        built[case] = build_context(captured.snapshot, options)
    return built


# ---------------------------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("style", list(CitationFormat), ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, style: CitationFormat, captured: Captured,
                contexts: dict[str, CitationContext]) -> None:
    context = contexts[case]
    output = captured.normalise(render(context, style), context.resource_id) + "\n"
    golden = GOLDEN / f"{case}.{style.value}"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", list(CASES))
def test_csl_json_is_valid_against_the_csl_data_schema(
        case: str, contexts: dict[str, CitationContext]) -> None:
    items = json.loads(render(contexts[case], CitationFormat.CSL_JSON))
    jsonschema.Draft7Validator(CSL_SCHEMA).validate(items)
    assert [item["type"] for item in items] == ["webpage"]


def test_the_csl_schema_is_a_real_oracle(contexts: dict[str, CitationContext]) -> None:
    items = json.loads(render(contexts["article"], CitationFormat.CSL_JSON))
    for broken in ({**items[0], "type": "web-page"}, {**items[0], "archive-url": "x"},
                   {**items[0], "accessed": {"date-parts": [["2026", 3, 1, 9]]}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(CSL_SCHEMA).validate([broken])


# ---------------------------------------------------------------------------------------------
# What the citations say


def test_the_article_context(captured: Captured, contexts: dict[str, CitationContext]) -> None:
    context = contexts["article"]
    assert context.title == demo.ARTICLE_TITLE
    assert context.authors == demo.ARTICLE_AUTHORS
    assert context.site_name == demo.SITE_NAME
    assert context.published == date(2017, 8, 14)
    assert context.url == captured.base_url + demo.ARTICLE_PATH
    assert context.captured_at == STARTED
    assert context.capture_id.startswith("20260301-120000-")
    assert context.manifest_sha256 == captured.snapshot.manifest_sha256
    assert context.signer_fingerprint == SIGNER.fingerprint
    assert context.timestamps == (TimeStamp(
        tsa="CN=provenance test TSA,O=provenance tests (loopback only)", gen_time=TSA_TIME),)
    assert context.location == str(captured.snapshot.path.resolve())
    assert not context.location_is_public
    assert context.url_status == "live"


def test_a_quote_across_paragraphs_links_to_its_passage(
        captured: Captured, contexts: dict[str, CitationContext]) -> None:
    quote = contexts["article-quote"].quote
    assert quote is not None
    assert quote.passage == PARAGRAPH_QUOTE
    article = captured.base_url + demo.ARTICLE_PATH
    # start and end each inside their own paragraph (the archived text has a break between)
    assert quote.fragment_url == (article + "#:~:text=the%20public%20consultation%20was,"
                                  "with%20the%20official%20version.")


def test_wikipedia_names_the_public_snapshot(captured: Captured,
                                            contexts: dict[str, CitationContext]) -> None:
    wiki = render(contexts["article-quote"], CitationFormat.WIKIPEDIA)
    assert f"|archive-url={ARCHIVE_BASE}{captured.capture_id} " in wiki
    assert "|archive-date=2026-03-01 |url-status=live" in wiki
    quote = contexts["article-quote"].quote
    assert quote is not None and f"|url={quote.fragment_url} " in wiki
    local = render(contexts["article"], CitationFormat.WIKIPEDIA)
    assert "archive-url" not in local.split("<!--")[0]  # CS1 wants a reachable archive URL
    report = render(contexts["source-report"], CitationFormat.WIKIPEDIA)
    assert "|url-status=dead" in report


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def test_robust_links_attributes(captured: Captured,
                                 contexts: dict[str, CitationContext]) -> None:
    parser = _Anchors()
    parser.feed(render(contexts["source-report"], CitationFormat.ROBUST_HTML))
    final = captured.base_url + demo.REPORT_PATH
    assert parser.anchors == [{
        "href": final, "data-originalurl": final,
        "data-versionurl": ARCHIVE_BASE + captured.capture_id,
        "data-versiondate": "2026-03-01T12:00:00Z",
    }]


def test_a_source_is_cited_by_its_final_url_and_own_metadata(
        captured: Captured, contexts: dict[str, CitationContext]) -> None:
    pdf = contexts["source-pdf"]
    assert pdf.url == captured.base_url + demo.PDF_PATH
    assert pdf.title == "Wendel Crossing replacement - capital allocation"
    assert pdf.linked_from == captured.base_url + demo.ARTICLE_PATH
    assert pdf.quote is not None
    assert pdf.quote.fragment_url.endswith(
        "#:~:text=Amount%20allocated%3A%20EUR%2047%2C860%2C000.")
    report = contexts["source-report"]
    assert report.url == captured.base_url + demo.REPORT_PATH
    assert report.title == "Council approves €47.86m for Wendel Crossing replacement"


def test_a_source_in_a_legacy_charset_is_quoted_from_its_decoded_text(
        captured: Captured) -> None:
    options = CiteOptions(source=captured.base_url + demo.LEGACY_PATH,
                          quote='Ratsherr Dürr betont, die Bürgerinnen und Bürger müssten '
                                '"von Anfang an" beteiligt werden.')
    context = build_context(captured.snapshot, options)
    assert context.quote is not None
    assert "„von Anfang an“" in context.quote.passage
    assert "#:~:text=Ratsherr%20D%C3%BCrr" in context.quote.fragment_url


def test_a_quote_outside_the_main_text_is_found_in_the_page(captured: Captured) -> None:
    # The byline is on the archived page but not in the extracted main text.
    options = CiteOptions(source=captured.base_url + demo.REPORT_PATH,
                          quote="By the Courier city desk, 11 August 2017")
    assert build_context(captured.snapshot, options).quote is not None


def test_a_quote_check_folds_each_text_once(captured: Captured,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Found and linked, or missed and hinted at, each archived text is folded once.

    The found quote crosses a paragraph break, so its link is built from edge phrases that
    are looked up in the whole text; only the quote and those short phrases fold again.
    """
    import provenance.cite.context as context_module
    import provenance.cite.fragments as fragments_module
    import provenance.cite.quotes as quotes_module
    from provenance.cite.folding import FoldedText
    from provenance.cite.folding import fold as real_fold

    folded: list[str] = []

    def counting(text: str) -> FoldedText:
        folded.append(text)
        return real_fold(text)

    for module in (context_module, fragments_module, quotes_module):
        monkeypatch.setattr(module, "fold", counting)
    stored = article_text(captured.snapshot)
    assert stored
    build_context(captured.snapshot, CiteOptions(quote=PARAGRAPH_QUOTE))
    assert folded.count(stored) == 1

    source = next(r for r in captured.snapshot.manifest.resources
                  if r.url == captured.base_url + demo.REPORT_PATH)
    document = read_document(captured.snapshot, source)
    assert document.full_text
    folded.clear()
    options = CiteOptions(source=source.url,
                          quote="the outcome was reported as a close, hard-won decision")
    with pytest.raises(QuoteNotFoundError, match="quote not found"):
        build_context(captured.snapshot, options)
    assert (folded.count(document.text), folded.count(document.full_text)) == (1, 1)


def test_a_sidebar_passage_is_not_a_quote_of_the_article(captured: Captured) -> None:
    # The "most read" sidebar is on the archived page but not in the article text: citing it
    # under the article's authors would misattribute it. Telling the user where it was seen
    # means reading the article's own response, which the sample site sends gzip + chunked.
    resources = captured.snapshot.manifest.resources
    article = next(r for r in resources if r.role == "article")
    assert (article.content_encoding, article.transfer_encoding) == ("gzip", "chunked")
    with pytest.raises(QuoteNotFoundError) as raised:
        build_context(captured.snapshot, CiteOptions(quote="Harbour ferry timetable cut again"))
    assert "elsewhere on the archived page" in raised.value.diagnostics()


def test_unsigned_captures_of_a_pdf_and_of_a_dead_page(
        sample_site: demo.SampleSite, store: Path) -> None:
    pdf = open_snapshot(capture(sample_site.base_url + demo.PDF_PATH, store=store).bundle)
    assert pdf.manifest.article_kind == "document"
    context = build_context(pdf, CiteOptions(quote="No separate design competition is foreseen."))
    # the PDF describes itself where the manifest has no page metadata
    assert context.title == "Wendel Crossing replacement - capital allocation"
    assert context.authors == ("City of Halvern Finance Directorate",)
    assert context.signer_fingerprint is None and context.timestamps == ()
    assert context.quote is not None
    text = render(context, CitationFormat.TEXT)
    assert "Unsigned snapshot " in text and "signer" not in text
    assert render(context, CitationFormat.BIBTEX).startswith("@online{directorate")

    gone = open_snapshot(capture(sample_site.base_url + demo.GONE_PATH, store=store).bundle)
    assert gone.manifest.state == "FAILED"
    context = build_context(gone, CiteOptions(archive_url=ARCHIVE_BASE))
    assert context.url_status == "dead"
    assert context.title == context.url
    # no author, no site, a numeric host: the key falls back to a word, not to "127"
    assert render(context, CitationFormat.BIBLATEX).startswith("@online{snapshot2026,")
    assert "|url-status=dead" in render(context, CitationFormat.WIKIPEDIA)


def test_dechunk_undoes_framing_and_tolerates_a_cut() -> None:
    framed = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
    assert dechunk(framed, 100) == b"hello, world"
    assert dechunk(framed[:21], 100) == b"hello, "  # cut inside the second chunk
    assert dechunk(framed, 7) == b"hello, "  # the cap
    assert dechunk(b"zz\r\nhello", 100) == b""  # not chunked at all


@pytest.mark.parametrize(("value", "media_type", "charset"), [
    ("text/html", "text/html", None),
    ('Text/HTML; Charset="UTF-8"', "text/html", "UTF-8"),  # RFC 9110 8.3: case-insensitive
    ('text/html; note="a;charset=x"; charset=utf-8', "text/html", "utf-8"),  # quoted ';'
    ('text/html; charset="utf\\-8"', "text/html", "utf-8"),  # quoted-pair
    ("text/html; charset=a; charset=b", "text/html", "a"),  # the first of a repeat
    ("text/html; charset = utf-8 ", "text/html", "utf-8"),
    ('text/html; charset="utf-8', "text/html", "utf-8"),  # left open: runs to the end
    ('text/html; charset="a"junk; q=1', "text/html", "a"),
    ("text/html; charset; q=1", "text/html", None),
    ("text/html; charset=", "text/html", None),
    ("  TEXT/Html  ;;; ;charset=x", "text/html", "x"),
    ("; charset=x", None, "x"),
    ("", None, None),
    (None, None, None),
])
def test_content_type_parsing(value: str | None, media_type: str | None,
                              charset: str | None) -> None:
    parsed = parse_content_type(value)
    assert (parsed.media_type, parsed.charset) == (media_type, charset)


@pytest.mark.parametrize("content_types", [
    ['Text/HTML; note="see;charset=iso-8859-5"; Charset="koi8-r"'],
    ["text/html; charset=koi8-r", "image/png"],
])
def test_capture_and_cite_read_one_content_type(store: Path, content_types: list[str]) -> None:
    """Capture and cite read a Content-Type alike, by one parser, from the first such field.

    Both used to split on every ';', so the charset quoted inside ``note`` was taken for the
    page's and the KOI8-R page was read as ISO-8859-5. Of two Content-Type fields the capture
    kept the body for parsing by the last but parsed it by the first (so never did), and cite
    read them joined ("text/html; charset=koi8-r, image/png").
    """
    words = "Съешь же ещё этих мягких французских булок, да выпей же чаю."
    page = (f"<!doctype html><html><head><title>Булки</title></head><body><article>"
            f"{f'<p>{words} {words} {words}</p>' * 6}</article></body></html>").encode("koi8-r")
    fields = "".join(f"Content-Type: {value}\r\n" for value in content_types)
    route = raw(f"HTTP/1.1 200 OK\r\n{fields}Content-Length: {len(page)}\r\n"
                f"Connection: close\r\n\r\n".encode() + page)
    with serve({"/page": route}) as server:
        snapshot = open_snapshot(capture(server.base_url + "/page", store=store).bundle)
    article = article_resource(snapshot.manifest)
    assert article is not None and article.media_type == "text/html"
    assert words in (article_text(snapshot) or "")
    body = read_body(snapshot, article)
    assert (body.media_type, body.charset) == ("text/html", "koi8-r")
    assert words in read_document(snapshot, article).text


@pytest.mark.parametrize(("http", "expected"), [
    (HttpBody(200, "text/plain", "iso-8859-1", "Stra\u00dfe".encode("latin-1")), "Stra\u00dfe"),
    (HttpBody(200, "text/plain", "no-such-charset", b"plain"), "plain"),
    (HttpBody(200, None, None, demo._pdf(("Unlabelled PDF text",))), "Unlabelled PDF text"),
    (HttpBody(200, "application/octet-stream", None, demo._pdf(("Sniffed",))), "Sniffed"),
])
def test_documents_by_media_type(http: HttpBody, expected: str) -> None:
    assert document_from_body("http://127.0.0.1/x", http).text.strip() == expected


def test_an_html_body_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance.capture.extract as extract_package
    import provenance.capture.extract.article as article_module
    from provenance.capture.extract import decode_html as decode

    calls: list[int] = []

    def counting(body: bytes, charset: str | None) -> str:
        calls.append(len(body))
        return decode(body, charset)

    # cite imports decode_html from the package when it reads a page (not at start-up)
    monkeypatch.setattr(extract_package, "decode_html", counting)
    monkeypatch.setattr(article_module, "decode_html", counting)
    body = ("<html><head><title>Stra\u00dfe</title></head><body><article><p>"
            + "Die Stra\u00dfe wird gesperrt. " * 40 + "</p></article></body></html>")
    document = document_from_body("http://127.0.0.1/x",
                                  HttpBody(200, "text/html", "iso-8859-1",
                                           body.encode("latin-1")))
    assert calls == [len(body)]
    assert document.title == "Stra\u00dfe" and "Die Stra\u00dfe wird gesperrt." in document.text
    assert document.full_text is not None and "Stra\u00dfe" in document.full_text


def test_a_body_without_text_is_refused() -> None:
    with pytest.raises(UsageError, match=r"archived as image/png, which has no text"):
        document_from_body("http://127.0.0.1/i.png", HttpBody(200, "image/png", None, b"\x89PNG"))


@pytest.mark.parametrize(("options", "message"), [
    (CiteOptions(quote="The outcome was reported as a close, hard-won decision."),
     "quote not found in the archived text of http://127.0.0.1:"),
    (CiteOptions(source="{base}" + demo.PDF_PATH, quote="Amount allocated: EUR 47,860,001."),
     "quote not found in the archived text of http://127.0.0.1:"),
])
def test_a_near_miss_is_not_found(captured: Captured, options: CiteOptions,
                                  message: str) -> None:
    if options.source:
        options = CiteOptions(source=options.source.replace("{base}", captured.base_url),
                              quote=options.quote)
    with pytest.raises(QuoteNotFoundError, match=message) as raised:
        cite(captured.snapshot, CitationFormat.TEXT, options)
    assert raised.value.exit_code == 1
    assert "closest passage there reads" in raised.value.diagnostics()


@pytest.mark.parametrize(("options", "message"), [
    (CiteOptions(quote=" \n "), "--quote is empty"),
    (CiteOptions(archive_url="ftp://archive.example.org/"), "must be an http"),
    (CiteOptions(archive_url="https://archive.example.org/?x=1"), "query or fragment"),
    (CiteOptions(source="http://127.0.0.1:9/not-linked"), "has no linked source"),
    (CiteOptions(source="mailto:letters@courier.example"), "was not fetched"),
])
def test_bad_requests_are_usage_errors(captured: Captured, options: CiteOptions,
                                       message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cite(captured.snapshot, CitationFormat.TEXT, options)


def test_an_unknown_source_lists_a_few_captured_ones(captured: Captured) -> None:
    with pytest.raises(UsageError) as raised:
        cite(captured.snapshot, options=CiteOptions(source="http://127.0.0.1:9/x"))
    message = str(raised.value)
    assert "its captured sources: " in message
    assert message.count(captured.base_url) == 5
    assert "more" not in message  # the sample article has exactly five captured sources


# ---------------------------------------------------------------------------------------------
# Escaping, with hostile metadata

NASTY = "R&D_{x} 50% ~$5 #1 ^2 \\ a | b }} {{x}} [[y]] <b>bold</b> ''it'' ~~~~ *a* `c` -->"


def _nasty_context(*, public: bool) -> CitationContext:
    return CitationContext(
        title=NASTY, authors=("Ann & Bob", "Smith and Sons"), site_name=NASTY,
        published=date(2020, 1, 2), url="https://example.org/a_b?x=1&y=%7C",
        captured_at=datetime(2020, 1, 3, 4, 5, 6, tzinfo=UTC),
        capture_id="20200103-040506-abcdef", manifest_sha256="sha256:" + "0" * 64,
        signer_fingerprint="SHA256:ab+/cd", timestamps=(TimeStamp(tsa=NASTY, gen_time=datetime(
            2020, 1, 3, 4, 5, 9, tzinfo=UTC)),),
        location="https://archive.example.org/c/20200103-040506-abcdef" if public
        else "/srv/a_b {x}/20200103-040506-abcdef",
        location_url="https://archive.example.org/c/20200103-040506-abcdef" if public
        else "file:///srv/a_b%20%7Bx%7D/20200103-040506-abcdef",
        location_is_public=public, url_status="live",
        quote=Quote(passage=NASTY, fragment_url="https://example.org/a_b?x=1#:~:text=R%26D"))


@pytest.mark.parametrize("public", [True, False])
def test_wikipedia_values_cannot_break_the_template(public: bool) -> None:
    wiki = render(_nasty_context(public=public), CitationFormat.WIKIPEDIA)
    template, comment = wiki.split("}}<!-- provenance: ", 1)
    assert template.startswith("{{cite web |")
    for parameter in template.removeprefix("{{cite web |").split(" |"):
        name, _, value = parameter.partition("=")
        assert name.replace("-", "").isalnum()
        for forbidden in ("|", "{", "}", "[", "]", "<", ">", "''", "~~~"):
            assert forbidden not in value, (name, value)
    assert comment.endswith(" -->")
    assert "-->" not in comment.removesuffix(" -->")


def _bib_fields(entry: str) -> dict[str, str]:
    lines = entry.splitlines()
    assert lines[0].startswith("@online{") and lines[-1] == "}"
    fields = {}
    for line in lines[1:-1]:
        name, _, value = line.strip().partition(" = ")
        fields[name.strip()] = value.removesuffix(",")
    return fields


def _balanced(text: str) -> bool:
    depth = 0
    escaped = False
    for character in text:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "{":
            depth += 1
        elif character == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


@pytest.mark.parametrize("style", [CitationFormat.BIBTEX, CitationFormat.BIBLATEX], ids=str)
@pytest.mark.parametrize("public", [True, False])
def test_bibtex_fields_are_escaped_and_balanced(style: CitationFormat, public: bool) -> None:
    fields = _bib_fields(render(_nasty_context(public=public), style))
    for name, value in fields.items():
        assert _balanced(value), (name, value)
    title = fields["title"]
    assert title.startswith("{{") and title.endswith("}}")
    unescaped = title.replace("\\\\", "")
    for special in "&%$#_":
        assert all(unescaped[i - 1] == "\\" for i, c in enumerate(unescaped) if c == special)
    assert "\\textasciitilde{}" in title and "\\textasciicircum{}" in title
    assert fields["author"] == "{Ann \\& Bob and {Smith and Sons}}"
    assert fields["url"] == "{https://example.org/a_b?x=1&y=%7C}"  # a URL field stays verbatim


def test_robust_html_is_escaped() -> None:
    html_text = render(_nasty_context(public=True), CitationFormat.ROBUST_HTML)

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.anchor_text = ""
            self.inside = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            self.inside = tag == "a"

        def handle_endtag(self, tag: str) -> None:
            self.inside = False if tag == "a" else self.inside

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.anchor_text += data

    parser = Collect()
    parser.feed(html_text)
    parser.close()
    assert "b" not in parser.tags  # the title's <b> is text, not markup
    assert parser.anchor_text == NASTY


def test_markdown_is_escaped() -> None:
    rendered = MarkdownIt("commonmark").render(
        render(_nasty_context(public=False), CitationFormat.MARKDOWN))
    # the only emphasis is the site name's own; nothing in the values became markup
    assert rendered.count("<em>") == 1 and "<b>" not in rendered
    assert rendered.count("<code>") == 3  # id, digest and signer, only
    assert '<a href="https://example.org/a_b?x=1&amp;y=%7C">' in rendered


def test_csl_json_round_trips_any_text() -> None:
    items = json.loads(render(_nasty_context(public=False), CitationFormat.CSL_JSON))
    assert items[0]["title"] == NASTY
    assert items[0]["custom"]["quote"] == NASTY
    jsonschema.Draft7Validator(CSL_SCHEMA).validate(items)


# ---------------------------------------------------------------------------------------------
# The command line


def _cli(captured: Captured, *args: str) -> tuple[int, str, str]:
    done = run_cli("cite", *args, "--archive-dir", str(captured.store))
    return done.returncode, done.stdout, done.stderr


def test_cli_cites_by_id_prefix(captured: Captured) -> None:
    prefix = captured.capture_id[:17]
    code, out, err = _cli(captured, prefix, "--format", "wikipedia",
                          "--archive-url", ARCHIVE_BASE)
    assert code == 0, err
    assert out.startswith("{{cite web |url=" + captured.base_url + demo.ARTICLE_PATH)
    assert f"|archive-url={ARCHIVE_BASE}{captured.capture_id}" in out
    assert err == ""


def test_cli_quote_found(captured: Captured) -> None:
    code, out, err = _cli(captured, captured.capture_id, "--quote",
                          'It was neither. Documents now circulating at City Hall')
    assert code == 0, err
    assert "Quoted: “It was neither. Documents now circulating at City Hall”" in out
    assert "#:~:text=It%20was%20neither.%20Documents%20now%20circulating%20at%20City%20Hall" \
        in out
    assert err.startswith("quote verified in the archived text of ")


def test_cli_quote_not_found_is_exit_1_with_one_line(captured: Captured) -> None:
    code, out, err = _cli(captured, captured.capture_id, "--quote",
                          "It was neither. Documents now circulating in City Hall")
    assert code == 1
    assert out == ""
    assert err.startswith("error: quote not found in the archived text of "
                          + captured.base_url + demo.ARTICLE_PATH)
    assert err.count("\n") == 1


def test_cli_cites_sources(captured: Captured) -> None:
    code, out, err = _cli(captured, str(captured.snapshot.path), "--format", "bibtex",
                          "--source", captured.base_url + demo.PDF_PATH,
                          "--quote", "Contract award: target December 2017.")
    assert code == 0, err
    assert "= {{Wendel Crossing replacement - capital allocation}}," in out
    assert "Contract award: target December 2017." in out
    code, out, err = _cli(captured, captured.capture_id, "--format", "robust-html",
                          "--source", captured.base_url + demo.REPORT_PATH)
    assert code == 0, err
    assert f'data-originalurl="{captured.base_url}{demo.REPORT_PATH}"' in out
    assert "pass --archive-url BASE" in err


@pytest.mark.parametrize(("args", "needle"), [
    (("--format", "apa"), "Invalid value for '--format'"),
    (("--source", "http://127.0.0.1:9/nope"), "has no linked source"),
    (("--archive-url", "file:///srv/archive"), "--archive-url must be an http(s) URL"),
])
def test_cli_usage_errors_exit_2(captured: Captured, args: tuple[str, ...],
                                 needle: str) -> None:
    code, out, err = _cli(captured, captured.capture_id, *args)
    assert code == 2
    assert out == ""
    assert needle in err


def test_cli_unknown_capture_exit_2(captured: Captured) -> None:
    code, out, err = _cli(captured, "19990101")
    assert out == ""
    assert code == 2
    assert err.startswith("error: no capture '19990101'")
    assert err.count("\n") == 1
