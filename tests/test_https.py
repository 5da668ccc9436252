"""HTTPS capture against a loopback TLS server with a private root (``--ca-bundle``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from helpers import read_record, run_cli
from provenance.capture import fetch as fetch_module
from provenance.capture.fetch import FetchSettings, fetch
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from provenance.capture.urls import parse_fetchable
from servers import LoopbackPKI, Server, html, make_pki, serve

ARTICLE = """<!doctype html><html lang="en"><head><title>Secure report</title></head>
<body><article><h1>Secure report</h1>
<p>The agency published its findings on a page served only over TLS. The
<a href="/evidence">evidence file</a> supports every claim in this paragraph.</p>
<p>A second paragraph keeps the extractor convinced that this is an article body with
enough running text to count as the main content of the page, as a real report would.</p>
</article></body></html>"""


@pytest.fixture
def pki(tmp_path: Path) -> LoopbackPKI:
    return make_pki(tmp_path)


@pytest.fixture
def tls_site(pki: LoopbackPKI) -> Iterator[Server]:
    routes = {"/report": html(ARTICLE), "/evidence": html("<p>evidence</p>")}
    with serve(routes, tls=pki.server_context) as server:
        yield server


def test_https_capture_records_tls_chain(tls_site: Server, pki: LoopbackPKI, store: Path) -> None:
    result = capture(f"{tls_site.base_url}/report", store=store,
                     settings=CaptureSettings(ca_bundle=pki.ca_pem))
    manifest = result.manifest
    assert manifest.state == "COMPLETE"
    assert [link.outcome for link in manifest.links] == ["captured"]
    assert len(manifest.tls) == 1
    session = manifest.tls[0]
    assert session.host == "127.0.0.1" and session.port == tls_site.port
    assert session.version.startswith("TLSv1.")
    assert session.cipher
    leaf_der = pki.leaf_cert.public_bytes(Encoding.DER)
    assert session.certificates[0].sha256 == "sha256:" + hashlib.sha256(leaf_der).hexdigest()
    assert "provenance test root" in session.certificates[0].issuer
    head, block = read_record(result.bundle, session.record)
    assert b"WARC-Type: metadata" in head
    details = json.loads(block)
    assert details["certificate_chain_pem"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert details["tls_version"] == session.version


def test_https_without_private_root_fails_clearly(tls_site: Server, store: Path,
                                                  tmp_path: Path) -> None:
    result = capture(f"{tls_site.base_url}/report", store=store)
    assert result.manifest.state == "FAILED"
    reason = result.manifest.resources[0].reason or ""
    assert "certificate verification failed" in reason

    cli = run_cli("capture", f"{tls_site.base_url}/report", "--archive-dir", str(tmp_path / "a"))
    assert cli.returncode == 3
    assert "certificate verification failed" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_cli_ca_bundle(tls_site: Server, pki: LoopbackPKI, tmp_path: Path) -> None:
    cli = run_cli("capture", f"{tls_site.base_url}/report", "--ca-bundle", str(pki.ca_pem),
                  "--archive-dir", str(tmp_path / "a"), "--json")
    assert cli.returncode == 0, cli.stderr
    summary = json.loads(cli.stdout)
    assert summary["state"] == "COMPLETE"


def test_bad_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    result = run_cli("capture", "https://127.0.0.1:9/", "--ca-bundle", str(bogus),
                     "--archive-dir", str(tmp_path / "a"))
    assert result.returncode == 2
    assert "not a readable PEM certificate file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_tls_peer_that_holds_the_connection_open_leaves_nothing_open(
        pki: LoopbackPKI) -> None:
    """The answer is whole, but the server neither closes nor answers close_notify.

    The exchange is recorded, and after a second the connection is aborted: a transport left
    open past the event loop warns when collected, and the warning fails the test.
    """
    stop = threading.Event()
    body = b"<p>held open</p>"

    def hold(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)
        handler.wfile.flush()
        stop.wait(30)  # until the test is over: no close, no close_notify

    settings = FetchSettings(user_agent="test", ca_bundle=pki.ca_pem)
    with serve({"/held": hold}, tls=pki.server_context) as server:
        url = f"{server.base_url}/held"
        try:
            exchange = asyncio.run(fetch(url, parse_fetchable(url), settings))
        finally:
            stop.set()
    try:
        assert (exchange.status, exchange.truncated, exchange.problem) == (200, None, None)
        assert exchange.raw_body.read() == body
        assert exchange.tls is not None
    finally:
        exchange.close()
    gc.collect()


def _answer_then_close_notify(context: ssl.SSLContext, answer: bytes,
                              sent: threading.Event) -> tuple[socket.socket, threading.Thread]:
    """A TLS server that writes ``answer`` and its close_notify in one TCP write.

    TLS in memory (``ssl.MemoryBIO``), so that nothing can send the two apart.
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(incoming, outgoing, server_side=True)

            def pump(step: Callable[[], bytes | None]) -> bytes | None:
                while True:
                    try:
                        return step()
                    except ssl.SSLWantReadError:
                        conn.sendall(outgoing.read())
                        incoming.write(conn.recv(65536) or b"")

            pump(tls.do_handshake)
            request = b""
            while b"\r\n\r\n" not in request:
                request += pump(lambda: tls.read(65536)) or b""
            tls.write(answer)
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.unwrap()  # puts our close_notify after the answer; the peer's comes later
            conn.sendall(outgoing.read())
            sent.set()
            while conn.recv(65536):
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize(("answer", "expected"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000,
     "response larger than the 100-byte cap; kept the prefix"),
    (b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
     "malformed HTTP response: illegal status line: bytearray(b'HTTP/1.1 2OO OK')"),
])
def test_an_answer_read_with_its_close_notify_keeps_the_reason_it_ended(
        pki: LoopbackPKI, monkeypatch: pytest.MonkeyPatch, answer: bytes, expected: str) -> None:
    """The last bytes and the close_notify in one read: closing then runs eof_received at once.

    The exchange must already be over by then, so that the EOF does not replace its reason
    (the size cap, a malformed head) with h11's view of a message cut short.
    """
    sent = threading.Event()
    original = fetch_module._ExchangeProtocol.connection_made

    def connection_made(self: fetch_module._ExchangeProtocol,
                        transport: asyncio.BaseTransport) -> None:
        original(self, transport)  # the request is out
        sent.wait(10)  # the loop reads nothing until the answer and close_notify are both in

    monkeypatch.setattr(fetch_module._ExchangeProtocol, "connection_made", connection_made)
    listener, thread = _answer_then_close_notify(pki.server_context, answer, sent)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/x"
    settings = FetchSettings(user_agent="test", ca_bundle=pki.ca_pem, max_bytes=100)
    try:
        try:
            exchange = asyncio.run(fetch(url, parse_fetchable(url), settings))
        except fetch_module.FetchError as error:
            reason = error.reason
        else:
            reason = exchange.problem or ""
            assert exchange.truncated == "length"
            exchange.close()
    finally:
        listener.close()
        thread.join(10)
    assert reason == expected
