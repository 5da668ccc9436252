"""Capture wall time: provenance vs sequential ``wget`` vs the critical-path bound.

A loopback server (asyncio on 127.0.0.1, port chosen by the OS, backlog 128, HTTP/1.1 with
keep-alive unless the client sends ``Connection: close``) serves one article whose
``<article>`` body links to N sources (N = 50), each answered after a 100 ms server-side delay,
plus two page requisites (a stylesheet and an image) answered at once. It routes on the path
only and ignores ``Host``. Each response goes out in one write. ``--server selectors`` serves
the same bytes from raw sockets and a timer heap (less CPU per request), ``--server threaded``
from ``http.server.ThreadingHTTPServer`` (the server of earlier results): its thread per
connection costs CPU that, on a 2-CPU machine, the capture then lacks.

The server runs in a child process (this script re-executed with ``--serve``) so that it never
competes with the measured capture for the GIL; wget is a separate process too. Nothing leaves
127.0.0.0/8: the host names below are answered by a static resolver table, without DNS.

Measured side by side in every repetition (rotating order, reversed every other repetition),
medians reported:

* ``provenance, a host per source``, the headline row: ``/many-hosts``, the same article with
  source n at ``http://source-<n>.bench.test:<port>/source/<n>``, N distinct host names that
  ``capture(..., resolver=static_resolver(...))`` maps to 127.0.0.1. Settings are the defaults
  (64 overall, 8 per host) except ``allow_private=True``: the address guard rightly refuses
  hosts other than the article's that resolve to loopback, and here they all do. With one
  source per host the per-host cap never binds, so it is judged against the plain bound;
* ``the same into a fresh, empty store``: every other row captures into a store of its own,
  created (with its catalog) during the warm-up and reused, as a user's store is; this row
  pays for creating the store and its catalog each time;
* ``the same into a store of 10,000 bundles``: a store filled during the warm-up with one real
  capture and hard-linked copies of it, catalogued (``--store-bundles N``), as a librarian's
  store is after a year: what a large store costs each capture;
* ``provenance, one host``: ``/article``, all sources on 127.0.0.1 (the article's host), default
  settings; the per-host cap of 8 forces ``ceil(N / 8)`` waves, so it is judged against
  ``article + ceil(N / 8) * source`` (the capped bound);
* ``provenance, one host, per_host=64``: the same page with the cap lifted;
* ``wget``: ``wget --warc-file=... -p -r -l1 --no-verbose -e robots=off URL`` on the one-host
  page, in a temp dir; its WARC is read back to check that all N sources are in it. The
  many-hosts page would need ``-H`` and real DNS for the invented names; wget is sequential, so
  it would take the same N x 100 ms there, and ``wget / provenance`` is given for both pages;
* the bound: one ``urllib`` GET of the article plus one GET of a source, timed back to back (no
  capture can finish before it has the article and then one 100 ms source);
* ``bare fan-out``: a minimal asyncio client (no parsing, no recording) that GETs the article
  and then all N sources at once: what this server and this (shared, noisy) machine deliver at
  that moment, the practical floor beside which the uncapped captures are judged;
* article extraction alone (warm), timed once before the repetitions.

Every provenance row checks that all N sources and both requisites were captured and that the
manifest state is ``COMPLETE`` (the many-hosts row also that the sources came from N hosts).
The 1-minute load average is recorded before each repetition; ``--wait-load L`` first waits
(up to 2 minutes) for it to drop to L.

Run: ``python benchmarks/capture_bench.py`` (``--quick`` for a smoke run, ``--reps K``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import heapq
import json
import math
import os
import platform
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

WGET = "/usr/bin/wget"
SERVER_LIFETIME = 1800.0  # the server process exits by itself after this many seconds
SOURCE_DELAY = 0.1
LOREM = ("Researchers compared the archived record with the published account and found that "
         "several details had changed between the two versions of the story. The difference "
         "matters because readers who follow a citation expect to see what the author saw. ")


# ------------------------------------------------------------------------------------ server


@functools.cache  # built once per process, not per request
def article_html(sources: int) -> bytes:
    paragraphs = []
    for n in range(sources):
        paragraphs.append(
            f"<p>{LOREM} In a statement published on day {n + 1}, the agency confirmed the "
            f'figures reported in <a href="/source/{n}">the original report number {n}</a>, '
            f"which the committee reviewed in detail before its hearing. {LOREM}</p>")
    body = "\n".join(paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Benchmark article with {sources} cited sources</title>
<meta name="author" content="Bench Writer">
<meta property="article:published_time" content="2024-05-01T10:00:00Z">
<link rel="stylesheet" href="/static/style.css">
</head><body>
<header><h1 class="site">The Loopback Gazette</h1></header>
<main><article>
<h1>Benchmark article with {sources} cited sources</h1>
<p class="byline">By Bench Writer, 1 May 2024</p>
<img src="/static/figure.png" alt="A figure">
{body}
</article></main>
<footer><p>Copyright the Loopback Gazette.</p></footer>
</body></html>
""".encode()


SOURCE_HOST = "source-{n}.bench.test"


def source_hosts(sources: int) -> dict[str, list[str]]:
    """The resolver table: every source host name answers 127.0.0.1, so nothing leaves loopback."""
    return {SOURCE_HOST.format(n=n): ["127.0.0.1"] for n in range(sources)}


@functools.cache  # built once per process, not per request
def many_hosts_html(sources: int, port: int) -> bytes:
    """The same article with source n at ``http://source-<n>.bench.test:<port>/source/<n>``."""
    page = article_html(sources).decode()
    for n in range(sources):
        host = SOURCE_HOST.format(n=n)
        page = page.replace(f'href="/source/{n}"', f'href="http://{host}:{port}/source/{n}"')
    return page.encode()


@functools.cache  # built once per process, not per request
def source_html(n: int) -> bytes:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report {n}</title></head>"
            f"<body><h1>Report {n}</h1><p>{LOREM * 4}</p></body></html>").encode()


CSS = b"body { font-family: serif; max-width: 40em; margin: auto; }\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def route(path: str, sources: int, port: int, counts: Counter[str]
          ) -> tuple[int, str, bytes, float]:
    """(status, media type, body, delay in seconds) for ``path``; the Host header is ignored."""
    if path == "/_stats":
        return 200, "application/json", json.dumps(dict(counts)).encode(), 0.0
    counts["source" if path.startswith("/source/") else path] += 1
    if path in ("/", "/article"):
        return 200, "text/html; charset=utf-8", article_html(sources), 0.0
    if path == "/many-hosts":
        return 200, "text/html; charset=utf-8", many_hosts_html(sources, port), 0.0
    if path == "/static/style.css":
        return 200, "text/css", CSS, 0.0
    if path == "/static/figure.png":
        return 200, "image/png", PNG, 0.0
    if path.startswith("/source/") and path[8:].isdigit():
        return 200, "text/html; charset=utf-8", source_html(int(path[8:])), SOURCE_DELAY
    return 404, "text/plain", b"not found", 0.0


def response_bytes(status: int, media_type: str, body: bytes) -> bytes:
    # Head and body go out in one write: two small writes on a keep-alive connection meet
    # Nagle + delayed ACK (about 40 ms per response), which would slow wget unfairly.
    reason = {200: "OK", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {media_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body


def parse_request(head: str) -> tuple[str, bool]:
    """(path, close after answering) of one request head; ValueError if it is not one.

    The connection closes after the answer if the client says ``Connection: close``, or
    speaks HTTP/1.0 without asking for keep-alive. Shared by the asyncio and selectors servers.
    """
    lines = head.split("\r\n")
    _method, target, version = lines[0].split(" ", 2)
    connection = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "connection":
            connection = value.strip().lower()
    close = "close" in connection or (version == "HTTP/1.0"
                                      and "keep-alive" not in connection)
    return target.split("?", 1)[0], close


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            sources: int, port: int, counts: Counter[str]) -> None:
    """HTTP/1.1 on one connection: keep-alive unless the client sends ``Connection: close``."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path, close = parse_request(head[:-4].decode("latin-1"))
            status, media_type, body, delay = route(path, sources, port, counts)
            if delay:
                await asyncio.sleep(delay)
            writer.write(response_bytes(status, media_type, body))
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass  # the client hung up (or sent nonsense): not the benchmark's business
    finally:
        writer.close()


async def _serve_async(sources: int, stop: asyncio.Event) -> None:
    counts: Counter[str] = Counter()
    port = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(reader, writer, sources, port, counts)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=128)
    port = int(server.sockets[0].getsockname()[1])
    print(port, flush=True)
    async with server:
        await stop.wait()


@dataclass
class _Peer:
    """One client connection of the selector server."""

    sock: socket.socket
    received: bytes = b""
    unsent: bytes = b""
    close_when_sent: bool = False
    writing: bool = False  # registered for EVENT_WRITE: part of a response waits to go out
    answering: bool = False  # a delayed response is due: later requests wait (HTTP/1.1 order)


class SelectorServer:
    """HTTP/1.1 on raw non-blocking sockets, one thread, one ``selectors`` loop, a timer heap.

    The 100 ms of each source are a timer, not a sleeping task: per request the server does
    an accept, a read, a split of the head, a heap push and a write, and spends about 60% of
    the CPU of the asyncio server's stream, task and sleep. A cross-check that what one
    server process spends on 50 requests at once is not what the capture is measured
    against (see benchmarks/README.md).
    """

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self.counts: Counter[str] = Counter()
        self.selector = selectors.DefaultSelector()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.timers: list[tuple[float, int, _Peer, bytes, bool]] = []
        self.sequence = 0

    def serve(self, stop_fd: int) -> None:
        """Serve until ``stop_fd`` is readable (the parent closed our stdin)."""
        self.selector.register(stop_fd, selectors.EVENT_READ)
        while True:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, events in self.selector.select(timeout):
                if key.fileobj == stop_fd:
                    return
                if key.fileobj is self.listener:
                    self._accept()
                elif events & selectors.EVENT_WRITE:
                    self._flush(key.data)
                else:
                    self._read(key.data)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _due, _n, peer, response, close = heapq.heappop(self.timers)
                peer.answering = False
                self._send(peer, response, close)
                if not close:
                    self._answer(peer)

    def _accept(self) -> None:
        while True:
            try:
                sock, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. a client gone before we took it: the selector tells us again
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = _Peer(sock)
            self.selector.register(sock, selectors.EVENT_READ, peer)

    def _read(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(peer)
            return
        peer.received += data
        self._answer(peer)

    def _answer(self, peer: _Peer) -> None:
        """Answer the complete requests received so far, in order."""
        while not peer.answering and not peer.close_when_sent and peer.sock.fileno() >= 0:
            end = peer.received.find(b"\r\n\r\n")
            if end < 0:
                return
            head, peer.received = peer.received[:end].decode("latin-1"), peer.received[end + 4:]
            try:
                path, close = parse_request(head)
            except ValueError:
                self._close(peer)
                return
            status, media_type, body, delay = route(path, self.sources, self.port, self.counts)
            response = response_bytes(status, media_type, body)
            if delay:
                self.sequence += 1
                heapq.heappush(self.timers, (time.monotonic() + delay, self.sequence, peer,
                                             response, close))
                peer.answering = True
                return
            self._send(peer, response, close)
            if close:
                return

    def _send(self, peer: _Peer, data: bytes, close: bool) -> None:
        if peer.sock.fileno() < 0:
            return  # the client hung up meanwhile
        peer.unsent += data
        peer.close_when_sent = peer.close_when_sent or close
        self._flush(peer)

    def _flush(self, peer: _Peer) -> None:
        try:
            while peer.unsent:
                sent = peer.sock.send(peer.unsent)
                peer.unsent = peer.unsent[sent:]
        except (BlockingIOError, InterruptedError):
            if not peer.writing:
                peer.writing = True
                self.selector.modify(peer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                     peer)
            return
        except OSError:
            self._close(peer)
            return
        if peer.close_when_sent:
            self._close(peer)
        elif peer.writing:
            peer.writing = False
            self.selector.modify(peer.sock, selectors.EVENT_READ, peer)

    def _close(self, peer: _Peer) -> None:
        if peer.sock.fileno() >= 0:
            self.selector.unregister(peer.sock)
            peer.sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up early is not the benchmark's business


def make_threaded_server(sources: int) -> _Server:
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive when the client wants it (wget does)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            port = int(cast(_Server, self.server).server_address[1])
            with lock:
                status, media_type, body, delay = route(self.path.split("?", 1)[0], sources,
                                                        port, counts)
            if delay:
                time.sleep(delay)
            self.wfile.write(response_bytes(status, media_type, body))

    return _Server(("127.0.0.1", 0), Handler)


SERVERS = ("asyncio", "selectors", "threaded")


def serve_main(sources: int, kind: str) -> None:
    """Child process: serve until stdin closes (the parent is gone) or the lifetime ends."""
    watchdog = threading.Timer(SERVER_LIFETIME, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    if kind == "selectors":
        lean = SelectorServer(sources)
        print(lean.port, flush=True)
        lean.serve(sys.stdin.fileno())
        return
    if kind == "threaded":
        server = make_threaded_server(sources)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(server.server_address[1], flush=True)
        sys.stdin.read()  # returns at EOF
        server.shutdown()
        server.server_close()
        return

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_eof() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
        await _serve_async(sources, stop)

    asyncio.run(main())


class ServerProcess:
    """The server child; ``close`` ends it (closing its stdin), killing it only as a fallback."""

    def __init__(self, sources: int, kind: str = "asyncio") -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--sources", str(sources), "--server", kind],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{port}"

    def stats(self) -> Counter[str]:
        with urllib.request.urlopen(f"{self.base}/_stats", timeout=10) as response:
            return Counter(json.loads(response.read()))

    def close(self) -> None:
        stdin: IO[str] | None = self.proc.stdin
        if stdin is not None:
            stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------- measurements


def run_provenance(url: str, sources: int, store: Path | None, *, per_host: int | None = None,
                   many_hosts: bool = False, cpu: list[float] | None = None) -> float:
    """One capture; checks that it got every source and requisite and is COMPLETE.

    ``store`` is the archive store to capture into (one per row, reused across repetitions, as
    a user's store is); None means a fresh, empty store, which is removed afterwards. The
    capture's CPU time (this process, all threads) is appended to ``cpu`` if given.
    """
    from provenance.capture.fetch import resolve, static_resolver
    from provenance.capture.options import CaptureSettings
    from provenance.capture.pipeline import capture

    kwargs: dict[str, Any] = {"requisites": True}
    if per_host is not None:
        kwargs["per_host"] = per_host
    if many_hosts:
        # The source names resolve to 127.0.0.1, which the address guard refuses on any host
        # but the article's; a real article's sources resolve to public addresses instead.
        kwargs["allow_private"] = True
    settings = CaptureSettings(**kwargs)
    resolver = static_resolver(source_hosts(sources)) if many_hosts else resolve
    target = store or Path(tempfile.mkdtemp(prefix="provbench-cap-"))
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = capture(url, store=target, settings=settings, signer=None, resolver=resolver)
        elapsed = time.perf_counter() - start
        if cpu is not None:
            cpu.append(time.process_time() - cpu_start)
    finally:
        if store is None:
            shutil.rmtree(target, ignore_errors=True)
    manifest = result.manifest
    linked = [r for r in manifest.resources
              if r.role == "linked_source" and r.outcome == "captured"]
    requisites = sum(1 for r in manifest.resources
                     if r.role == "requisite" and r.outcome == "captured")
    hosts = {urlsplit(r.url).hostname for r in linked}
    if (len(linked) != sources or requisites != 2 or manifest.state != "COMPLETE"
            or len(hosts) != (sources if many_hosts else 1)):
        raise RuntimeError(f"provenance captured {len(linked)}/{sources} sources from "
                           f"{len(hosts)} host(s), {requisites}/2 requisites, state "
                           f"{manifest.state}")
    return elapsed


def count_warc_sources(path: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    found = set()
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            if record.rec_type == "response" and "/source/" in uri:
                found.add(uri)
    return len(found)


def run_wget(url: str, sources: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="provbench-wget-"))
    try:
        command = [WGET, "--warc-file=bench", "-p", "-r", "-l1", "--no-verbose",
                   "-e", "robots=off", url]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"wget exited {done.returncode}: {done.stderr[-2000:]}")
        in_warc = count_warc_sources(work / "bench.warc.gz")
        in_log = sum(1 for line in done.stderr.splitlines() if "/source/" in line)
        if in_warc != sources or in_log != sources:
            raise RuntimeError(f"wget fetched {in_warc} sources (WARC), {in_log} (log); "
                               f"expected {sources}")
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def timed_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.perf_counter() - start


def run_bound(base: str) -> tuple[float, float]:
    """(article GET, source GET), each on a fresh connection, back to back."""
    return timed_get(f"{base}/article"), timed_get(f"{base}/source/0")


async def _raw_get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                 "\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return len(data)


async def _fan_out(port: int, sources: int) -> None:
    await _raw_get(port, "/article")
    await asyncio.gather(*(_raw_get(port, f"/source/{n}") for n in range(sources)))


def run_fan_out(base: str, sources: int) -> float:
    """A bare asyncio client: article, then all sources at once; no parsing, no recording.

    What this server and this machine can deliver right now: the practical floor for any
    capture of the page, measured beside it so that machine load shows up in both.
    """
    port = int(base.rsplit(":", 1)[1])
    start = time.perf_counter()
    asyncio.run(_fan_out(port, sources))
    return time.perf_counter() - start


def time_extraction(base: str, sources: int) -> float:
    """Time of the article extraction alone (trafilatura + link mapping), warm."""
    from provenance.capture.extract import extract_article

    with urllib.request.urlopen(f"{base}/article", timeout=30) as response:
        body = response.read()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        extraction = extract_article(body, f"{base}/article", "utf-8")
        times.append(time.perf_counter() - start)
    if len(extraction.body_links) != sources:
        raise RuntimeError(f"extractor found {len(extraction.body_links)} body links")
    return statistics.median(times)


# ---------------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


#: row key -> label, in report order
ROWS = (
    ("many_hosts", "provenance, a host per source (default*)"),
    ("many_hosts_cpu", "  its CPU time (process, all threads)"),
    ("many_hosts_fresh", "  the same into a fresh, empty store"),
    ("many_hosts_big", "  the same into a store of {bundles} bundles"),
    ("provenance", "provenance, one host (default: 8 per host)"),
    ("wide", "provenance, one host, per_host=64"),
    ("wget", "wget -p -r -l1 (sequential, one host)"),
    ("bound", "bound: article GET + one source GET"),
    ("article_get", "  article GET"),
    ("source_get", "  source GET"),
    ("capped_bound", "capped bound: article + ceil(N/8) waves"),
    ("fan_out", "bare asyncio fan-out (article, then all)"),
)

#: ratio key -> (numerator, denominator, label, target)
RATIOS = (
    ("many_over_bound", "many_hosts", "bound", "provenance (host per source) / bound", "<= 1.5"),
    ("wget_over_many", "wget", "many_hosts", "wget / provenance (host per source)", ">= 5"),
    ("many_over_fan_out", "many_hosts", "fan_out", "provenance (host per source) / fan-out", ""),
    ("fresh_over_bound", "many_hosts_fresh", "bound", "  the same, fresh store / bound", ""),
    ("big_over_many", "many_hosts_big", "many_hosts",
     "  the same, store of {bundles} / own store", ""),
    ("prov_over_capped", "provenance", "capped_bound", "provenance (one host) / capped bound",
     ""),
    ("wget_over_prov", "wget", "provenance", "wget / provenance (one host)", ">= 5"),
    ("prov_over_bound", "provenance", "bound", "provenance (one host) / bound", ""),
    ("wide_over_bound", "wide", "bound", "provenance (per_host=64) / bound", ""),
    ("wide_over_fan_out", "wide", "fan_out", "provenance (per_host=64) / bare fan-out", ""),
)


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float | None, patience: float = 120.0) -> None:
    """Before a repetition, wait (up to ``patience`` s) for the 1-minute load to drop to ``limit``.

    The machine is shared; a repetition measured while other tenants saturate both CPUs says
    more about them than about the capture. The load is recorded whatever happens.
    """
    if limit is None:
        return
    deadline = time.monotonic() + patience
    while load_average() > limit and time.monotonic() < deadline:
        time.sleep(5)


def fill_store(store: Path, url: str, sources: int, bundles: int) -> None:
    """A store of ``bundles`` bundles, catalogued: one real capture and hard-linked copies.

    A librarian's store after a year of captures: what every capture into it must not pay
    for (it lists the store to find its predecessor and what dead captures left behind).
    """
    from provenance.catalog import reindex

    store.mkdir()
    run_provenance(url, sources, store, many_hosts=True)
    [first] = [path for path in store.iterdir() if path.is_dir()]
    for n in range(bundles - 1):
        shutil.copytree(first, store / f"{first.name}-copy{n:06d}", copy_function=os.link)
    reindex(store)
    # Written out now: else the filesystem's journal commits these 30,000 new directories
    # during the first measured captures' fsyncs, which then take up to a second.
    os.sync()


def bench(sources: int, reps: int, quiet: float | None = None,
          kind: str = "asyncio", store_bundles: int = 10_000) -> dict[str, Any]:
    server = ServerProcess(sources, kind)
    stores = Path(tempfile.mkdtemp(prefix="provbench-stores-"))
    try:
        url = f"{server.base}/article"
        many_url = f"{server.base}/many-hosts"
        store = {key: stores / key for key in ("many_hosts", "provenance", "wide")}
        before = server.stats()
        # warm-up: imports, trafilatura's first-call setup, page cache, and the first capture
        # into each row's store (which creates its catalog); not measured
        run_provenance(many_url, sources, store["many_hosts"], many_hosts=True)
        run_provenance(url, sources, store["provenance"])
        run_provenance(url, sources, store["wide"], per_host=64)
        store["big"] = stores / "big"
        fill_store(store["big"], many_url, sources, store_bundles)
        run_provenance(many_url, sources, store["big"], many_hosts=True)
        run_bound(server.base)
        extraction = time_extraction(server.base, sources)
        rows: dict[str, list[float]] = {key: [] for key, _ in ROWS}
        ratios: dict[str, list[float]] = {key: [] for key, *_ in RATIOS}
        loads: list[float] = []
        waves = math.ceil(sources / 8)

        def bound() -> None:
            article, source = run_bound(server.base)
            rows["article_get"].append(article)
            rows["source_get"].append(source)
            rows["bound"].append(article + source)
            rows["capped_bound"].append(article + waves * source)

        steps: list[Callable[[], None]] = [
            lambda: rows["many_hosts"].append(
                run_provenance(many_url, sources, store["many_hosts"], many_hosts=True,
                               cpu=rows["many_hosts_cpu"])),
            lambda: rows["many_hosts_fresh"].append(
                run_provenance(many_url, sources, None, many_hosts=True)),
            lambda: rows["many_hosts_big"].append(
                run_provenance(many_url, sources, store["big"], many_hosts=True)),
            lambda: rows["provenance"].append(run_provenance(url, sources, store["provenance"])),
            lambda: rows["wide"].append(
                run_provenance(url, sources, store["wide"], per_host=64)),
            lambda: rows["wget"].append(run_wget(url, sources)),
            bound,
            lambda: rows["fan_out"].append(run_fan_out(server.base, sources)),
        ]
        for rep in range(reps):
            wait_for_quiet(quiet)
            loads.append(load_average())
            # Rotate the order so that no row always runs first after an idle gap, and reverse
            # it every other repetition so that no row always follows the same one: a
            # capture right after another runs on warm caches (about 5 ms faster).
            order = steps if rep % 2 == 0 else steps[::-1]
            for step in order[rep % len(order):] + order[: rep % len(order)]:
                step()
            for key, numerator, denominator, *_ in RATIOS:
                ratios[key].append(rows[numerator][-1] / rows[denominator][-1])
            print(f"  rep {rep + 1}/{reps} (load {loads[-1]:.2f}): "
                  + "  ".join(f"{key} {rows[key][-1]:.3f}s" for key in
                              ("many_hosts", "many_hosts_cpu", "many_hosts_fresh",
                               "many_hosts_big", "provenance",
                               "wide", "wget", "bound", "fan_out"))
                  + f"  many-hosts/bound {ratios['many_over_bound'][-1]:.2f}",
                  file=sys.stderr)
        hits = server.stats() - before
    finally:
        server.close()
        shutil.rmtree(stores, ignore_errors=True)
    return {"benchmark": "capture", "sources": sources, "reps": reps,
            "source_delay_s": SOURCE_DELAY, "extraction_s": extraction,
            "server_source_hits": hits["source"],
            "medians": {k: statistics.median(v) for k, v in rows.items()},
            "ratios": {k: statistics.median(v) for k, v in ratios.items()},
            "load_average": {"min": min(loads), "max": max(loads), "each": loads},
            "server": kind, "store_bundles": store_bundles,
            "samples": rows, "ratio_samples": ratios, **machine()}


def print_report(result: dict[str, Any]) -> None:
    m, r = result["medians"], result["ratios"]
    load = result["load_average"]
    print(f"\ncapture benchmark: {result['sources']} sources x {SOURCE_DELAY * 1000:.0f} ms, "
          f"{result['reps']} reps, median ({result['date']}, nproc={result['nproc']}, "
          f"python {result['python']}, load average {load['min']:.2f}-{load['max']:.2f}, "
          f"{result['server']} server)")
    print(f"{'measurement':<48}{'seconds':>10}")
    bundles = f"{result['store_bundles']:,}"
    for key, label in ROWS:
        print(f"{label.format(bundles=bundles):<48}{m[key]:>10.3f}")
    print(f"{'article extraction alone (warm)':<48}{result['extraction_s']:>10.3f}")
    print("* default settings except allow_private=True: the source host names resolve to "
          "127.0.0.1 here")
    print(f"\n{'ratio (median of per-rep ratios)':<48}{'value':>10}{'min-max':>13}  target")
    for key, _num, _den, label, target in RATIOS:
        low, high = min(result["ratio_samples"][key]), max(result["ratio_samples"][key])
        print(f"{label.format(bundles=bundles):<48}{r[key]:>10.2f}"
              f"{f'{low:.2f}-{high:.2f}':>13}  {target}")
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "ratio_samples")},
                     sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 sources, 2 repetitions")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--sources", type=int, default=None)
    parser.add_argument("--wait-load", type=float, default=None, metavar="L",
                        help="before each repetition wait (up to 2 min) for load average <= L")
    parser.add_argument("--server", choices=SERVERS, default="asyncio",
                        help="asyncio: asyncio streams (the default, since 2026-11-26 14:40 "
                             "UTC); selectors: raw sockets and a timer heap, less CPU per "
                             "request (a cross-check); threaded: http.server's "
                             "ThreadingHTTPServer (before)")
    parser.add_argument("--store-bundles", type=int, default=None, metavar="N",
                        help="bundles in the large store of the store-size row "
                             "(default 10000; --quick: 200)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sources = args.sources or (10 if args.quick else 50)
    if args.serve:
        serve_main(sources, args.server)
        return
    reps = args.reps or (2 if args.quick else 5)
    bundles = args.store_bundles or (200 if args.quick else 10_000)
    print_report(bench(sources, reps, args.wait_load, args.server, bundles))


if __name__ == "__main__":
    main()
