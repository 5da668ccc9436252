"""The bundled sample site serves what its published facts promise, byte for byte."""

from __future__ import annotations

import gzip
import http.client
import importlib.resources
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from provenance.demo import site as demo
from provenance.demo.site import SampleSite, serve_sample_site

SLOW_DELAY = 0.2


@pytest.fixture
def site() -> Iterator[SampleSite]:
    with serve_sample_site(slow_delay=SLOW_DELAY) as running:
        yield running
        # Handler failures are recorded rather than printed; none may happen.
        assert running.errors() == []


# --------------------------------------------------------------------------------------------
# helpers: raw sockets for wire-level checks, http.client for everything else (never a proxy)
# --------------------------------------------------------------------------------------------


def raw_exchange(
    site: SampleSite, path: str, *, method: str = "GET", version: str = "HTTP/1.1"
) -> bytes:
    request = (
        f"{method} {path} {version}\r\nHost: {site.host}:{site.port}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection((site.host, site.port), timeout=10) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def split_response(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in header_lines)]
    return status_line, headers, body


def dechunk(body: bytes) -> tuple[bytes, list[bytes]]:
    """Strictly undo chunked framing; return the payload and the raw size tokens."""
    payload = bytearray()
    sizes: list[bytes] = []
    while True:
        size_token, _, body = body.partition(b"\r\n")
        sizes.append(size_token)
        size = int(size_token, 16)
        if size == 0:
            assert body == b"\r\n", "no trailers, then the final CRLF, then nothing"
            return bytes(payload), sizes
        payload += body[:size]
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def get(site: SampleSite, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


class LinkCollector(HTMLParser):
    """Every URL-bearing attribute, noting whether it sits inside <article>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth_in_article = 0
        self.body_hrefs: list[str] = []
        self.other_hrefs: list[str] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self.depth_in_article += 1
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "href" in values:
            target = self.body_hrefs if self.depth_in_article else self.other_hrefs
            target.append(values["href"])
        for name in ("href", "src", "action", "poster"):
            if name in values:
                self.urls.append((tag, name, values[name]))
        if "srcset" in values:
            for candidate in values["srcset"].split(","):
                self.urls.append((tag, "srcset", candidate.split()[0]))
        for url in re.findall(r"url\(['\"]?([^'\")]+)", values.get("style", "")):
            self.urls.append((tag, "style", url))
        if tag == "meta" and values.get("property") == "og:url":
            self.urls.append((tag, "content", values["content"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.depth_in_article -= 1


def collect(html_text: str) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(html_text)
    collector.close()
    return collector


def css_urls(css: str) -> list[str]:
    """url(...) and @import targets, in order of appearance."""
    pattern = r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)|url\(\s*['"]?([^'")]+)"""
    found = []
    for match in re.finditer(pattern, css):
        found.append(match.group(1) or match.group(2))
    return found


def path_of(base: str, reference: str) -> str:
    return urllib.parse.urlsplit(urllib.parse.urljoin(base, reference)).path


def png_is_valid(data: bytes) -> bool:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    position, kinds = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + chunk) & 0xFFFFFFFF != crc:
            return False
        kinds.append(kind)
        position += 12 + length
    return kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds


# --------------------------------------------------------------------------------------------
# the article on the wire
# --------------------------------------------------------------------------------------------


def test_article_is_sent_gzip_in_explicit_chunks(site: SampleSite) -> None:
    raw = raw_exchange(site, demo.ARTICLE_PATH)
    status_line, headers, body = split_response(raw)

    assert status_line == "HTTP/1.1 200 OK"
    names = [name for name, _ in headers]
    assert names == ["Date", *demo.ARTICLE_RESPONSE_HEADER_NAMES, "Connection"]
    values = dict(headers)
    assert values["Content-Type"] == "text/html; charset=utf-8"
    assert values["Transfer-Encoding"] == "chunked"
    assert values["Content-Encoding"] == "gzip"
    assert values["x-cache"] == "MISS"  # lower case on the wire, kept as is
    assert values["Connection"] == "close"

    payload, sizes = dechunk(body)
    assert len(sizes) >= 4 and sizes[-1] == b"0"
    assert all(re.fullmatch(rb"[0-9a-f]+", size) for size in sizes)
    html_text = gzip.decompress(payload).decode("utf-8")
    assert f"<title>{demo.ARTICLE_HTML_TITLE}</title>" in html_text
    assert html_text == demo.article_html(site.base_url)
    assert body == demo.article_wire_body(site.base_url)


def test_server_logs_the_exact_bytes_it_sent(site: SampleSite) -> None:
    raw = raw_exchange(site, demo.ARTICLE_PATH)
    (sent,) = site.responses()
    assert (sent.method, sent.target, sent.status) == ("GET", demo.ARTICLE_PATH, 200)
    assert sent.wire == raw


def test_http10_clients_get_the_article_unchunked(site: SampleSite) -> None:
    raw = raw_exchange(site, demo.ARTICLE_PATH, version="HTTP/1.0")
    _, headers, body = split_response(raw)
    values = dict(headers)
    assert "Transfer-Encoding" not in values
    assert int(values["Content-Length"]) == len(body)
    assert gzip.decompress(body).decode("utf-8") == demo.article_html(site.base_url)


def test_head_sends_the_same_headers_and_no_body(site: SampleSite) -> None:
    for path in (demo.ARTICLE_PATH, demo.PDF_PATH):
        get_status, get_headers, get_body = split_response(raw_exchange(site, path))
        head_status, head_headers, head_body = split_response(
            raw_exchange(site, path, method="HEAD")
        )
        assert head_status == get_status
        assert head_body == b""
        strip_date = [header for header in head_headers if header[0] != "Date"]
        assert strip_date == [header for header in get_headers if header[0] != "Date"]
        assert get_body


def test_article_metadata(site: SampleSite) -> None:
    html_text = demo.article_html(site.base_url)
    assert '<html lang="en">' in html_text
    assert f'<link rel="canonical" href="{site.article_url}">' in html_text
    authors = ", ".join(demo.ARTICLE_AUTHORS)
    assert f'<meta name="author" content="{authors}">' in html_text
    assert (
        f'<meta property="article:published_time" content="{demo.ARTICLE_PUBLISHED}">' in html_text
    )
    assert f'<meta property="og:site_name" content="{demo.SITE_NAME}">' in html_text
    assert f'<meta property="og:title" content="{demo.ARTICLE_TITLE}">' in html_text
    assert f'<meta name="description" content="{demo.ARTICLE_DESCRIPTION}">' in html_text

    ld_text = re.search(r'<script type="application/ld\+json">(.*?)</script>', html_text, re.S)
    assert ld_text is not None
    ld = json.loads(ld_text.group(1))
    assert ld["@type"] == "NewsArticle"
    assert ld["headline"] == demo.ARTICLE_TITLE
    assert ld["datePublished"] == demo.ARTICLE_PUBLISHED
    assert tuple(author["name"] for author in ld["author"]) == demo.ARTICLE_AUTHORS

    words = re.sub(
        r"<[^>]+>", " ", html_text.split('<div class="story-body">')[1].split("</div>")[0]
    ).split()
    assert len(words) >= 400


# --------------------------------------------------------------------------------------------
# links: the published facts agree with the HTML
# --------------------------------------------------------------------------------------------


def test_body_links_match_the_published_facts(site: SampleSite) -> None:
    links = collect(demo.article_html(site.base_url))
    assert tuple(links.body_hrefs) == demo.body_hrefs(site.base_url)

    http_paths = [
        path_of(site.article_url, href)
        for href in links.body_hrefs
        if not href.startswith(("#", "mailto:"))
    ]
    assert tuple(dict.fromkeys(http_paths)) == demo.EXPECTED_BODY_LINK_PATHS
    assert http_paths.count(demo.DUPLICATE_BODY_LINK_PATH) == 2
    assert demo.BODY_MAILTO_HREF in links.body_hrefs
    for fragment in demo.BODY_FRAGMENT_HREFS:
        assert fragment in links.body_hrefs
        assert fragment[1:] in links.ids  # the footnote and its back-reference exist


def test_boilerplate_links_live_outside_the_article_and_all_answer(site: SampleSite) -> None:
    links = collect(demo.article_html(site.base_url))
    outside = {
        path_of(site.article_url, href)
        for href in links.other_hrefs
        if not href.startswith("mailto:")
    }
    assert outside == set(demo.BOILERPLATE_LINK_PATHS)
    assert not outside & set(demo.EXPECTED_BODY_LINK_PATHS)
    for path in demo.NEVER_REQUESTED_PATHS:
        status, headers, _ = get(site, path)
        assert status == 200, path
        assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_share_links_stay_on_this_server(site: SampleSite) -> None:
    links = collect(demo.article_html(site.base_url))
    share = [href for href in links.other_hrefs if "/share/" in href]
    assert len(share) == 2
    for href in share:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
        assert query["u"] == [site.article_url]
        assert get(site, href)[0] == 200


def test_every_url_on_the_site_points_back_to_it(site: SampleSite) -> None:
    for path in demo.route_paths():
        _, headers, body = get(site, path)
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        url = site.url(path)
        references: list[str] = []
        if "Location" in headers:
            references.append(headers["Location"])
        content_type = headers["Content-Type"]
        if content_type.startswith("text/html"):
            charset = content_type.partition("charset=")[2]
            references += [value for _, _, value in collect(body.decode(charset)).urls]
        elif content_type.startswith("text/css"):
            references += css_urls(body.decode("utf-8"))
        for reference in references:
            if reference.startswith(("mailto:", "#")):
                continue
            resolved = urllib.parse.urlsplit(urllib.parse.urljoin(url, reference))
            assert (resolved.scheme, resolved.netloc) == ("http", f"{site.host}:{site.port}"), (
                path,
                reference,
            )


# --------------------------------------------------------------------------------------------
# the cited sources
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hop", demo.REDIRECT_HOPS, ids=lambda hop: hop.source)
def test_each_redirect_hop(site: SampleSite, hop: demo.RedirectHop) -> None:
    status, headers, body = get(site, hop.source)
    assert status == hop.status
    assert headers["Location"] == hop.location_for(site.base_url)
    assert path_of(site.url(hop.source), headers["Location"]) == hop.target
    assert int(headers["Content-Length"]) == len(body)


@pytest.mark.parametrize("link", demo.EXPECTED_BODY_LINKS, ids=lambda link: link.kind)
def test_following_each_body_link_ends_where_promised(
    site: SampleSite, link: demo.BodyLink
) -> None:
    path, seen = link.path, []
    for _ in range(10):
        status, headers, body = get(site, path)
        seen.append(status)
        if status not in (301, 302, 303, 307, 308):
            break
        path = path_of(site.url(path), headers["Location"])
    assert seen == [hop.status for hop in link.redirects] + [link.final_status]
    assert path == link.final_path
    assert headers["Content-Type"] == link.final_content_type
    assert int(headers["Content-Length"]) == len(body)


def test_urllib_follows_the_mixed_chain(site: SampleSite) -> None:
    # An empty ProxyHandler keeps a developer's proxy settings from seeing this traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(site.url(demo.CHAIN_START_PATH), timeout=10) as response:
        assert response.geturl() == site.url(demo.FINAL_DESTINATION_PATH)
        assert b"Final audit report" in response.read()
    assert site.paths() == [
        demo.CHAIN_START_PATH,
        "/r/chain-2",
        "/r/chain-3",
        demo.FINAL_DESTINATION_PATH,
    ]


def test_pdf_is_a_well_formed_pdf_with_text(site: SampleSite) -> None:
    status, headers, pdf = get(site, demo.PDF_PATH)
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.endswith(b"%%EOF")

    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[startxref:].startswith(b"xref\n0 ")
    count = int(pdf[startxref:].split(b"\n")[1].split()[1])
    entries = pdf[startxref:].split(b"\n", 2)[2]
    for number in range(1, count):
        entry = entries[number * 20 : (number + 1) * 20]
        assert entry.endswith(b" 00000 n\r\n")
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)

    declared = re.search(rb"/Length (\d+) >>\nstream\n", pdf)
    assert declared is not None
    length = int(declared.group(1))
    stream = pdf.split(b"stream\n", 1)[1]
    assert stream[length:].startswith(b"\nendstream")
    for line in demo.PDF_TEXT_LINES:
        escaped = line.replace("(", "\\(").replace(")", "\\)").encode("ascii")
        assert b"(" + escaped + b") Tj" in stream[:length]


def test_legacy_page_is_really_windows_1252(site: SampleSite) -> None:
    status, headers, body = get(site, demo.LEGACY_PATH)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=windows-1252"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("cp1252")
    assert '<meta charset="windows-1252">' in text
    for character in demo.LEGACY_SPECIAL_CHARACTERS:
        assert character in text
        assert character.encode("cp1252") in body  # one byte each, e.g. € is 0x80
    assert b"\x80" in body and b"\xdf" in body  # € and ß


def test_error_pages(site: SampleSite) -> None:
    for path, expected in (
        (demo.GONE_PATH, 404),
        (demo.BROKEN_PATH, 500),
        ("/no/such/page", 404),
        ("/static/img/missing.png", 404),
    ):
        status, headers, body = get(site, path)
        assert status == expected, path
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert int(headers["Content-Length"]) == len(body)
        assert f"<h1>{expected} ".encode() in body


def test_slow_page_takes_at_least_the_delay(site: SampleSite) -> None:
    started = time.monotonic()
    status, _, body = get(site, demo.SLOW_PATH)
    elapsed = time.monotonic() - started
    assert status == 200 and b"independent analysis" in body
    assert elapsed >= SLOW_DELAY


# --------------------------------------------------------------------------------------------
# page requisites
# --------------------------------------------------------------------------------------------


def test_requisites_found_in_html_and_css_match_the_facts(site: SampleSite) -> None:
    links = collect(demo.article_html(site.base_url))
    # Everything but anchors, minus the canonical link and og:url (the article itself).
    found = [path_of(site.article_url, value) for tag, _, value in links.urls if tag != "a"]
    found = [path for path in found if path != demo.ARTICLE_PATH]
    assert found == [*demo.HTML_REQUISITE_PATHS, *demo.SRCSET_PATHS]

    from_css: list[str] = []
    for stylesheet in ("/static/css/site.css", "/static/css/print.css"):
        _, _, css = get(site, stylesheet)
        from_css += [path_of(site.url(stylesheet), url) for url in css_urls(css.decode())]
    assert from_css == list(demo.CSS_REQUISITE_PATHS)


def test_requisites_answer_with_their_content_types(site: SampleSite) -> None:
    assert set(demo.REQUISITE_CONTENT_TYPES) == set(demo.REQUISITE_PATHS)
    for path in demo.REQUISITE_PATHS:
        status, headers, body = get(site, path)
        assert status == 200, path
        assert headers["Content-Type"] == demo.REQUISITE_CONTENT_TYPES[path]
        assert int(headers["Content-Length"]) == len(body) > 0
        if path.endswith(".png"):
            assert png_is_valid(body), path
    _, _, ico = get(site, "/favicon.ico")
    assert ico[:6] == b"\x00\x00\x01\x00\x01\x00" and png_is_valid(ico[22:])
    _, _, font = get(site, "/static/fonts/serif.woff2")
    assert font.startswith(b"wOF2")


# --------------------------------------------------------------------------------------------
# the request log and the server's manners
# --------------------------------------------------------------------------------------------


def test_requested_paths_are_recorded_in_order(site: SampleSite) -> None:
    get(site, "/tag/bridges")
    get(site, "/share/twitter?u=x&t=y")
    get(site, "/nothing-here", method="HEAD")

    expected = ["/tag/bridges", "/share/twitter", "/nothing-here"]
    assert site.paths() == expected
    assert site.requested_paths.paths() == expected
    assert site.requested_paths() == expected
    assert list(site.requested_paths) == expected
    assert "/share/twitter" in site.requested_paths
    assert site.requested_paths.targets()[1] == "/share/twitter?u=x&t=y"
    assert [request.method for request in site.requested_paths.requests()] == ["GET", "GET", "HEAD"]
    assert site.requested_paths.count("/tag/bridges") == 1


def test_keep_alive_serves_several_requests_on_one_connection(site: SampleSite) -> None:
    connection = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        for path in (demo.ARTICLE_PATH, demo.PDF_PATH, "/missing"):
            connection.request("GET", path)
            connection.getresponse().read()
        sock = connection.sock
        connection.request("GET", "/about")
        assert connection.getresponse().read()
        assert connection.sock is sock  # the connection was reused throughout
    finally:
        connection.close()


def test_unsupported_methods_are_refused_quietly(site: SampleSite) -> None:
    status, _, _ = get(site, demo.ARTICLE_PATH, method="POST")
    assert status == 501
    assert site.paths() == [demo.ARTICLE_PATH]


def test_shutdown_is_prompt_with_idle_and_slow_connections() -> None:
    with serve_sample_site(slow_delay=60) as running:
        idle = http.client.HTTPConnection(running.host, running.port, timeout=10)
        idle.request("GET", "/about")
        idle.getresponse().read()
        slow = socket.create_connection((running.host, running.port), timeout=10)
        slow.sendall(f"GET {demo.SLOW_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert running.requested_paths.wait_for(demo.SLOW_PATH, timeout=10)
        started = time.monotonic()
    try:
        # Neither the parked keep-alive connection nor the 60 s delay may hold up the exit.
        assert time.monotonic() - started < 5
        assert "provenance-sample-site" not in {thread.name for thread in threading.enumerate()}
    finally:
        idle.close()
        slow.close()


def test_site_binds_loopback_with_an_os_chosen_port(site: SampleSite) -> None:
    assert site.host == "127.0.0.1" and site.port > 0
    assert site.base_url == f"http://127.0.0.1:{site.port}"
    assert site.article_url == site.base_url + demo.ARTICLE_PATH
    assert site.url(demo.PDF_PATH) == site.base_url + demo.PDF_PATH


def test_site_files_ship_as_package_data() -> None:
    root = importlib.resources.files("provenance.demo").joinpath("site")
    assert root.joinpath("pages", "article.html").is_file()
    assert root.joinpath("static", "css", "site.css").is_file()
    assert root.joinpath("static", "js", "site.js").is_file()


def test_article_bytes_are_deterministic() -> None:
    base = "http://127.0.0.1:8000"
    assert demo.article_wire_body(base) == demo.article_wire_body(base)
    assert demo.article_wire_body(base) != demo.article_wire_body("http://127.0.0.1:8001")


# --------------------------------------------------------------------------------------------
# main-content extraction sees the article the way the facts say
# --------------------------------------------------------------------------------------------


def test_trafilatura_finds_the_body_and_only_the_body_links(site: SampleSite) -> None:
    trafilatura = pytest.importorskip("trafilatura")
    html_text = demo.article_html(site.base_url)
    document = trafilatura.bare_extraction(html_text, url=site.article_url, with_metadata=True)
    assert document.title == demo.ARTICLE_TITLE
    assert document.author == "; ".join(demo.ARTICLE_AUTHORS)
    assert document.date == demo.ARTICLE_PUBLISHED[:10]
    assert document.sitename == demo.SITE_NAME
    text = " ".join(document.text.split())
    for snippet in demo.ARTICLE_TEXT_SNIPPETS:
        assert snippet in text

    xml = trafilatura.extract(
        html_text, url=site.article_url, include_links=True, output_format="xml"
    )
    targets = re.findall(r'<ref target="([^"]+)"', xml)
    http_paths = [
        urllib.parse.urlsplit(target).path
        for target in targets
        if target.startswith(site.base_url) and "#" not in target
    ]
    assert tuple(dict.fromkeys(http_paths)) == demo.EXPECTED_BODY_LINK_PATHS


def test_clients_hanging_up_leave_no_trace(capfd: pytest.CaptureFixture[str]) -> None:
    with serve_sample_site(slow_delay=SLOW_DELAY) as running:
        for path in (demo.SLOW_PATH, demo.ARTICLE_PATH):
            sock = socket.create_connection((running.host, running.port), timeout=10)
            # SO_LINGER 0 makes close() send a reset, the rudest way a client can leave.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert running.requested_paths.wait_for(path, timeout=10)
            sock.close()
    # Leaving the block joined every handler thread, so their failures are all in by now.
    assert running.errors() == []
    assert capfd.readouterr().err == ""


def test_concurrent_clients_are_served(site: SampleSite) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker(path: str) -> None:
        status = get(site, path)[0]
        with lock:
            results.append(status)

    paths = [*demo.REQUISITE_PATHS, *demo.EXPECTED_BODY_LINK_PATHS, demo.ARTICLE_PATH]
    threads = [threading.Thread(target=worker, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(paths)
    assert sorted(site.paths()) == sorted(paths)
