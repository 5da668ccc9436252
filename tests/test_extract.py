"""Article extraction: body links, metadata, text, requisites, CSS references, decoding."""

from __future__ import annotations

import gzip
import logging
import random
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from provenance.capture import extract
from provenance.capture.extract import (
    ArticleExtraction,
    BodyLink,
    PageMetadata,
    Requisite,
    css_references,
    decode_html,
    extract_article,
    find_requisites,
)
from provenance.capture.extract import links as extract_links
from provenance.capture.extract import metadata as extract_metadata
from provenance.capture.extract import parsing as extract_parsing
from provenance.demo import site as demo
from provenance.demo.site import SampleSite

PAGE_URL = "https://news.example.com/2017/08/harbour-bridge-reopens?ref=home"

NEWS_HTML = """<!DOCTYPE html>
<html lang="en-gb">
<head>
<meta charset="utf-8">
<title>Harbour bridge reopens after repairs | The Daily Example</title>
<base href="https://news.example.com/2017/08/">
<link rel="canonical" href="/2017/08/harbour-bridge-reopens">
<meta name="description"
      content="The harbour bridge reopened on Monday after three months of repairs.">
<meta property="og:site_name" content="The Daily Example">
<meta property="og:title" content="Harbour bridge reopens after repairs">
<meta property="article:published_time" content="2017-08-14T09:30:00+00:00">
<link rel="stylesheet" href="/static/site.css">
<link rel="shortcut icon" href="/favicon.ico">
<link rel="apple-touch-icon" href="/touch-icon.png">
<link rel="preload" href="/fonts/body.woff2" as="font" crossorigin>
<link rel="alternate" type="application/rss+xml" href="/feed.xml">
<script src="/static/app.js"></script>
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "NewsArticle",
 "headline": "Harbour bridge reopens after repairs",
 "datePublished": "2017-08-14T09:30:00Z",
 "author": [{"@type": "Person", "name": "Jane Doe"}, {"@type": "Person", "name": "John Roe"}],
 "publisher": {"@type": "Organization", "name": "The Daily Example"}}
</script>
<style>
@import url("/static/print.css") print;
body { background: url(img/paper.png); }
</style>
</head>
<body>
<header class="site-header">
  <a href="/" class="logo"><img src="/static/logo.svg" alt="The Daily Example"></a>
  <nav class="main-nav"><ul>
    <li><a href="/world/">World</a></li><li><a href="/business/">Business</a></li>
    <li><a href="/sport/">Sport</a></li>
  </ul></nav>
</header>
<div class="breadcrumbs"><a href="/">Home</a> &rsaquo; <a href="/local/">Local</a></div>
<main>
<article class="post">
  <h1>Harbour bridge reopens after repairs</h1>
  <p class="byline">By <a href="/authors/jane-doe" rel="author">Jane Doe</a> and
    <a href="/authors/john-roe" rel="author">John Roe</a>,
    <time datetime="2017-08-14">14 August 2017</time></p>
  <div class="share-bar">
    <a href="https://twitter.com/intent/tweet?url=https%3A%2F%2Fnews.example.com%2F"
      >Share on Twitter</a>
    <a href="https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fnews.example.com%2F"
      >Share on Facebook</a>
  </div>
  <figure>
    <img src="images/bridge.jpg" srcset="images/bridge-480.jpg 480w, images/bridge-960.jpg 960w"
         alt="The bridge at dawn">
    <figcaption>The bridge at dawn.</figcaption>
  </figure>
  <p>The harbour bridge reopened on Monday after three months of repairs, the
     <a href="https://www.transport.example.org/reports/2017/bridge.pdf">transport authority
     said in a report</a> published this morning. Engineers replaced 240 steel cables and
     resurfaced the entire deck.</p>
  <p>According to the <a href="../../data/traffic.csv">city's traffic data</a>, about 40,000
     vehicles cross the bridge every day. Questions can be sent to
     <a href="mailto:press@transport.example.org">the press office</a>.
     See the <a href="#timeline">timeline below</a> for details.</p>
  <p>Critics had warned that the closure would hurt local businesses. A survey by the
     <a href="https://chamber.example.net/survey?year=2017&amp;q=bridge">chamber of commerce</a>
     found that most shops lost revenue during the works, though the effect was smaller than
     feared. The <a href="//archive.example.org/bridge/1961">original plans from 1961</a> had
     allowed for a second deck that was never built.</p>
  <h2 id="timeline">Timeline</h2>
  <p>Work began in May, when inspectors found corrosion on the northern pylon. The
     <a href="https://www.transport.example.org/reports/2017/bridge.pdf">transport authority</a>
     closed the bridge two days later, and the repair contract was awarded in June.</p>
  <p style="background-image: url('images/divider.png')">The mayor said the reopening was
     "a relief for everyone who lives here".</p>
  <h2>Sources</h2>
  <ul>
    <li><a href="https://www.transport.example.org/notices/closure-2017"
      >Transport authority: closure notice, May 2017</a></li>
    <li><a href="https://council.example.gov/minutes/2017-06-12"
      >City council minutes, 12 June 2017</a></li>
  </ul>
  <footer class="article-footer">
    <ul class="tags"><li><a href="/tags/infrastructure">Infrastructure</a></li>
      <li><a href="/tags/transport">Transport</a></li></ul>
  </footer>
</article>
<aside class="sidebar">
  <h3>Most read</h3>
  <ol><li><a href="/2017/08/council-budget">Council approves new budget</a></li>
      <li><a href="/2017/08/summer-festival">Summer festival draws record crowds</a></li></ol>
  <div class="related"><h3>Related</h3>
    <a href="/2016/02/bridge-inspection">Bridge inspection finds corrosion</a></div>
</aside>
</main>
<section id="comments" class="comments">
  <h3>Comments</h3>
  <div class="comment"><p>Great news! More at <a href="https://spam.example/">my blog</a>.</p></div>
</section>
<footer class="site-footer">
  <a href="/about">About us</a> <a href="/privacy">Privacy</a>
  <picture>
    <source srcset="/static/badge.webp 1x, /static/badge@2x.webp 2x" type="image/webp">
    <img src="/static/badge.png" alt="">
  </picture>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
  <template><img src="/static/template-only.png"></template>
</footer>
<video poster="/media/poster.jpg" controls><source src="/media/clip.mp4" type="video/mp4"></video>
<form><input type="image" src="/static/submit.png" alt="Submit"></form>
</body>
</html>
"""

#: every <a> inside the article body, in document order: (href as written, absolute URL, text)
EXPECTED_BODY_LINKS = (
    (
        "https://www.transport.example.org/reports/2017/bridge.pdf",
        "https://www.transport.example.org/reports/2017/bridge.pdf",
        "transport authority said in a report",
    ),
    # relative to <base href>, not to the page URL
    ("../../data/traffic.csv", "https://news.example.com/data/traffic.csv", "city's traffic data"),
    (
        "mailto:press@transport.example.org",
        "mailto:press@transport.example.org",
        "the press office",
    ),
    # a fragment resolves against the base too, as browsers do, and keeps the fragment
    ("#timeline", "https://news.example.com/2017/08/#timeline", "timeline below"),
    (
        "https://chamber.example.net/survey?year=2017&q=bridge",
        "https://chamber.example.net/survey?year=2017&q=bridge",
        "chamber of commerce",
    ),
    (
        "//archive.example.org/bridge/1961",
        "https://archive.example.org/bridge/1961",
        "original plans from 1961",
    ),
    # the same source cited twice is two body links: the caller decides what to skip
    (
        "https://www.transport.example.org/reports/2017/bridge.pdf",
        "https://www.transport.example.org/reports/2017/bridge.pdf",
        "transport authority",
    ),
    # a link-dense reference list, which trafilatura alone would drop
    (
        "https://www.transport.example.org/notices/closure-2017",
        "https://www.transport.example.org/notices/closure-2017",
        "Transport authority: closure notice, May 2017",
    ),
    (
        "https://council.example.gov/minutes/2017-06-12",
        "https://council.example.gov/minutes/2017-06-12",
        "City council minutes, 12 June 2017",
    ),
)

BOILERPLATE_HREFS = (
    "/",
    "/world/",
    "/business/",
    "/sport/",
    "/local/",
    "/authors/jane-doe",
    "/authors/john-roe",
    "https://twitter.com/intent/tweet?url=https%3A%2F%2Fnews.example.com%2F",
    "https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fnews.example.com%2F",
    "/tags/infrastructure",
    "/tags/transport",
    "/2017/08/council-budget",
    "/2017/08/summer-festival",
    "/2016/02/bridge-inspection",
    "https://spam.example/",
    "/about",
    "/privacy",
)

EXPECTED_REQUISITES = (
    ("https://news.example.com/static/site.css", "stylesheet"),
    ("https://news.example.com/favicon.ico", "icon"),
    ("https://news.example.com/touch-icon.png", "icon"),
    ("https://news.example.com/fonts/body.woff2", "font"),
    ("https://news.example.com/static/app.js", "script"),
    ("https://news.example.com/static/print.css", "stylesheet"),  # @import in <style>
    ("https://news.example.com/2017/08/img/paper.png", "image"),  # url() in <style>
    ("https://news.example.com/static/logo.svg", "image"),
    ("https://news.example.com/2017/08/images/bridge.jpg", "image"),
    ("https://news.example.com/2017/08/images/bridge-480.jpg", "image"),  # srcset
    ("https://news.example.com/2017/08/images/bridge-960.jpg", "image"),  # srcset
    ("https://news.example.com/2017/08/images/divider.png", "image"),  # style="...url()"
    ("https://news.example.com/static/badge.webp", "image"),  # <source srcset>
    ("https://news.example.com/static/badge@2x.webp", "image"),
    ("https://news.example.com/static/badge.png", "image"),
    ("https://news.example.com/media/poster.jpg", "image"),
    ("https://news.example.com/media/clip.mp4", "media"),
    ("https://news.example.com/static/submit.png", "image"),  # <input type=image>
)


@pytest.fixture(scope="module")
def news() -> ArticleExtraction:
    return extract_article(NEWS_HTML.encode("utf-8"), PAGE_URL, "utf-8")


@pytest.fixture(params=["trafilatura", "heuristic"])
def finder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with trafilatura and once with the fallback heuristic alone."""
    if request.param == "heuristic":
        monkeypatch.setattr(extract_links, "_run_trafilatura", lambda *args: None)
    return str(request.param)


def link_triples(links: tuple[BodyLink, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple((link.href, link.url, link.text) for link in links)


# --------------------------------------------------------------------------------------------
# body links
# --------------------------------------------------------------------------------------------


def test_body_links_are_exactly_the_links_in_the_article_body(news: ArticleExtraction) -> None:
    assert link_triples(news.body_links) == EXPECTED_BODY_LINKS


def test_boilerplate_links_are_not_body_links(news: ArticleExtraction) -> None:
    hrefs = {link.href for link in news.body_links}
    assert hrefs.isdisjoint(BOILERPLATE_HREFS)


def test_each_context_is_a_short_snippet_around_its_anchor(news: ArticleExtraction) -> None:
    for link in news.body_links:
        assert link.text in link.context
        assert len(link.context) <= 240
    by_text = {link.text: link.context for link in news.body_links}
    # a long paragraph is cut down to the sentence holding the link
    assert by_text["chamber of commerce"] == (
        "A survey by the chamber of commerce found that most shops lost revenue during the "
        "works, though the effect was smaller than feared."
    )
    # a short paragraph is kept whole
    assert by_text["the press office"].startswith("According to the city's traffic data")
    assert by_text["the press office"].endswith("See the timeline below for details.")


def test_a_long_link_inside_a_long_paragraph_gets_a_window() -> None:
    filler = " ".join(f"word{i}" for i in range(200))
    html = (
        "<html><body><article><p>"
        f"{filler} <a href='/x'>the anchor text</a> {filler}"
        "</p></article></body></html>"
    )
    (link,) = extract_article(html.encode(), "https://example.com/").body_links
    assert link.text == "the anchor text"
    assert "the anchor text" in link.context
    assert len(link.context) <= 240
    assert link.context.startswith("word") and link.context.endswith(tuple("0123456789"))


def test_heuristic_fallback_finds_the_same_links(monkeypatch: pytest.MonkeyPatch) -> None:
    # as when trafilatura finds nothing or the page is too big for it
    monkeypatch.setattr(extract_links, "_run_trafilatura", lambda *args: None)
    result = extract_article(NEWS_HTML.encode(), PAGE_URL)
    assert link_triples(result.body_links) == EXPECTED_BODY_LINKS
    assert "Engineers replaced 240 steel cables" in result.text
    assert "Most read" not in result.text and "Great news" not in result.text


def test_links_are_matched_by_text_when_the_extractor_drops_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = extract_links._run_trafilatura

    def paragraphs_only(*args: object) -> object:
        # what trafilatura returns when it settles on justext: plain <p> text, no <ref>
        document = run(*args)  # type: ignore[arg-type]
        assert document is not None
        body = etree.Element("body")
        for paragraph in document.body.iter("p"):
            etree.SubElement(body, "p").text = " ".join("".join(paragraph.itertext()).split())
        document.body = body
        return document

    monkeypatch.setattr(extract_links, "_run_trafilatura", paragraphs_only)
    result = extract_article(NEWS_HTML.encode(), PAGE_URL)
    assert link_triples(result.body_links) == EXPECTED_BODY_LINKS


def test_hrefs_are_restored_after_extraction(news: ArticleExtraction) -> None:
    assert all("provenance.invalid" not in link.href for link in news.body_links)
    assert all("provenance.invalid" not in link.url for link in news.body_links)


def test_wordpress_article_keeps_sources_and_drops_related_posts(finder: str) -> None:
    html = """<html lang="de"><head><title>Studie</title></head>
    <body class="single has-sidebar"><div id="page" class="site">
    <header id="masthead"><nav><a href="/kategorie/umwelt/">Umwelt</a></nav></header>
    <main id="main"><article class="post type-post category-umwelt tag-mikroplastik">
    <header class="entry-header"><h1>Studie zu Mikroplastik</h1>
      <span class="byline">von <a href="/author/erika/">Erika Mustermann</a></span></header>
    <div class="entry-content">
    <p>Eine neue <a href="https://doi.org/10.1000/xyz123">Studie des Meeresinstituts</a> zeigt,
    dass sich Mikroplastik in der Tiefsee stärker anreichert als bisher angenommen. Die
    Forschenden untersuchten dafür mehr als 300 Sedimentproben aus dem Nordatlantik.</p>
    <p>Bereits 2019 hatte das <a href="https://uba.example/plastik">Umweltbundesamt</a> vor den
    Folgen gewarnt. Die neuen Daten bestätigen diese Warnung, heißt es in der Mitteilung.</p>
    <h2>Quellen</h2>
    <ul><li><a href="https://doi.org/10.1000/xyz123">Meyer et al. (2021), Nature Geoscience</a></li>
    <li><a href="https://data.example.org/sediments.csv">Datensatz der Sedimentproben</a></li></ul>
    <div class="sharedaddy sd-sharing-enabled"><ul>
      <li><a href="https://twitter.com/share?url=x">Twitter</a></li></ul></div>
    <div id="jp-relatedposts" class="jp-relatedposts"><h3>Ähnliche Beiträge</h3>
      <a href="/2020/11/plastik-in-fluessen/">Plastik in Flüssen</a></div>
    </div>
    <footer class="entry-footer"><a href="/tag/ozean/" rel="tag">Ozean</a></footer>
    </article>
    <div id="comments" class="comments-area"><p>Siehe <a href="https://blog.example/">hier</a>
    für meinen eigenen, sehr langen Kommentar zu dieser Studie.</p></div></main>
    <aside class="widget-area"><a href="/2021/02/28/vorher/">Vorheriger Beitrag</a></aside>
    </div></body></html>"""
    result = extract_article(html.encode(), "https://blog.example.de/2021/03/02/studie/")
    assert [link.href for link in result.body_links] == [
        "https://doi.org/10.1000/xyz123",
        "https://uba.example/plastik",
        "https://doi.org/10.1000/xyz123",
        "https://data.example.org/sediments.csv",
    ]
    assert result.metadata.language == "de"


def test_an_article_header_keeps_its_standfirst_but_not_its_byline(finder: str) -> None:
    html = b"""<html><body><header class="site"><a href="/">Home</a></header><article>
    <header><h1>Council backs the bridge</h1>
      <p class="standfirst">The council <a href="https://council.example/vote">voted on
      Thursday</a> to approve the new bridge.</p>
      <p class="byline">By <a href="/author/x">A. Writer</a></p></header>
    <p>The first paragraph of the story is long enough to count as content for any
    extractor, and it goes on for a while about the bridge and its many critics.</p>
    <p>The second one cites a <a href="https://source.example/a">source document</a> and
    adds a few more words so that it, too, reads like part of a real story.</p>
    </article></body></html>"""
    result = extract_article(html, "https://example.com/story")
    assert [link.href for link in result.body_links] == [
        "https://council.example/vote",
        "https://source.example/a",
    ]


def test_component_names_and_box_headings_mark_boilerplate(finder: str) -> None:
    # a React-style page: components named in data-* attributes, a "Related topics" box
    # inside the article that only its heading gives away
    html = """<html lang="en-GB"><head><title>Storm hits coast</title></head><body>
    <header data-testid="header"><nav><a href="/">Home</a> <a href="/news">News</a></nav></header>
    <main id="main-content"><article>
    <header data-component="headline-block"><h1>Storm hits coast</h1></header>
    <div data-component="byline-block"><a href="/news/correspondents/jo">By Jo Reporter</a></div>
    <div data-component="text-block"><p>A powerful storm has battered the coast, with winds of
    up to 90mph recorded overnight, <a href="https://metoffice.example/warnings">the Met Office
    said</a>. Thousands of homes lost power.</p></div>
    <div data-component="text-block"><p>Emergency services were called to more than 200
    incidents. The <a href="https://environment-agency.example/flood">Environment Agency</a>
    issued 30 flood warnings across the region.</p></div>
    <div data-component="links-block"><h2>Related topics</h2><ul>
      <li><a href="/news/topics/weather">Weather</a></li>
      <li><a href="/news/topics/floods">Floods</a></li></ul></div>
    <div data-component="text-block"><p>Residents were told to avoid travelling unless
    absolutely necessary, while schools remained closed on Friday morning.</p></div>
    <section data-component="related-internet-links"><h2>More on this story</h2>
      <a href="/news/uk-123">Storm warning issued</a></section>
    </article>
    <section data-testid="most-read"><h2>Most read</h2><a href="/news/a">A story</a></section>
    </main></body></html>"""
    result = extract_article(html.encode(), "https://www.bbc.example/news/uk-1")
    assert [link.href for link in result.body_links] == [
        "https://metoffice.example/warnings",
        "https://environment-agency.example/flood",
    ]


# --------------------------------------------------------------------------------------------
# metadata and text
# --------------------------------------------------------------------------------------------


def test_metadata(news: ArticleExtraction) -> None:
    assert news.metadata == PageMetadata(
        title="Harbour bridge reopens after repairs",
        authors=("Jane Doe", "John Roe"),
        published="2017-08-14T09:30:00Z",
        canonical_url="https://news.example.com/2017/08/harbour-bridge-reopens",
        language="en-GB",
        site_name="The Daily Example",
        description="The harbour bridge reopened on Monday after three months of repairs.",
    )


def test_metadata_from_meta_tags_alone() -> None:
    html = """<html><head>
    <meta http-equiv="Content-Language" content="pt_br">
    <meta property="og:title" content="Ponte reaberta">
    <meta property="og:site_name" content="Diário Exemplo">
    <meta property="og:url" content="https://diario.example/ponte">
    <meta name="author" content="Ana Souza; Bruno Lima">
    <meta property="article:published_time" content="2020-02-29T23:05:00-03:00">
    </head><body><p>Texto curto.</p></body></html>"""
    metadata = extract_article(html.encode(), "https://diario.example/ponte?x=1").metadata
    assert metadata.title == "Ponte reaberta"
    assert metadata.site_name == "Diário Exemplo"
    assert metadata.canonical_url == "https://diario.example/ponte"
    assert metadata.language == "pt-BR"
    assert metadata.published == "2020-02-29T23:05:00-03:00"
    assert metadata.authors == ("Ana Souza", "Bruno Lima")


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("2017-08-14", "2017-08-14"),
        ("2017-08-14T09:30:00Z", "2017-08-14T09:30:00Z"),
        ("2017-08-14T09:30:00.123+00:00", "2017-08-14T09:30:00Z"),
        ("2017-08-14 09:30+0200", "2017-08-14T09:30:00+02:00"),
        ("2017-08-14T09:30:00", "2017-08-14"),  # no offset: only the day is certain
        ("Mon, 14 Aug 2017 09:30:00 +0000", "2017-08-14T09:30:00Z"),
    ],
)
def test_publication_dates_are_normalised(declared: str, expected: str) -> None:
    html = (
        f'<html><head><meta property="article:published_time" content="{declared}"></head>'
        "<body><p>Nothing else here.</p></body></html>"
    )
    assert extract_article(html.encode(), "https://example.com/").metadata.published == expected


@pytest.mark.parametrize("declared", ["2017-02-30", "2017-08-14T25:00Z", "yesterday", ""])
def test_impossible_dates_are_rejected(declared: str) -> None:
    assert extract_metadata._normalise_date(declared) is None


def test_text_is_the_article_in_paragraphs(news: ArticleExtraction) -> None:
    paragraphs = news.text.split("\n\n")
    assert "Timeline" in paragraphs
    assert any(p.startswith("The harbour bridge reopened on Monday") for p in paragraphs)
    assert "Engineers replaced 240 steel cables and resurfaced the entire deck." in news.text
    for boilerplate in ("Share on Twitter", "Most read", "Great news", "About us", "Sport"):
        assert boilerplate not in news.text


def test_a_page_without_an_article_still_yields_text() -> None:
    html = b"<html><body><nav><a href='/a'>Alpha</a> <a href='/b'>Beta</a></nav>"
    html += b"<div>Just a line of text.</div></body></html>"
    result = extract_article(html, "https://example.com/")
    assert "Just a line of text." in result.text
    assert result.body_links == ()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x01\x02\xff\xfe\xfd" * 1000,
        bytes(range(256)) * 40,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj",
        b'{"not": ["html"]}',
        b"<html><frameset><frame src='a.html'></frameset></html>",
        b"<?xml version='1.0' encoding='utf-8'?><html><body><p>x</p></body></html>",
        b"<p>a\x00b <a href='q'>q\x01</a></p>",
        b"<div>" * 3000 + b"<p>deep <a href='d'>link</a></p>" + b"</div>" * 3000,
        b"<a href='http://[::1'>broken ipv6</a><img src='http://[bad'>",
    ],
)
def test_garbage_never_raises(body: bytes) -> None:
    result = extract_article(body, "https://example.com/dir/page", "no-such-charset")
    assert isinstance(result.text, str)


def test_control_characters_in_an_href_are_dropped() -> None:
    html = (
        b"<html><body><article><p>A paragraph long enough to count as an article, with a "
        b"<a href='/q\x01x'>strange \x02link</a> in it.</p></article></body></html>"
    )
    (link,) = extract_article(html, "https://example.com/").body_links
    assert (link.href, link.url, link.text) == ("/qx", "https://example.com/qx", "strange link")


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    extract_article(body, "https://example.com/")


def test_libraries_stay_quiet(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        extract_article(b"<html><body></body></html>", "https://example.com/")
        extract_article(b"<html><body><nav><a href='/'>x</a></nav></body></html>", "x")
        extract_article(NEWS_HTML.encode(), PAGE_URL)
    noisy = ("trafilatura", "htmldate", "justext", "courlan", "readability")
    assert [r for r in caplog.records if r.name.startswith(noisy)] == []
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------------------------
# requisites and CSS
# --------------------------------------------------------------------------------------------


def test_requisites(news: ArticleExtraction) -> None:
    assert tuple((r.url, r.kind) for r in news.requisites) == EXPECTED_REQUISITES
    assert {r.kind for r in news.requisites} <= set(extract.REQUISITE_KINDS)


def test_find_requisites_matches_extract_article(news: ArticleExtraction) -> None:
    assert find_requisites(NEWS_HTML, PAGE_URL) == news.requisites


def test_requisites_skip_what_a_browser_would_not_fetch() -> None:
    html = """<html><head>
    <link rel="stylesheet" href="  ">
    <link rel="icon" href="data:image/png;base64,AAAA">
    <link rel="modulepreload" href="/m.js">
    <link rel="preload" as="image" href="/hero.jpg" imagesrcset="/hero-2x.jpg 2x">
    <link rel="manifest" href="/site.webmanifest">
    <link rel="prefetch" href="/next-page">
    </head><body>
    <img src="javascript:alert(1)"><img src="about:blank"><img src="blob:https://x/1">
    <img src="#"><img data-src="/lazy.jpg" src="/placeholder.gif">
    <svg><use href="#icon"></use></svg>
    <template><script src="/inert.js"></script></template>
    <audio src="/a.mp3"><track src="/a.vtt"></audio>
    <table background="/old-school.gif"><tr><td>x</td></tr></table>
    <img src="/dup.png"><img src="/dup.png#again"><img src=" /dup.png ">
    </body></html>"""
    found = find_requisites(html, "https://example.com/page")
    assert found == (
        Requisite("https://example.com/m.js", "script"),
        Requisite("https://example.com/hero.jpg", "image"),
        Requisite("https://example.com/hero-2x.jpg", "image"),
        Requisite("https://example.com/site.webmanifest", "other"),
        Requisite("https://example.com/placeholder.gif", "image"),
        Requisite("https://example.com/lazy.jpg", "image"),
        Requisite("https://example.com/a.mp3", "media"),
        Requisite("https://example.com/a.vtt", "media"),
        Requisite("https://example.com/old-school.gif", "image"),
        Requisite("https://example.com/dup.png", "image"),
    )


def test_every_srcset_candidate_is_found() -> None:
    html = (
        '<img srcset="a.jpg, b.jpg 2x,c.jpg 100w , '
        'https://cdn.example/w_100,h_50/d.jpg 3x, e.jpg (bogus, descriptor) 4x,f.jpg">'
    )
    found = [r.url for r in find_requisites(html, "https://example.com/x/")]
    assert found == [
        "https://example.com/x/a.jpg",
        "https://example.com/x/b.jpg",
        "https://example.com/x/c.jpg",
        "https://cdn.example/w_100,h_50/d.jpg",  # commas inside a URL are part of it
        "https://example.com/x/e.jpg",
        "https://example.com/x/f.jpg",
    ]


def test_css_references() -> None:
    css = """@charset "utf-8";
    @import "a.css";
    @import url(b.css) screen;
    @import url("c.css");
    /* url(commented-out.png) */
    .x { content: "url(not-a-url.png)";
         background: url(data:image/png;base64,AAA), url( "d.png" ); }
    .y { cursor: url(e.cur), auto; }
    @media print { .z { background-image: image-set("f.png" 1x, url(g.png) 2x); } }
    @font-face { src: url(../fonts/h.woff2) format("woff2"), url("h.woff2"); }
    .w { background: url(https://cdn.example/i.png#sprite) }
    .v { mask: url(#clip) }
    """
    assert css_references(css, "https://s.example/css/main.css") == (
        "https://s.example/css/a.css",
        "https://s.example/css/b.css",
        "https://s.example/css/c.css",
        "https://s.example/css/d.png",
        "https://s.example/css/e.cur",
        "https://s.example/css/f.png",
        "https://s.example/css/g.png",
        "https://s.example/fonts/h.woff2",
        "https://s.example/css/h.woff2",
        "https://cdn.example/i.png",
    )


def test_css_references_from_bytes_honour_charset() -> None:
    css = '@charset "windows-1252";\n.x { background: url("caf\xe9.png") }'.encode("cp1252")
    assert css_references(css, "https://s.example/") == ("https://s.example/café.png",)


def test_css_kinds_in_inline_styles() -> None:
    html = """<style>@font-face { src: url(/f) } .a { background: url(/bg) }
    @import "/more.css";</style><div style="background: url('/inline.webp')"></div>"""
    kinds = {r.url.rsplit("/", 1)[1]: r.kind for r in find_requisites(html, "https://e.x/")}
    assert kinds == {"f": "font", "bg": "image", "more.css": "stylesheet", "inline.webp": "image"}


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------

CP1252_TEXT = "<p>Caf\u00e9 \u2013 \u201cquoted\u201d and 5\u20ac, na\u00efve Stra\u00dfe.</p>"


def test_decode_by_http_charset() -> None:
    assert decode_html(CP1252_TEXT.encode("cp1252"), "windows-1252") == CP1252_TEXT


def test_decode_accepts_a_whole_content_type() -> None:
    body = CP1252_TEXT.encode("cp1252")
    assert decode_html(body, 'text/html; charset="Windows-1252"') == CP1252_TEXT


def test_decode_by_meta_charset_only() -> None:
    html = '<html><head><meta charset="windows-1252"></head><body>' + CP1252_TEXT
    assert decode_html(html.encode("cp1252"), None) == html


def test_decode_by_meta_http_equiv() -> None:
    html = (
        "<!-- <meta charset=koi8-r> is commented out -->"
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">' + CP1252_TEXT
    )
    assert decode_html(html.encode("cp1252"), None) == html


def test_bom_beats_a_wrong_http_charset() -> None:
    body = b"\xef\xbb\xbf" + CP1252_TEXT.encode("utf-8")
    assert decode_html(body, "windows-1252") == CP1252_TEXT
    body = b"\xff\xfe" + CP1252_TEXT.encode("utf-16-le")
    assert decode_html(body, "iso-8859-1") == CP1252_TEXT


def test_http_charset_beats_meta() -> None:
    html = '<meta charset="windows-1252">' + CP1252_TEXT
    assert decode_html(html.encode("utf-8"), "utf-8") == html


def test_unknown_http_charset_falls_back_to_meta() -> None:
    html = '<meta charset="windows-1252">' + CP1252_TEXT
    assert decode_html(html.encode("cp1252"), "x-no-such-charset") == html
    # utf-7 is a Python codec but no web encoding
    assert decode_html(html.encode("cp1252"), "utf-7") == html


def test_whatwg_label_aliases() -> None:
    # latin1 and ascii mean windows-1252 on the web: 0x80 is the euro sign
    assert decode_html(b"5\x80", "iso-8859-1") == "5\u20ac"
    assert decode_html(b"5\x80", "US-ASCII") == "5\u20ac"
    # bytes windows-1252 leaves undefined map to the C1 control of the same number
    assert decode_html(b"a\x81b", "windows-1252") == "a\x81b"
    # a page declaring utf-16 in a <meta> cannot be utf-16: it is read as utf-8
    declared_utf16 = '<meta charset="utf-16">\u00e9'
    assert decode_html(declared_utf16.encode(), None) == declared_utf16
    assert decode_html("\u00e4".encode("gb18030"), "gbk") == "\u00e4"


def test_undeclared_utf8_and_legacy_text_are_detected() -> None:
    text = (
        "<html><body><p>Le caf\u00e9 \u00e9tait d\u00e9j\u00e0 tr\u00e8s chaud \u00e0 "
        "l\u2019heure o\u00f9 nous sommes arriv\u00e9s. \u00ab Voil\u00e0 \u00bb, a-t-il dit, "
        "\u00ab \u00e7a co\u00fbte 5 \u20ac \u00bb.</p></body></html>"
    )
    assert decode_html(text.encode("utf-8"), None) == text
    assert decode_html(text.encode("cp1252"), None) == text
    russian = "<p>\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a "
    russian = (russian + "\u0434\u0435\u043b\u0430? ") * 5
    assert decode_html(russian.encode("cp1251"), None) == russian


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from([None, "utf-8", "utf-16", "windows-1252", "shift_jis", "base64", "bogus"]),
)
def test_decode_never_raises(body: bytes, declared: str | None) -> None:
    assert isinstance(decode_html(body, declared), str)


# --------------------------------------------------------------------------------------------
# large pages stay linear
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_page_with_100000_links_finishes() -> None:
    count = 100_000
    paragraphs = "".join(
        f"<p>Paragraph {i} cites <a href='/source/{i}'>source {i}</a> for its claim.</p>"
        for i in range(count)
    )
    html = (
        "<html><head><title>Many links</title></head><body>"
        "<nav><a href='/'>Home</a></nav>"
        f"<article>{paragraphs}</article></body></html>"
    )
    result = extract_article(html.encode(), "https://example.com/")
    assert len(result.body_links) == count
    assert result.body_links[-1].url == f"https://example.com/source/{count - 1}"
    assert result.body_links[-1].context == (
        f"Paragraph {count - 1} cites source {count - 1} for its claim."
    )


@pytest.mark.slow
def test_a_10_mb_single_line_page_finishes() -> None:
    blocks = "".join(
        f"<div class='c{i % 7}'><p>Some text number {i} goes here with words.</p>"
        f"<span style='background:url(/i/{i % 50}.png)'>x</span></div>"
        for i in range(90_000)
    )
    html = f"<html><head><title>Big</title></head><body>{blocks}</body></html>".encode()
    assert len(html) > 10_000_000 and b"\n" not in html
    result = extract_article(html, "https://example.com/")
    assert result.metadata.title == "Big"
    assert len(result.requisites) == 50
    assert "Some text number 89999 goes here with words." in result.text


# --------------------------------------------------------------------------------------------
# the bundled sample site
# --------------------------------------------------------------------------------------------


def fetch(url: str) -> tuple[bytes, str | None]:
    """GET ``url`` from the local sample site; return the decoded body and HTTP charset."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body, response.headers.get_content_charset()


def test_sample_site_article(sample_site: SampleSite, finder: str) -> None:
    body, charset = fetch(sample_site.article_url)
    result = extract_article(body, sample_site.article_url, charset)

    assert tuple(link.href for link in result.body_links) == demo.body_hrefs(sample_site.base_url)
    fetchable = [
        urlsplit(link.url).path for link in result.body_links if link.url.startswith("http")
    ]
    unique = tuple(dict.fromkeys(path for path in fetchable if path != demo.ARTICLE_PATH))
    assert unique == demo.EXPECTED_BODY_LINK_PATHS
    assert all(link.text in link.context for link in result.body_links)

    assert result.metadata.title == demo.ARTICLE_TITLE
    assert result.metadata.authors == demo.ARTICLE_AUTHORS
    assert result.metadata.published == demo.ARTICLE_PUBLISHED
    assert result.metadata.language == demo.ARTICLE_LANGUAGE
    assert result.metadata.site_name == demo.SITE_NAME
    assert result.metadata.description == demo.ARTICLE_DESCRIPTION
    assert result.metadata.canonical_url == sample_site.article_url
    for snippet in demo.ARTICLE_TEXT_SNIPPETS:
        assert snippet in result.text

    paths = [urlsplit(requisite.url).path for requisite in result.requisites]
    assert paths == [*demo.HTML_REQUISITE_PATHS, *demo.SRCSET_PATHS]


def test_sample_site_stylesheets(sample_site: SampleSite) -> None:
    found: list[str] = []
    for path in ("/static/css/site.css", "/static/css/print.css"):
        css, _ = fetch(sample_site.url(path))
        found += [urlsplit(url).path for url in css_references(css, sample_site.url(path))]
    assert found == list(demo.CSS_REQUISITE_PATHS)


def test_sample_site_legacy_page_is_decoded_by_its_header(sample_site: SampleSite) -> None:
    body, charset = fetch(sample_site.url(demo.LEGACY_PATH))
    assert charset == demo.LEGACY_CHARSET
    result = extract_article(body, sample_site.url(demo.LEGACY_PATH), charset)
    for character in demo.LEGACY_SPECIAL_CHARACTERS:
        assert character in result.text


def _region_by_definition(root: Any, anchors: list[Any], chosen: set[int],
                          body: Any) -> Any:
    """The content region as defined: the common ancestor of the kept links and of every
    page paragraph whose text is a block trafilatura kept, with at least two of them."""
    kept = {" ".join(etree.tostring(element, method="text", encoding="unicode",
                                    with_tail=False).split())
            for element in body.iter()
            if element.tag in ("body", "code", "div", "head", "item", "list", "p", "quote",
                               "row", "table")} - {""}
    members = [anchors[index] for index in chosen]
    members += [p for p in root.iter("p")
                if " ".join(etree.tostring(p, method="text", encoding="unicode",
                                           with_tail=False).split()) in kept]
    if len(members) < 2:
        return None
    ancestors = [list(member.iterancestors()) for member in members]
    for candidate in [members[0], *ancestors[0]]:
        if all(candidate is member or candidate in chain
               for member, chain in zip(members, ancestors, strict=True)):
            return None if candidate.tag in ("html", "body") else candidate
    return None


def test_the_content_region_is_found_as_defined_without_rendering_every_paragraph() -> None:
    # _content_region renders only the paragraphs outside the kept links' common ancestor,
    # and of those only the ones whose text lies in the extraction: the same region as
    # comparing every paragraph of the page, on pages where paragraphs outside the story
    # repeat its text (a pull quote, a teaser), one paragraph alone holds the links, or none.
    rng = random.Random(11)
    story = ["The agency published the figures on Monday after a long delay.",
             "Critics said the numbers did not match the earlier report at all.",
             "A spokesperson declined to comment on the discrepancy this week.",
             "Independent analysts reviewed the data and found several gaps in it."]
    outside = ['<p>{quote}</p>', '<p>Copyright the Example Gazette.</p>',
               '<div class="teaser"><p>{quote}</p></div>', '<p></p>']
    lifted = same = 0
    for page_number in range(120):
        paragraphs, texts = [], []
        for n in range(rng.randint(1, 8)):
            texts.append(f"{rng.choice(story)} Paragraph {n} of the story.")
            link = (f' See <a href="/source/{page_number}-{n}">the report {n}</a>.'
                    if rng.random() < 0.6 else "")
            paragraphs.append(f"<p>{texts[-1]}{link}</p>")
        if rng.random() < 0.3:  # every link in one paragraph
            paragraphs.append('<p>Sources: <a href="/a">one</a> and <a href="/b">two</a>.</p>')
        # a paragraph outside the story repeating one of it: the same as a kept block when
        # that one holds no link
        before = rng.choice(outside).format(quote=rng.choice(texts))
        after = rng.choice(outside).format(quote=rng.choice([*texts, rng.choice(story)]))
        html = (f"<html><head><title>Page {page_number}</title></head><body>"
                f"<header><a href='/home'>Home</a></header><aside>{before}</aside>"
                f"<main><article><h1>Story {page_number}</h1>{''.join(paragraphs)}</article>"
                f"<div class='more'>{after}</div></main><footer><p>About us</p></footer>"
                f"</body></html>")
        root = extract_parsing._parse_document(html)
        anchors = [anchor for anchor in root.iter("a") if anchor.get("href") is not None]
        total = extract_links._count_elements(root)
        document = extract_links._run_trafilatura(
            root, anchors, extract_links._fits_trafilatura(root, total), None)
        if document is None:
            continue
        chosen = extract_links._chosen_by_markers(extract_links._links_in(document.body))
        expected = _region_by_definition(root, anchors, chosen, document.body)
        assert extract_links._content_region(root, anchors, chosen, document.body) is expected
        links = [anchors[index] for index in chosen]
        if expected is not None and len(links) >= 2:
            start = extract_links._lowest_common_ancestor(links)
            lifted += start is not expected
            same += start is expected
    # both ways were taken: paragraphs outside the links' ancestor lifted the region on some
    # pages and not on others
    assert lifted >= 5 and same >= 20, (lifted, same)
