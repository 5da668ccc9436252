"""The WARC writer's two ways to the same records, and a page read in two steps.

A capture prepares request records while it waits for the answers and finishes reading the
article page after its requests are out. Both must give exactly what doing it all at once
gives, and a capture whose sources answer slowly (so that the early path is taken) must still
pass ``warcio check`` with every request paired to its response.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from helpers import tool
from provenance.capture import pipeline
from provenance.capture.events import ResourceDone
from provenance.capture.extract import (
    ArticleExtraction,
    PageReading,
    extract_article,
    read_article,
)
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from provenance.hashing import RunningDigest
from provenance.warc import PreparedRecord, WarcFile, prepare_request, write_exchange
from servers import html, serve

REQUEST = (b"GET /source HTTP/1.1\r\nHost: example.test\r\nUser-Agent: provenance-test\r\n"
           b"Connection: close\r\n\r\n")
BODY = b"<p>the source</p>"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 17\r\n\r\n"
DATE = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _write(path: Path, *, prepared: bool) -> None:
    warc = WarcFile(path)
    block, payload = RunningDigest(), RunningDigest()
    block.update(HEAD + BODY)
    payload.update(BODY)
    response_id = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
    record = prepare_request(target_uri="http://example.test/source", date=DATE,
                             peer_ip="127.0.0.1", request_bytes=REQUEST,
                             concurrent_to=response_id) if prepared else None
    write_exchange(warc, target_uri="http://example.test/source", date=DATE,
                   peer_ip="127.0.0.1", request_bytes=REQUEST, response_head=HEAD,
                   raw_body=io.BytesIO(BODY), block_digest=block, payload_digest=payload,
                   truncated=None, response_id=response_id, request_record=record)
    warc.close()


def _records(path: Path) -> list[tuple[list[tuple[str, str]], bytes]]:
    with path.open("rb") as stream:
        return [([(k, v) for k, v in r.rec_headers.headers if k != "WARC-Record-ID"],
                 r.raw_stream.read()) for r in ArchiveIterator(stream, no_record_parse=True)]


def test_a_prepared_request_record_is_the_record_written_inline(tmp_path: Path) -> None:
    _write(tmp_path / "inline.warc.gz", prepared=False)
    _write(tmp_path / "prepared.warc.gz", prepared=True)
    inline, early = _records(tmp_path / "inline.warc.gz"), _records(tmp_path / "prepared.warc.gz")
    assert inline == early
    _, (request_headers, request_block) = early
    assert dict(request_headers)["WARC-Concurrent-To"] == \
        "<urn:uuid:00000000-0000-4000-8000-000000000001>"
    assert request_block == REQUEST
    assert dict(request_headers)["WARC-Block-Digest"] == \
        "sha256:" + hashlib.sha256(REQUEST).hexdigest()
    check = subprocess.run([tool("warcio"), "check", str(tmp_path / "prepared.warc.gz")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_request_record_prepared_for_another_response_is_refused(tmp_path: Path) -> None:
    record = prepare_request(target_uri="http://example.test/source", date=DATE,
                             peer_ip="127.0.0.1", request_bytes=REQUEST,
                             concurrent_to="<urn:uuid:00000000-0000-4000-8000-000000000002>")
    warc = WarcFile(tmp_path / "x.warc.gz")
    digest = RunningDigest()
    with pytest.raises(ValueError, match="another response"):
        write_exchange(warc, target_uri="http://example.test/source", date=DATE,
                       peer_ip="127.0.0.1", request_bytes=REQUEST, response_head=HEAD,
                       raw_body=io.BytesIO(BODY), block_digest=digest, payload_digest=digest,
                       truncated=None, response_id="<urn:uuid:other>", request_record=record)
    warc.close()


PAGE = """<html lang="en"><head><title>Two steps</title>
<link rel="canonical" href="/canonical"><meta name="author" content="A. Writer"></head>
<body><nav><a href="/home">Home</a></nav><article><h1>Two steps</h1>
<p>The report <a href="/report#p2">says so</a>, and the <a href="https://other.test/doc.pdf">
leaked document</a> agrees, as does a <a href="/report">second mention</a> of the report in a
sentence long enough to be part of the story.</p>
<p>Another paragraph of the story with enough words in it to count as article text.</p>
</article><footer><a href="/about">About</a></footer></body></html>"""


def test_reading_in_two_steps_gives_the_links_it_promised() -> None:
    reading = read_article(PAGE.encode(), "https://news.test/a", "utf-8")
    whole = extract_article(PAGE.encode(), "https://news.test/a", "utf-8")
    assert reading.canonical_url == whole.metadata.canonical_url == "https://news.test/canonical"
    assert reading.link_urls == tuple(link.url for link in whole.body_links)
    assert reading.link_urls == ("https://news.test/report#p2", "https://other.test/doc.pdf",
                                 "https://news.test/report")
    assert reading.finish() == whole


def test_slow_sources_get_request_records_prepared_early(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources that answer late: their request records are prepared while they are awaited."""
    release = threading.Event()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        release.wait(timeout=10)
        html("<p>late</p>")(handler)

    links = "".join(f'<p>Source {n} is <a href="/s{n}">here</a> in this story.</p>'
                    for n in range(4))
    routes = {"/article": html(f"<html><body><article>{links}</article></body></html>"),
              **{f"/s{n}": slow for n in range(4)}}
    prepared_early: list[str] = []

    def spy(**fields: Any) -> PreparedRecord:
        # the pipeline's own reference: the inline path in write_exchange does not pass here
        prepared_early.append(fields["target_uri"])
        if len(prepared_early) == 4:
            release.set()  # the sources answer only once all four were prepared
        return prepare_request(**fields)

    monkeypatch.setattr(pipeline, "prepare_request", spy)
    with serve(routes) as server:
        result = capture(f"{server.base_url}/article", store=store,
                         settings=CaptureSettings(requisites=False))
    assert result.manifest.state == "COMPLETE"
    assert sorted(prepared_early) == [f"{server.base_url}/s{n}" for n in range(4)]
    warc = result.bundle / "archive" / f"{result.capture_id}.warc.gz"
    check = subprocess.run([tool("warcio"), "check", str(warc)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    with warc.open("rb") as stream:
        found = [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"),
                  r.rec_headers.get_header("WARC-Concurrent-To"),
                  r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(stream)]
    responses = {uri: record_id for kind, record_id, _, uri in found if kind == "response"}
    requests = [(uri, to) for kind, _, to, uri in found if kind == "request"]
    assert len(requests) == len(responses) == 5
    assert all(responses[uri] == to for uri, to in requests)


def test_a_capture_failing_while_the_page_is_finished_leaves_no_thread_behind(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page reading's worker outlives the failed capture: it must write nothing, raise
    nothing and end by itself (it once wrote into the closed WARC and printed a traceback)."""
    finishing, requisite_done = threading.Event(), threading.Event()
    real_finish = PageReading.finish

    def finish(self: PageReading) -> ArticleExtraction:
        finishing.set()
        requisite_done.wait(timeout=10)  # the capture fails while this worker runs
        return real_finish(self)

    def stylesheet(handler: BaseHTTPRequestHandler) -> None:
        finishing.wait(timeout=10)  # answer only once the worker is running
        html("body { color: black }")(handler)

    class Boom(Exception):
        pass

    def observer(event: object) -> None:
        if isinstance(event, ResourceDone) and event.role == "requisite":
            requisite_done.set()
            raise Boom

    thread_errors: list[object] = []
    monkeypatch.setattr(PageReading, "finish", finish)
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    page = ('<html><head><link rel="stylesheet" href="/site.css"></head><body><article>'
            + "".join(f'<p>Paragraph {n} cites <a href="/s{n}">a source</a> at length.</p>'
                      for n in range(3)) + "</article></body></html>")
    routes = {"/article": html(page), "/site.css": stylesheet,
              **{f"/s{n}": html("<p>source</p>") for n in range(3)}}
    with serve(routes) as server, pytest.raises(Boom):
        capture(f"{server.base_url}/article", store=store, observer=observer)
    for thread in threading.enumerate():
        if thread.name == "provenance-worker":
            thread.join(timeout=30)
            assert not thread.is_alive()
    assert thread_errors == []
    assert [path.name for path in store.iterdir() if path.is_dir()] == []
