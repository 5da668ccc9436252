"""Capture wall time: provenance vs sequential ``wget`` vs the critical-path bound.

A loopback server (``ThreadingHTTPServer`` on 127.0.0.1, port chosen by the OS, daemon threads,
listen backlog 128) serves one article whose ``<article>`` body links to N sources
(``/source/0`` .. ``/source/N-1``, N = 50), each answered after a 100 ms server-side delay, plus
two page requisites (a stylesheet and an image) answered at once.

The server runs in a child process (this script re-executed with ``--serve``) so that its
threads never compete with the measured capture for the GIL; wget is a separate process too.

Measured side by side in every repetition, medians reported:

* ``provenance``: ``capture(url, store=<fresh temp dir>, settings=CaptureSettings(
  requisites=True), signer=None)`` with the default concurrency (16 overall, 8 per host);
* ``provenance (wide)``: the same with ``concurrency=64, per_host=64``, i.e. no politeness cap,
  to separate the per-host limit from the tool's own overhead;
* ``wget``: ``wget --warc-file=... -p -r -l1 --no-verbose -e robots=off URL`` in a temp dir
  (sequential by design); its WARC is read back to check that all N sources are in it;
* the critical-path bound: one ``urllib`` GET of the article plus one GET of a source, timed
  back to back (no capture can finish before it has the article and then one 100 ms source).
  With a per-host cap of P, the sources must come in ``ceil(N / P)`` waves, so the bound a
  capture honouring that cap can reach is ``article + ceil(N / P) * source``; both are printed.
* ``bare fan-out``: a minimal asyncio client (no parsing, no recording) that GETs the article
  and then all N sources at once: what this server and this (shared, noisy) machine deliver at
  that moment, the practical floor beside which the wide capture is judged;
* ``provenance (two hosts)``: the default settings on ``/two-hosts``, the same article with its
  first N/2 links on ``127.0.0.1`` and the rest on ``localhost`` (which must resolve to
  127.0.0.1 only; checked). Two hosts of 8 slots each fit in the 16 overall slots, so its
  capped bound is ``article + ceil(N / 2 / 8) * source``.

Run: ``python benchmarks/capture_bench.py`` (``--quick`` for a smoke run, ``--reps K``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, cast

WGET = "/usr/bin/wget"
SERVER_LIFETIME = 1800.0  # the server process exits by itself after this many seconds
SOURCE_DELAY = 0.1
LOREM = ("Researchers compared the archived record with the published account and found that "
         "several details had changed between the two versions of the story. The difference "
         "matters because readers who follow a citation expect to see what the author saw. ")


# ------------------------------------------------------------------------------------ server


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


def two_host_html(sources: int, port: int) -> bytes:
    """The same article, its first half of links on 127.0.0.1, the second half on localhost.

    Both names resolve to 127.0.0.1 (checked at start-up), so traffic stays on loopback, but
    provenance counts them as two hosts for its per-host limit.
    """
    page = article_html(sources).decode()
    for n in range(sources // 2, sources):
        page = page.replace(f'href="/source/{n}"', f'href="http://localhost:{port}/source/{n}"')
    return page.encode()


def source_html(n: int) -> bytes:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report {n}</title></head>"
            f"<body><h1>Report {n}</h1><p>{LOREM * 4}</p></body></html>").encode()


CSS = b"body { font-family: serif; max-width: 40em; margin: auto; }\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up early is not the benchmark's business


def make_server(sources: int) -> _Server:
    article = article_html(sources)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive when the client wants it (wget does)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, media_type: str, body: bytes) -> None:
            # One write for head and body: two small writes on a keep-alive connection meet
            # Nagle + delayed ACK (about 40 ms per response), which would slow wget unfairly.
            reason = {200: "OK", 404: "Not Found"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {media_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
            self.wfile.write(head + body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_stats":
                with lock:
                    stats = json.dumps(dict(counts)).encode()
                self._send(200, "application/json", stats)
                return
            with lock:
                counts["source" if path.startswith("/source/") else path] += 1
            if path in ("/", "/article"):
                self._send(200, "text/html; charset=utf-8", article)
            elif path == "/two-hosts":
                port = int(cast(_Server, self.server).server_address[1])
                self._send(200, "text/html; charset=utf-8", two_host_html(sources, port))
            elif path == "/static/style.css":
                self._send(200, "text/css", CSS)
            elif path == "/static/figure.png":
                self._send(200, "image/png", PNG)
            elif path.startswith("/source/") and path[8:].isdigit():
                time.sleep(SOURCE_DELAY)
                self._send(200, "text/html; charset=utf-8", source_html(int(path[8:])))
            else:
                self._send(404, "text/plain", b"not found")

    return _Server(("127.0.0.1", 0), Handler)


def serve_main(sources: int) -> None:
    """Child process: serve until stdin closes (the parent is gone) or the lifetime ends."""
    server = make_server(sources)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    watchdog = threading.Timer(SERVER_LIFETIME, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    sys.stdin.read()  # returns at EOF
    server.shutdown()
    server.server_close()


class ServerProcess:
    """The server child; ``close`` ends it (closing its stdin), killing it only as a fallback."""

    def __init__(self, sources: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--sources", str(sources)],
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


def run_provenance(url: str, sources: int, concurrency: int | None,
                   per_host: int | None) -> float:
    from provenance.capture.options import CaptureSettings
    from provenance.capture.pipeline import capture

    kwargs: dict[str, Any] = {"requisites": True}
    if concurrency is not None:
        kwargs["concurrency"] = concurrency
    if per_host is not None:
        kwargs["per_host"] = per_host
    settings = CaptureSettings(**kwargs)
    store = Path(tempfile.mkdtemp(prefix="provbench-cap-"))
    try:
        start = time.perf_counter()
        result = capture(url, store=store, settings=settings, signer=None)
        elapsed = time.perf_counter() - start
        manifest = result.manifest
        captured = sum(1 for r in manifest.resources
                       if r.role == "linked_source" and r.outcome == "captured")
        requisites = sum(1 for r in manifest.resources
                         if r.role == "requisite" and r.outcome == "captured")
        if captured != sources or requisites != 2 or manifest.state != "COMPLETE":
            raise RuntimeError(f"provenance captured {captured}/{sources} sources, "
                               f"{requisites}/2 requisites, state {manifest.state}")
        return elapsed
    finally:
        shutil.rmtree(store, ignore_errors=True)


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


def localhost_is_loopback_only() -> bool:
    import socket

    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    return {info[4][0] for info in infos} == {"127.0.0.1"}


def bench(sources: int, reps: int) -> dict[str, Any]:
    two_hosts = localhost_is_loopback_only()
    if not two_hosts:
        print("  localhost does not resolve to 127.0.0.1 only: skipping the two-host page",
              file=sys.stderr)
    server = ServerProcess(sources)
    try:
        url = f"{server.base}/article"
        before = server.stats()
        # warm-up: imports, trafilatura's first-call setup, page cache; not measured
        run_provenance(url, sources, None, None)
        run_bound(server.base)
        extraction = time_extraction(server.base, sources)
        rows: dict[str, list[float]] = {k: [] for k in (
            "provenance", "provenance_wide", "wget", "article_get", "source_get", "bound",
            "ratio_wget_over_prov", "ratio_prov_over_bound", "ratio_wide_over_bound",
            "ratio_prov_over_capped_bound", "provenance_two_hosts",
            "ratio_two_hosts_over_capped_bound", "fan_out", "ratio_wide_over_fan_out")}
        capped_waves = math.ceil(sources / 8)
        two_host_waves = math.ceil(math.ceil(sources / 2) / 8)

        def prov() -> None:
            rows["provenance"].append(run_provenance(url, sources, None, None))

        def wide() -> None:
            rows["provenance_wide"].append(run_provenance(url, sources, 64, 64))

        def wget() -> None:
            rows["wget"].append(run_wget(url, sources))

        def bound() -> None:
            article, source = run_bound(server.base)
            rows["article_get"].append(article)
            rows["source_get"].append(source)
            rows["bound"].append(article + source)

        def fan_out() -> None:
            rows["fan_out"].append(run_fan_out(server.base, sources))

        def two() -> None:
            rows["provenance_two_hosts"].append(
                run_provenance(f"{server.base}/two-hosts", sources, None, None))

        steps: list[tuple[str, Callable[[], None]]] = [
            ("provenance", prov), ("provenance_wide", wide), ("wget", wget), ("bound", bound),
            ("fan_out", fan_out)]
        if two_hosts:
            steps.append(("provenance_two_hosts", two))
        for rep in range(reps):
            # rotate the order so no tool always runs first after an idle gap
            for _name, step in steps[rep % len(steps):] + steps[: rep % len(steps)]:
                step()
            p, w, b = rows["provenance"][-1], rows["wget"][-1], rows["bound"][-1]
            rows["ratio_wget_over_prov"].append(w / p)
            rows["ratio_prov_over_bound"].append(p / b)
            rows["ratio_wide_over_bound"].append(rows["provenance_wide"][-1] / b)
            rows["ratio_wide_over_fan_out"].append(rows["provenance_wide"][-1]
                                                   / rows["fan_out"][-1])
            capped = rows["article_get"][-1] + capped_waves * rows["source_get"][-1]
            rows["ratio_prov_over_capped_bound"].append(p / capped)
            if two_hosts:
                two_capped = rows["article_get"][-1] + two_host_waves * rows["source_get"][-1]
                rows["ratio_two_hosts_over_capped_bound"].append(
                    rows["provenance_two_hosts"][-1] / two_capped)
            two_s = f"  two-host {rows['provenance_two_hosts'][-1]:.3f}s" if two_hosts else ""
            print(f"  rep {rep + 1}/{reps}: provenance {p:.3f}s  wide "
                  f"{rows['provenance_wide'][-1]:.3f}s  wget {w:.3f}s  bound {b:.3f}s  "
                  f"fan-out {rows['fan_out'][-1]:.3f}s{two_s}", file=sys.stderr)
        hits = server.stats() - before
    finally:
        server.close()
    medians = {k: statistics.median(v) for k, v in rows.items() if v}
    return {"benchmark": "capture", "sources": sources, "reps": reps,
            "source_delay_s": SOURCE_DELAY, "extraction_s": extraction,
            "capped_bound_s": medians["article_get"] + capped_waves * medians["source_get"],
            "two_host_capped_bound_s": (medians["article_get"]
                                        + two_host_waves * medians["source_get"]),
            "server_source_hits": hits["source"], "medians": medians,
            "samples": rows, **machine()}


def print_report(result: dict[str, Any]) -> None:
    m = result["medians"]
    n = result["sources"]
    print(f"\ncapture benchmark: {n} sources x {SOURCE_DELAY * 1000:.0f} ms, "
          f"{result['reps']} reps, median ({result['date']}, nproc={result['nproc']}, "
          f"python {result['python']})")
    print(f"{'measurement':<44}{'seconds':>10}")
    for label, key in (("provenance capture (default: 16 / 8 per host)", "provenance"),
                       ("provenance capture (concurrency=per_host=64)", "provenance_wide"),
                       ("wget -p -r -l1 (sequential)", "wget"),
                       ("bound: article GET + one source GET", "bound"),
                       ("  article GET", "article_get"),
                       ("  source GET", "source_get"),
                       ("bare asyncio fan-out (article, then all)", "fan_out")):
        print(f"{label:<44}{m[key]:>10.3f}")
    print(f"{'bound with per-host cap 8 (ceil(N/8) waves)':<44}"
          f"{result['capped_bound_s']:>10.3f}")
    print(f"{'article extraction alone (warm)':<44}{result['extraction_s']:>10.3f}")
    if "provenance_two_hosts" in m:
        print(f"{'provenance, two-host page (default)':<44}{m['provenance_two_hosts']:>10.3f}")
        print(f"{'  its bound with per-host cap 8':<44}"
              f"{result['two_host_capped_bound_s']:>10.3f}")
    print(f"\n{'ratio (median of per-rep ratios)':<44}{'value':>10}  target")
    print(f"{'wget / provenance':<44}{m['ratio_wget_over_prov']:>10.2f}  >= 5")
    print(f"{'provenance / bound':<44}{m['ratio_prov_over_bound']:>10.2f}  <= 1.5")
    print(f"{'provenance (wide) / bound':<44}{m['ratio_wide_over_bound']:>10.2f}")
    print(f"{'provenance (wide) / bare fan-out':<44}{m['ratio_wide_over_fan_out']:>10.2f}")
    print(f"{'provenance / capped bound':<44}{m['ratio_prov_over_capped_bound']:>10.2f}")
    if "ratio_two_hosts_over_capped_bound" in m:
        print(f"{'provenance (two hosts) / its capped bound':<44}"
              f"{m['ratio_two_hosts_over_capped_bound']:>10.2f}")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 sources, 2 repetitions")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--sources", type=int, default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sources = args.sources or (10 if args.quick else 50)
    if args.serve:
        serve_main(sources)
        return
    reps = args.reps or (2 if args.quick else 5)
    print_report(bench(sources, reps))


if __name__ == "__main__":
    main()
