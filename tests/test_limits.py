"""Limits and politeness on real loopback servers: caps, redirects, concurrency, bad links."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from helpers import make_signer, read_record
from provenance.capture import fetch as fetch_module
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from provenance.capture.urls import parse_fetchable
from provenance.verify import verify_bundle
from servers import RawRoute, html, make_pki, raw, serve

PARAGRAPH = ("The council's own minutes, published after the vote, list every amendment that was "
             "tabled and withdrawn during the session, and the sources below record each step. ")


def article(links: list[str]) -> str:
    items = "".join(f'<p>{PARAGRAPH}See <a href="{href}">source {n}</a> for details.</p>'
                    for n, href in enumerate(links))
    return (f"<!doctype html><html lang='en'><head><title>Limits</title></head><body>"
            f"<article><h1>Limits</h1><p>{PARAGRAPH * 3}</p>{items}</article></body></html>")


def test_size_cap_keeps_prefix_and_marks_truncation(store: Path) -> None:
    big = b"x" * 300_000
    routes = {"/a": html(article(["/big"])),
              "/big": raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: 300000\r\n\r\n" + big)}
    signer, _key = make_signer()
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store, signer=signer,
                         settings=CaptureSettings(max_bytes=100_000, requisites=False))
    big_resource = next(r for r in result.manifest.resources if r.url.endswith("/big"))
    assert big_resource.outcome == "truncated"
    assert big_resource.reason is not None and "100000-byte cap" in big_resource.reason
    assert big_resource.response is not None
    head, block = read_record(result.bundle, big_resource.response)
    assert b"WARC-Truncated: length" in head
    assert block.endswith(b"x" * 1000) and len(block.split(b"\r\n\r\n", 1)[1]) == 100_000
    assert result.manifest.state == "PARTIAL"
    assert verify_bundle(result.bundle, trusted=[signer.fingerprint]).verdict == "VERIFIED"


def test_redirect_cap_and_loop(store: Path) -> None:
    def hop(target: str) -> RawRoute:
        return raw(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
                   .encode())

    routes = {"/a": html(article(["/r1", "/loop1"])), "/r1": hop("/r2"), "/r2": hop("/r3"),
              "/r3": hop("/end"), "/end": html("<p>end</p>"),
              "/loop1": hop("/loop2"), "/loop2": hop("/loop1")}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(max_redirects=2, requisites=False))
    reasons = {link.url.rsplit("/", 1)[1]: link.reason for link in result.manifest.links}
    assert reasons["r1"] == "too many redirects (more than 2)"
    assert reasons["loop1"] is not None and reasons["loop1"].startswith("redirect loop")


def test_user_agent_and_per_host_bound(store: Path) -> None:
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}
    agents: list[str] = []
    release = threading.Event()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
            agents.append(handler.headers.get("User-Agent", ""))
        release.wait(0.15)  # hold the connection so that overlap can be observed
        with lock:
            state["in_flight"] -= 1
        body = b"<p>source</p>"
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)

    links = [f"/s{n}" for n in range(12)]
    routes = {"/a": html(article(links)), **{link: slow for link in links}}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(per_host=3, requisites=False,
                                                  user_agent="evidence-bot/1 (test)"))
    assert result.manifest.state == "COMPLETE"
    assert len(agents) == 12 and set(agents) == {"evidence-bot/1 (test)"}
    assert 1 < state["peak"] <= 3  # concurrent, and never more than --per-host allows


def test_malformed_link_is_skipped_not_fatal(store: Path) -> None:
    routes = {"/a": html(article(["http://[::1", "http://ok.invalid:99999/x", "https://%zz/", "/fine"])),
              "/fine": html("<p>fine</p>")}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(requisites=False))
    outcomes = {link.url: (link.outcome, link.reason) for link in result.manifest.links}
    assert outcomes["http://[::1"][0] == "skipped"
    assert outcomes["http://ok.invalid:99999/x"][0] == "skipped"
    assert outcomes["https://%zz/"][0] == "skipped"  # refused before any DNS lookup
    assert outcomes[f"{server.base_url}/fine"] == ("captured", None)
    assert result.manifest.state == "COMPLETE"


def test_article_cut_short_is_partial(store: Path) -> None:
    page = article([]).encode()
    routes = {"/a": raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                        + str(len(page) + 500).encode() + b"\r\n\r\n" + page)}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(requisites=False))
    assert result.manifest.resources[0].outcome == "truncated"
    assert result.manifest.state == "PARTIAL"
    assert "cut short" in (result.manifest.state_reason or "")


def test_a_reset_mid_body_is_a_truncation_not_a_capture(store: Path) -> None:
    """A connection reset before Content-Length is reached cuts the source short.

    The bytes that came are kept (Linux hands them over before the reset), and the record,
    the resource and the link all say the body is incomplete.
    """
    def reset(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            b"Content-Length: 10000\r\n\r\n" + b"x" * 500)
        handler.wfile.flush()
        # SO_LINGER 0: close() sends a reset instead of an orderly end.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
        handler.connection.close()

    with serve({"/a": html(article(["/reset"])), "/reset": reset}) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(requisites=False))
    source = next(r for r in result.manifest.resources if r.url.endswith("/reset"))
    assert (source.outcome, source.reason) == ("truncated", "Connection reset by peer")
    assert source.response is not None
    head, block = read_record(result.bundle, source.response)
    assert b"\r\nWARC-Truncated: disconnect\r\n" in head
    assert block.endswith(b"\r\n\r\n" + b"x" * 500)
    link = result.manifest.links[0]
    assert (link.outcome, link.reason) == ("captured", "truncated: Connection reset by peer")
    assert result.manifest.state == "PARTIAL"


def test_malformed_redirect_location_is_a_failure_not_a_crash(store: Path) -> None:
    routes = {"/a": html(article(["/bad-redirect"])),
              "/bad-redirect": raw(b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\n"
                                   b"Content-Length: 0\r\n\r\n")}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(requisites=False))
    link = result.manifest.links[0]
    assert link.outcome == "failed"
    assert link.reason is not None and "malformed Location" in link.reason
    assert result.manifest.state == "PARTIAL"


def test_every_limit_hit_is_recorded_in_the_manifest(store: Path) -> None:
    """Size cap, total time, read timeout, redirect cap, link cap and decode cap, each named."""
    stop = threading.Event()

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            b"Content-Length: 100000\r\n\r\n")
        # A slow-drip server: a byte every 20 ms, never finishing within the time limit.
        while not stop.wait(0.02):
            try:
                handler.wfile.write(b".")
                handler.wfile.flush()
            except OSError:
                return

    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            b"Content-Length: 10\r\n\r\nabc")
        handler.wfile.flush()
        stop.wait(10)  # then silence: the read timeout must end it

    def hop(target: str) -> RawRoute:
        return raw(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
                   .encode())

    css = b"body { color: black }\n" * 800  # 17,600 bytes: under max_bytes, over the decode cap
    links = ["/big", "/drip", "/stall", "/r1", "/ok1", "/ok2", "/over1", "/over2"]
    page = article(links).replace("<title>", '<link rel="stylesheet" href="/site.css"><title>')
    routes = {"/a": html(page), "/drip": drip, "/stall": stall,
              "/big": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n" + b"x" * 50000),
              "/r1": hop("/r2"), "/r2": hop("/r3"), "/r3": hop("/ok1"),
              "/ok1": html("<p>1</p>"), "/ok2": html("<p>2</p>"),
              "/site.css": raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: "
                               + str(len(css)).encode() + b"\r\n\r\n" + css)}
    # Generous timeouts: the quick resources must finish well inside them on a loaded machine.
    settings = CaptureSettings(max_bytes=20_000, total_timeout=4.0, read_timeout=1.5,
                               max_redirects=1, max_links=6, max_decoded_bytes=15_000)
    try:
        with serve(routes) as server:
            result = capture(f"{server.base_url}/a", store=store, settings=settings)
    finally:
        stop.set()
    hits = {(hit.limit, hit.url.rsplit("/", 1)[1]): hit for hit in result.manifest.limits_hit}
    assert set(hits) == {("max_bytes", "big"), ("total_timeout", "drip"),
                         ("read_timeout", "stall"), ("max_redirects", "r1"),
                         ("max_links", "a"), ("max_decoded_bytes", "site.css")}, hits
    by_id = {r.id: r for r in result.manifest.resources}
    for (limit, _name), hit in hits.items():
        if limit != "max_links":
            assert hit.resource in by_id, hit
    assert by_id[hits[("total_timeout", "drip")].resource or ""].outcome == "truncated"
    assert "2 more body link(s)" in hits[("max_links", "a")].detail
    assert result.manifest.options.max_decoded_bytes == 15_000


def test_a_resolver_that_never_answers_hits_the_connect_timeout(store: Path) -> None:
    async def never(_host: str, _port: int) -> list[str]:
        await asyncio.Event().wait()  # a DNS server that swallows the question
        return []

    result = capture("http://silent.test/a", store=store, resolver=never,
                     settings=CaptureSettings(connect_timeout=0.3))
    manifest = result.manifest
    assert manifest.state == "FAILED"
    assert "DNS lookup for silent.test timed out after 0.3s" in (manifest.state_reason or "")
    assert [(hit.limit, hit.url) for hit in manifest.limits_hit] == [
        ("connect_timeout", "http://silent.test/a")]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_fetch_cancelled_while_closing_keeps_no_file_open(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scheme: str) -> None:
    """Cancelled after its answer came, while its connection closes: the spools are closed.

    Such an exchange is never returned, so nobody else could close them (a capture being torn
    down cancels its fetches at any point). An unclosed spool warns when collected, and the
    warning fails the test. Over TLS the closing waits for the peer's close_notify.
    """
    pki = make_pki(tmp_path) if scheme == "https" else None
    closing = asyncio.Event()
    original = fetch_module._ExchangeProtocol.closed

    async def closed(self: fetch_module._ExchangeProtocol) -> None:
        closing.set()  # observed, then the real closing goes on
        await original(self)

    monkeypatch.setattr(fetch_module._ExchangeProtocol, "closed", closed)
    settings = fetch_module.FetchSettings(user_agent="test",
                                          ca_bundle=pki.ca_pem if pki else None)

    async def main(url: str) -> None:
        task = asyncio.create_task(fetch_module.fetch(
            url, parse_fetchable(url), settings, keep_entity=lambda _media: True))
        await closing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with serve({"/x": html("<p>whole</p>")},
               tls=pki.server_context if pki else None) as server:
        asyncio.run(main(f"{server.base_url}/x"))
    gc.collect()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_fetch_cancelled_as_its_connection_comes_up_leaves_nothing_behind(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scheme: str) -> None:
    """Cancelled after the request went out but before the connection was handed over.

    Nothing of that attempt may stay open, and no outcome may be left unread (asyncio would
    report "Future exception was never retrieved"). Over TLS, connection_made comes after
    the handshake.
    """
    pki = make_pki(tmp_path) if scheme == "https" else None
    original = fetch_module._ExchangeProtocol.connection_made
    tasks: list[asyncio.Task[fetch_module.Exchange]] = []

    def connection_made(self: fetch_module._ExchangeProtocol,
                        transport: asyncio.BaseTransport) -> None:
        original(self, transport)  # the request is out now
        tasks[0].cancel()  # and create_connection has not returned yet

    monkeypatch.setattr(fetch_module._ExchangeProtocol, "connection_made", connection_made)
    settings = fetch_module.FetchSettings(user_agent="test",
                                          ca_bundle=pki.ca_pem if pki else None)
    reported: list[dict[str, object]] = []

    async def main(url: str) -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: reported.append(context))
        tasks.append(asyncio.create_task(fetch_module.fetch(
            url, parse_fetchable(url), settings, keep_entity=lambda _media: True)))
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]

    with serve({"/x": html("<p>whole</p>")},
               tls=pki.server_context if pki else None) as server:
        asyncio.run(main(f"{server.base_url}/x"))
    gc.collect()
    assert reported == []


def test_a_head_over_256_kib_is_refused_however_it_is_read(store: Path) -> None:
    """A response head past 256 KiB fails the source, whether it comes in one read or many."""
    head = (b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 300_000
            + b"\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    routes = {"/a": html(article(["/big-head"])), "/big-head": raw(head)}
    with serve(routes) as server:
        result = capture(f"{server.base_url}/a", store=store,
                         settings=CaptureSettings(requisites=False))
    source = next(r for r in result.manifest.resources if r.url.endswith("/big-head"))
    assert (source.outcome, source.reason) == (
        "failed", "malformed HTTP response: header block too large")
    assert source.peer_ip == "127.0.0.1"


def test_host_names_the_resolver_cannot_encode_are_refused_not_fatal(store: Path) -> None:
    """An empty label or one over 63 characters (RFC 1035) is a bad link, not a crash."""
    long_label = "a" * 64
    page = article([f"http://{long_label}.example/report"]).replace(
        "<title>", '<link rel="icon" href="http://a..b/favicon.ico"><title>')
    with serve({"/a": html(page)}) as server:
        result = capture(f"{server.base_url}/a", store=store)
    link = result.manifest.links[0]
    assert (link.outcome, link.reason) == (
        "skipped", f"invalid URL 'http://{long_label}.example/report': bad host name")
    icon = next(r for r in result.manifest.resources if r.role == "requisite")
    assert (icon.outcome, icon.reason) == (
        "failed", "invalid URL 'http://a..b/favicon.ico': bad host name")


@pytest.mark.parametrize(("url", "extra"), [
    ("http://example.org/", ()),
    ("https://example.org:8443/path/%C3%A9t%C3%A9?q=1&r=a%20b", (("Cookie", 'a=1; b="two"'),)),
    ("http://[::1]:8080/x", (("Accept-Language", "de"), ("X-Empty", ""))),
    ("https://b\u00fccher.example/b\u00fccher?\u00e4=1", (("Authorization", "Bearer t"),
                                                   ("x-lower", "inner  spaces\tand a tab"))),
])
def test_the_request_we_write_is_the_one_h11_would_write(url: str,
                                                        extra: tuple[tuple[str, str], ...]) -> None:
    """We write request heads ourselves (h11 hears of them later); they must not differ."""
    import h11

    settings = fetch_module.FetchSettings(user_agent="provenance/1.0 (+https://example.org/)",
                                          extra_headers=(("Accept", "text/html"),))
    parts = parse_fetchable(url)
    target = fetch_module._request_target(parts)
    headers = fetch_module.build_request(parts, settings, extra)
    conn = h11.Connection(our_role=h11.CLIENT)
    expected = conn.send(h11.Request(method="GET", target=target, headers=headers))
    assert fetch_module.request_head(target, headers) == expected + conn.send(h11.EndOfMessage())


def test_any_value_both_accept_is_written_as_h11_writes_it() -> None:
    import random

    import h11

    rng = random.Random(8785)
    alphabet = "".join(map(chr, range(0x20, 0x7F))) + "\t"
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        headers = [("X-Extra", value), ("Host", "example.org")]  # Host goes first either way
        try:
            ours = fetch_module.request_head("/", headers)
        except fetch_module.FetchError:
            assert value != value.strip(" \t")  # only a space or tab at an end is refused
            continue
        conn = h11.Connection(our_role=h11.CLIENT)
        assert ours == (conn.send(h11.Request(method="GET", target="/", headers=headers))
                        + conn.send(h11.EndOfMessage()))


@pytest.mark.parametrize(("target", "headers", "reason"), [
    ("/a b", [("Host", "h")], "not a valid request target"),
    ("/", [("Host", "h"), ("X-Injected", "a\r\nEvil: yes")], "not valid HTTP"),
    ("/", [("Host", "h"), ("Bad Name", "v")], "not valid HTTP"),
    ("/", [("Host", "h"), ("X-Trailing", "v ")], "not valid HTTP"),
    ("/", [("Host", "h"), ("X-Null", "a\x00b")], "not valid HTTP"),
    ("/", [("Host", "h"), ("X-Utf8", "caf\u00e9")], "not valid HTTP"),
    ("/", [("Host", "h"), ("host", "other")], "two Host fields"),
    ("/", [("Host", "h"), ("Content-Length", "0")], "a GET has no body"),
    ("/", [("Host", "h"), ("Transfer-Encoding", "chunked")], "a GET has no body"),
    ("/", [("Accept", "*/*")], "no Host field"),
])
def test_a_request_http_cannot_carry_is_refused(target: str, headers: list[tuple[str, str]],
                                                reason: str) -> None:
    with pytest.raises(fetch_module.FetchError, match="cannot send") as raised:
        fetch_module.request_head(target, headers)
    assert reason in raised.value.reason


@pytest.mark.parametrize("settings", [
    {"extra_headers": (("Host", "elsewhere.example"),)},
    {"extra_headers": (("Content-Length", "0"),)},
    {"extra_headers": (("X-Token", "abc "),)},
    {"extra_headers": (("X Token", "abc"),)},
    {"user_agent": "bot/1.0 "},
])
def test_library_settings_are_held_to_the_rules_of_the_command_line(
        settings: dict[str, object]) -> None:
    from provenance.errors import UsageError

    with pytest.raises(UsageError):
        CaptureSettings(**settings)  # type: ignore[arg-type]


def _bare_receiver() -> fetch_module._Receiver:
    """A receiver for a GET of / (its bytes are fed directly, with no connection)."""
    return fetch_module._Receiver(fetch_module.FetchSettings(user_agent="t"),
                                  lambda _media: False, "/", [("Host", "h")])


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",  # bare LF (RFC 9112 section 2.2)
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
])
def test_a_head_is_found_however_its_bytes_are_split(response: bytes) -> None:
    """Each read is searched only where a blank line can still be (not the whole head again).

    Split at every point, and read a byte at a time, the stored head and body must be what
    one read gives, including a blank line that straddles two or three reads.
    """
    def receive(pieces: list[bytes]) -> tuple[bytes, bytes, bytes]:
        receiver = _bare_receiver()
        seen = b"".join(receiver.take(piece) for piece in pieces)
        receiver.raw_body.seek(0)
        stored = bytes(receiver.head), receiver.raw_body.read(), seen
        receiver.close()
        return stored

    whole = receive([response])
    first_head_end = response.index(b"\n\n" if b"\r" not in response else b"\r\n\r\n")
    first_head_end += 2 if b"\r" not in response else 4
    assert whole == (response[:first_head_end], response[first_head_end:], response)
    for cut in range(1, len(response)):
        assert receive([response[:cut], response[cut:]]) == whole
        for second in range(cut + 1, min(cut + 4, len(response))):
            assert receive([response[:cut], response[cut:second], response[second:]]) == whole
    assert receive([response[i:i + 1] for i in range(len(response))]) == whole


@pytest.mark.parametrize("first_heads", [b"", b"HTTP/1.1 100 Continue\r\n\r\n"])
def test_each_read_of_a_head_is_searched_only_where_its_end_can_be(
        monkeypatch: pytest.MonkeyPatch, first_heads: bytes) -> None:
    """Searching the whole head again per read is quadratic: 18.7 s of CPU for a 64 KiB head
    sent a byte at a time. Checked on what is searched, not on a clock: each search covers at
    most the new read and the 3 bytes before it where a blank line can begin."""
    spans: list[int] = []
    original = fetch_module._find_head_end

    def find(buffer: bytes | bytearray, start: int = 0) -> int:
        spans.append(len(buffer) - start)
        return original(buffer, start)

    monkeypatch.setattr(fetch_module, "_find_head_end", find)
    head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 4096 + b"\r\nContent-Length: 0\r\n\r\n"
    receiver = _bare_receiver()
    response = first_heads + head
    for at in range(len(response)):
        receiver.take(response[at:at + 1])
    receiver.close()
    assert receiver.final_head_done
    assert len(spans) >= len(head) and max(spans) <= 4
