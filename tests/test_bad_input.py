"""Bad input from the hostile web: one test per row of the README's "Bad input" table.

Each row is run the way a user meets it: the real CLI in a subprocess against loopback servers
(``--json``, so that stderr holds nothing but an error line), then the bundle it wrote is read
back. The one exception is DNS: no test may look up a made-up name, so that row runs the
library with a resolver that fails every lookup and checks the line the CLI would print.

Heavy rows (a 10 MB single-line page, a gzip bomb, 100,000 links) also print the capture
process's wall time and peak RSS (``os.wait4`` reports the child's own ``ru_maxrss``) for the
README's table; nothing asserts on them (speed and memory belong to benchmarks/). What the
tests assert is the behaviour that bounds them: the caps hit and recorded, the requests made.
A watchdog kills a capture that runs past its timeout, so a hang fails the test.
"""

from __future__ import annotations

import functools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import typer

from helpers import read_record, run_cli
from provenance.capture import pipeline
from provenance.capture.extract import extract_article
from provenance.capture.extract.parsing import _bounded_markup
from provenance.capture.fetch import static_resolver
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import LISTED_LINKS, CaptureResult, capture
from provenance.cli import capture as cli_capture
from provenance.models import Manifest
from servers import RawRoute, html, make_pki, raw, serve

PARAGRAPH = ("The committee's report, published after the hearing, lists every witness who was "
             "called and every document that was entered into the record that afternoon. ")


def _article(links: list[str], title: str = "Bad input") -> str:
    items = "".join(f'<p>{PARAGRAPH}See <a href="{href}">source {n}</a>.</p>'
                    for n, href in enumerate(links))
    return (f"<!doctype html><html lang='en'><head><title>{title}</title></head><body>"
            f"<article><h1>{title}</h1><p>{PARAGRAPH * 3}</p>{items}</article></body></html>")


def _response(body: bytes, content_type: str = "text/html; charset=utf-8",
              status: str = "200 OK", extra: str = "") -> RawRoute:
    return raw(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def _redirect(target: str) -> RawRoute:
    return raw(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n"
               f"Connection: close\r\n\r\n".encode())


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    """One CLI capture: exit code, output, and the bundle's manifest when one was written."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    peak_mb: float = 0.0

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.stdout))

    @property
    def bundle(self) -> Path:
        return Path(self.summary["bundle"])

    @property
    def manifest(self) -> Manifest:
        return Manifest.model_validate_json(
            (self.bundle / "provenance" / "manifest.json").read_bytes())

    def error_line(self) -> str:
        """The one line a failure prints: never a traceback, never more than one line."""
        assert "Traceback" not in self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]

    def quiet(self) -> None:
        """A capture that did not fail prints nothing on stderr under --json."""
        assert self.stderr == "", self.stderr


def _capture_cli(url: str, store: Path, *options: str) -> Run:
    result = run_cli("capture", url, "--archive-dir", str(store), "--json", *options)
    return Run(result.returncode, result.stdout, result.stderr)


def _capture_measured(url: str, store: Path, *options: str, timeout: float = 120) -> Run:
    """Run the CLI like ``_capture_cli`` and measure that process's wall time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "provenance", "capture", url, "--archive-dir", str(store),
             "--json", *options], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        # a watchdog, not a synchronisation: a hung capture fails the test instead of the run
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _pid, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(process.returncode, out.read().decode(), err.read().decode(),
                   seconds=seconds, peak_mb=usage.ru_maxrss / 1024)


def _report(row: str, run: Run) -> None:
    # shown with `pytest -s`; the README's figures come from these lines
    print(f"\n[{row}] exit {run.returncode}, {run.seconds:.1f} s, peak RSS {run.peak_mb:.0f} MB")


def _nothing_written(store: Path) -> None:
    assert not store.exists() or list(store.iterdir()) == []


# --------------------------------------------------------------------------------------------
# one capture whose article links to a bad source of every kind (the rows' linked variants)
# --------------------------------------------------------------------------------------------

@dataclass
class LinkedRun:
    run: Run
    by_path: dict[str, Any]  # link path or URL -> manifest BodyLink


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkedRun]:
    directory = tmp_path_factory.mktemp("linked")
    pki = make_pki(directory)
    refused = f"http://127.0.0.1:{_closed_port()}/refused"
    with serve({"/tls": html("<p>never seen</p>")}, tls=pki.server_context) as untrusted:
        links = ["/missing", "/broken", refused, f"{untrusted.base_url}/tls", "/loop1",
                 "/empty", "ftp://files.example/report.pdf", "http://[::1/bad"]
        routes = {"/a": html(_article(links)),
                  "/broken": html("<p>down</p>", status="503 Service Unavailable"),
                  "/loop1": _redirect("/loop2"), "/loop2": _redirect("/loop1"),
                  "/empty": _response(b"")}
        with serve(routes) as server:
            run = _capture_cli(f"{server.base_url}/a", directory / "archives", "--no-requisites")
    by_path = {}
    for link in run.manifest.links:
        key = link.url.removeprefix(server.base_url)
        by_path[key] = link
    yield LinkedRun(run, by_path | {"refused": by_path[refused],
                                    "tls": by_path[f"{untrusted.base_url}/tls"]})


def test_linked_sources_that_fail_make_a_partial_capture(linked: LinkedRun) -> None:
    run = linked.run
    assert run.returncode == 0
    run.quiet()
    assert run.manifest.state == "PARTIAL"
    assert run.manifest.state_reason == "5 linked source(s) failed"


# --------------------------------------------------------------------------------------------
# the rows
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("not a url", "error: invalid URL 'not a url': no scheme"),
    ("example.org/news", "error: invalid URL 'example.org/news': no scheme (did you mean "
                         "https://example.org/news?)"),
    ("http://", "error: invalid URL 'http://': no host"),
    ("http://[::1/x", "error: invalid URL 'http://[::1/x': Invalid IPv6 URL"),
])
def test_invalid_url(tmp_path: Path, url: str, expected: str) -> None:
    store = tmp_path / "archives"
    run = _capture_cli(url, store)
    assert run.returncode == 2
    assert run.error_line() == expected
    assert run.stdout == ""
    _nothing_written(store)


def test_invalid_url_in_a_link_is_skipped(linked: LinkedRun) -> None:
    link = linked.by_path["http://[::1/bad"]
    assert link.outcome == "skipped"
    assert link.reason == "invalid URL 'http://[::1/bad': Invalid IPv6 URL"


@pytest.mark.parametrize("url", ["ftp://files.example/report.pdf", "javascript:alert(1)"])
def test_unknown_scheme(tmp_path: Path, url: str) -> None:
    store = tmp_path / "archives"
    run = _capture_cli(url, store)
    assert run.returncode == 2
    scheme = url.split(":", 1)[0]
    assert run.error_line() == (f"error: unsupported scheme '{scheme}' in '{url}': "
                                "only http and https")
    _nothing_written(store)


def test_unknown_scheme_in_a_link_is_skipped(linked: LinkedRun) -> None:
    link = linked.by_path["ftp://files.example/report.pdf"]
    assert (link.outcome, link.reason) == ("skipped", "ftp: links are not fetched")


def _cli_line_for(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  url: str, store: Path) -> tuple[int, str, CaptureResult]:
    """Run the CLI's capture command in-process with a resolver that knows no names."""
    results: list[CaptureResult] = []

    def offline(*args: Any, **kwargs: Any) -> CaptureResult:
        result = capture(*args, **kwargs, resolver=static_resolver({}))
        results.append(result)
        return result

    # run_capture imports the pipeline when it runs (not with the CLI): patch it at the source.
    monkeypatch.setattr(pipeline, "capture", offline)
    code = 0
    try:
        cli_capture.run_capture(url, store, CaptureSettings(requisites=False), as_json=True,
                                quiet=False, strict=False)
    except typer.Exit as exit_:
        code = exit_.exit_code
    return code, capsys.readouterr().err, results[0]


def test_dns_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "archives"
    code, stderr, result = _cli_line_for(monkeypatch, capsys, "http://no-such-host.test/a",
                                         store)
    manifest = result.manifest
    reason = ("the article could not be fetched: DNS lookup failed for no-such-host.test: "
              "Name or service not known")
    assert code == 3
    assert manifest.state == "FAILED" and manifest.state_reason == reason
    assert stderr.splitlines() == [f"error: {reason} (the attempt is recorded in "
                                   f"{result.bundle})"]
    article = manifest.resources[0]
    assert (article.outcome, article.status, article.response) == ("failed", None, None)

    # a linked source whose name does not resolve: the capture is PARTIAL, not FAILED
    with serve({"/a": html(_article(["http://no-such-host.test/source"]))}) as server:
        code, stderr, result = _cli_line_for(monkeypatch, capsys, f"{server.base_url}/a",
                                             store)
    assert (code, stderr) == (0, "")
    manifest = result.manifest
    assert manifest.state == "PARTIAL"
    link = manifest.links[0]
    assert (link.outcome, link.reason) == (
        "failed", "DNS lookup failed for no-such-host.test: Name or service not known")


def test_refused_connection(tmp_path: Path, linked: LinkedRun) -> None:
    store = tmp_path / "archives"
    run = _capture_cli(f"http://127.0.0.1:{_closed_port()}/a", store)
    assert run.returncode == 3
    assert run.error_line() == ("error: the article could not be fetched: connection refused "
                                f"(the attempt is recorded in {run.bundle})")
    assert run.manifest.state == "FAILED"
    assert run.manifest.resources[0].reason == "connection refused"
    link = linked.by_path["refused"]
    assert (link.outcome, link.reason) == ("failed", "connection refused")


def test_tls_failure(tmp_path: Path, linked: LinkedRun) -> None:
    pki = make_pki(tmp_path)
    store = tmp_path / "archives"
    with serve({"/a": html(_article([]))}, tls=pki.server_context) as server:
        run = _capture_cli(f"{server.base_url}/a", store)  # no --ca-bundle: the root is unknown
        assert server.requests == []  # the handshake failed before any request was sent
    reason = "TLS certificate verification failed: self-signed certificate in certificate chain"
    assert run.returncode == 3
    assert run.error_line() == (f"error: the article could not be fetched: {reason} "
                                f"(the attempt is recorded in {run.bundle})")
    manifest = run.manifest
    assert manifest.state == "FAILED" and manifest.resources[0].reason == reason
    assert manifest.tls == []
    link = linked.by_path["tls"]
    assert (link.outcome, link.reason) == ("failed", reason)


@pytest.mark.parametrize("status", ["404 Not Found", "503 Service Unavailable"])
def test_http_error(tmp_path: Path, status: str) -> None:
    page = f"<html><body><h1>{status}</h1><p>Nothing here.</p></body></html>"
    with serve({"/a": html(page, status=status)}) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path)
    code = status.split()[0]
    assert run.returncode == 3
    assert run.error_line() == (f"error: the article answered HTTP {code} "
                                f"(the attempt is recorded in {run.bundle})")
    manifest = run.manifest
    assert manifest.state == "FAILED" and manifest.article_text is None
    article = manifest.resources[0]
    assert article.status == int(code) and article.response is not None
    _head, block = read_record(run.bundle, article.response)
    assert block.endswith(page.encode())  # the error page is evidence too


def test_http_error_in_a_link_is_a_failed_source(linked: LinkedRun) -> None:
    for path, code in (("/missing", 404), ("/broken", 503)):
        link = linked.by_path[path]
        assert (link.outcome, link.reason) == ("failed", f"HTTP {code}")
        assert link.resource is not None  # the error response is recorded


def test_empty_body(tmp_path: Path, linked: LinkedRun) -> None:
    with serve({"/a": _response(b"")}) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE" and manifest.article_kind == "html"
    assert (manifest.resources[0].bytes, manifest.resources[0].outcome) == (0, "captured")
    assert manifest.page.title is None and manifest.links == []
    assert manifest.article_text is not None and manifest.article_text.bytes == 0
    link = linked.by_path["/empty"]
    assert (link.outcome, link.reason) == ("captured", None)


def test_binary_garbage_served_as_html(tmp_path: Path) -> None:
    junk = b"\x89PNG\r\n\x1a\n\x00\x00" + random.Random(7).randbytes(500_000)
    with serve({"/a": _response(junk, "text/html")}) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE" and manifest.article_kind == "html"
    assert manifest.resources[0].bytes == len(junk)
    assert manifest.article_text is not None
    assert manifest.article_text.record is not None
    _head, text = read_record(run.bundle, manifest.article_text.record)
    decoded = text.decode("utf-8")  # whatever came in, the text record is valid UTF-8
    assert "\x00" not in decoded


TITLE = "Le café de la gare, fermé depuis l’été"
CAFE = f"{TITLE}, rouvrira « bientôt » à 5 €."


@pytest.mark.parametrize("lie", ["header", "meta"])
def test_wrong_charset_declaration(tmp_path: Path, lie: str) -> None:
    page = (f"<html><head><meta charset='utf-8'><title>{TITLE}</title></head><body><article>"
            f"<p>{CAFE} {PARAGRAPH}</p></article></body></html>")
    body = page.encode("cp1252")
    content_type = "text/html; charset=utf-8" if lie == "header" else "text/html"
    with serve({"/a": _response(body, content_type)}) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE"
    assert manifest.page.title == TITLE
    assert manifest.article_text is not None and manifest.article_text.record is not None
    _head, text = read_record(run.bundle, manifest.article_text.record)
    assert CAFE in text.decode("utf-8")


def test_ten_megabyte_single_line_page(tmp_path: Path) -> None:
    paragraphs = []
    size = 0
    number = 0
    while size < 10 * 1024 * 1024:
        words = " ".join(f"w{(number * 31 + j) % 9973}" for j in range(150))
        paragraph = f"<p>Paragraph {number}: {words}.</p>"
        paragraphs.append(paragraph)
        size += len(paragraph)
        number += 1
    page = ("<!doctype html><html><head><title>One line</title></head><body><article>"
            + "".join(paragraphs) + "</article></body></html>").encode()
    assert b"\n" not in page and len(page) > 10 * 1024 * 1024
    with serve({"/a": _response(page)}) as server:
        run = _capture_measured(f"{server.base_url}/a", tmp_path)
    _report("10 MB single line", run)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE" and manifest.page.title == "One line"
    assert manifest.article_text is not None
    assert manifest.article_text.bytes > 10_000_000  # every paragraph, not a sample


def test_redirect_loop(tmp_path: Path, linked: LinkedRun) -> None:
    routes = {"/a": _redirect("/b"), "/b": _redirect("/a")}
    with serve(routes) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path)
        assert server.requests == ["/a", "/b"]  # each hop once, then the loop is recognised
    reason = f"redirect loop: {server.base_url}/a was already visited"
    assert run.returncode == 3
    assert run.error_line() == (f"error: the article could not be fetched: {reason} "
                                f"(the attempt is recorded in {run.bundle})")
    manifest = run.manifest
    assert manifest.state == "FAILED"
    assert [hop.status for hop in manifest.redirect_chain] == [302, 302]
    link = linked.by_path["/loop1"]
    assert link.outcome == "failed" and link.reason is not None
    assert link.reason.startswith("redirect loop")


def _endless(first: bytes, chunk: bytes, pause: float, limit: int) -> RawRoute:
    """A response that never ends: ``first``, then ``chunk`` over and over (chunked coding)."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        wire = handler.wfile
        try:
            wire.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
            wire.write(b"%x\r\n%s\r\n" % (len(first), first))
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            stop = threading.Event()  # never set: its wait() is the drip's pace
            for _ in range(limit):  # bounded, so a capture that never stops fails, not hangs
                wire.write(framed)
                wire.flush()
                if pause:
                    stop.wait(pause)
        except OSError:
            return  # the capture hung up: what the test wants
    return route


@pytest.mark.parametrize("limit", ["--max-bytes", "--total-timeout"])
def test_endless_response(tmp_path: Path, limit: str) -> None:
    first = b"<html><head><title>Endless</title></head><body><article><p>" + PARAGRAPH.encode()
    if limit == "--max-bytes":
        route = _endless(first, b"and more " * 7000, 0.0, limit=100_000)  # 6 GB if not cut
        options = ["--max-bytes", "1M"]
        reason = "response larger than the 1048576-byte cap; kept the prefix"
        truncation = b"length"
    else:
        route = _endless(first, b"and more ", 0.02, limit=10_000)  # 200 s if not cut
        options = ["--total-timeout", "1.5"]
        reason = "total time limit of 1.5s hit"
        truncation = b"time"
    with serve({"/a": route}) as server:
        run = _capture_cli(f"{server.base_url}/a", tmp_path, *options)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "PARTIAL"
    assert manifest.state_reason == f"the article response was cut short ({reason})"
    article = manifest.resources[0]
    assert (article.outcome, article.reason) == ("truncated", reason)
    assert article.response is not None
    head, _block = read_record(run.bundle, article.response)
    assert b"\r\nWARC-Truncated: " + truncation + b"\r\n" in head
    assert manifest.page.title == "Endless"  # the prefix is still read
    name = limit.removeprefix("--").replace("-", "_")
    assert [(hit.limit, hit.resource) for hit in manifest.limits_hit] == [(name, article.id)]
    if limit == "--max-bytes":
        assert article.response.length < 2 * 1024 * 1024


@functools.cache
def _gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip member inflating to ``inflated_mib`` MiB of zeros, built without inflating it.

    After Z_FULL_FLUSH a deflate stream starts afresh (RFC 1951 blocks, byte-aligned, no
    back-references across the flush), so one compressed MiB of zeros can be repeated.
    """
    zeros = bytes(1 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    assert deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH) == block
    end = deflater.flush()
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    size = (inflated_mib << 20) & 0xFFFFFFFF  # RFC 1952 section 2.3.1: ISIZE is modulo 2^32
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = crc.to_bytes(4, "little") + size.to_bytes(4, "little")
    return header + block * inflated_mib + end + trailer


def test_gzip_bomb(tmp_path: Path) -> None:
    bomb = _gzip_bomb(4096)  # 4 GiB inflated, about 4 MB on the wire
    assert len(bomb) < 5_000_000
    assert zlib.decompressobj(31).decompress(bomb, 1 << 20) == bytes(1 << 20)  # it is gzip
    with serve({"/a": _response(bomb, "text/html", extra="Content-Encoding: gzip\r\n")}) as server:
        run = _capture_measured(f"{server.base_url}/a", tmp_path)
    _report("gzip bomb", run)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE"
    article = manifest.resources[0]
    assert (article.content_encoding, article.bytes) == ("gzip", len(bomb))
    assert article.response is not None
    _head, block = read_record(run.bundle, article.response)
    assert block.endswith(bomb)  # stored as sent, still coded
    assert manifest.article_text is not None and manifest.article_text.bytes == 0
    assert [(hit.limit, hit.resource) for hit in manifest.limits_hit] == [
        ("max_decoded_bytes", article.id)]
    # inflating it would take 4 GiB; the capture stays within a small multiple of the
    # 32 MiB decoding cap (CaptureSettings.max_decoded_bytes)


def test_gzip_bomb_of_markup(tmp_path: Path) -> None:
    """The costly kinds of markup, a few bytes of input per lxml node, in one bomb.

    First a tag with 200,000 attributes (libxml2 checks each against all before it: minutes),
    then 256 MiB of "<p>a</p>" (an element of 300 bytes per 8 bytes of input).
    """
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    crowded = "".join(f" a{n}" for n in range(200_000))
    bomb = deflater.compress(f"<html><body><article><p{crowded}>crowded</p>".encode())
    for _ in range(256):
        bomb += deflater.compress(b"<p>a</p>" * (1 << 17))
    bomb += deflater.flush()
    with serve({"/a": _response(bomb, "text/html", extra="Content-Encoding: gzip\r\n")}) as server:
        run = _capture_measured(f"{server.base_url}/a", tmp_path)
    _report("gzip bomb of markup", run)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE"
    assert manifest.article_text is not None and manifest.article_text.record is not None
    _head, text = read_record(run.bundle, manifest.article_text.record)
    assert text.startswith(b"crowded\n\na\n\na\n\n")  # the crowded tag kept, attributes cut


def test_markup_budget_and_crowded_tags() -> None:
    """What bounds the bombs above: a markup budget, and at most 256 attributes a tag."""
    cut, was_cut = _bounded_markup("<p>a</p>" * 10, limit=7)  # 2 units a start tag
    assert (cut, was_cut) == ("<p>a</p>" * 3, True)
    names = [f" a{n}" for n in range(100_000)]
    kept, was_cut = _bounded_markup(f"<a href='/x'{''.join(names)}>x</a><p>after</p>")
    assert not was_cut
    assert kept == f"<a href='/x'{''.join(names[:255])}>x</a><p>after</p>"
    page = f"<p>{PARAGRAPH}<a href='/x'{''.join(names)}>x</a></p>".encode()
    result = extract_article(page, "http://127.0.0.1/a")
    assert [link.url for link in result.body_links] == ["http://127.0.0.1/x"]


def test_hundred_thousand_links(tmp_path: Path) -> None:
    count = 100_000
    anchors = "".join(f'<a href="/s?n={n}">source {n}</a> ' for n in range(count))
    page = (f"<!doctype html><html><head><title>Many links</title></head><body><article>"
            f"<h1>Many links</h1><p>{PARAGRAPH * 3}</p><p>{anchors}</p></article></body>"
            f"</html>").encode()
    with serve({"/a": _response(page), "/s": html("<p>a source</p>")}) as server:
        run = _capture_measured(f"{server.base_url}/a", tmp_path, "--max-links", "20",
                                "--no-requisites")
    _report("100,000 links", run)
    assert run.returncode == 0
    run.quiet()
    manifest = run.manifest
    assert manifest.state == "COMPLETE"
    # The first LISTED_LINKS body links are listed one by one, the rest counted in limits_hit.
    assert len(manifest.links) == LISTED_LINKS
    outcomes = [link.outcome for link in manifest.links]
    assert outcomes.count("captured") == 20 and outcomes.count("skipped") == LISTED_LINKS - 20
    assert len(server.requests) == 21  # the article and the first 20 sources, nothing more
    hits = {hit.limit: hit for hit in manifest.limits_hit}
    assert set(hits) == {"max_links", "listed_links"}
    assert f"{count - LISTED_LINKS} more body link(s)" in hits["listed_links"].detail
    manifest_size = (run.bundle / "provenance" / "manifest.json").stat().st_size
    print(f"[100,000 links] manifest {manifest_size / 1e6:.1f} MB")


def test_hundred_thousand_links_extraction_can_stop_early() -> None:
    """The library describes only the links a caller will list (the pipeline may pass it)."""
    anchors = "".join(f'<a href="/s?n={n}">source {n}</a> ' for n in range(100_000))
    page = f"<html><body><article><p>{PARAGRAPH}</p><p>{anchors}</p></article></body></html>"
    started = time.process_time()
    result = extract_article(page.encode(), "http://127.0.0.1/a", "utf-8", max_links=1_000)
    seconds = time.process_time() - started
    print(f"\n[100,000 links] extraction describing 1,000: {seconds:.1f} s of CPU")
    assert (len(result.body_links), result.more_links) == (1_000, 99_000)
    assert result.body_links[-1].url == "http://127.0.0.1/s?n=999"
    assert result.truncated is None
