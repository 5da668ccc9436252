"""Peak memory of a capture while one linked source is a 1 GiB response.

A threaded loopback server (127.0.0.1, port chosen by the OS) serves an article linking to five
small sources and one big one, ``/big.bin``: ``Content-Length: 1073741824``, generated on the
fly from one 1 MiB block of random bytes sent over and over (never 1 GiB in memory; random so
that nothing compresses it away). A second article, identical but without the big link, is the
baseline.

Each capture runs in a fresh child process (this script re-executed with ``--child``). Its peak
resident set size is reported twice: the ``ru_maxrss`` of that child as returned by ``os.wait4``
(the figure ``getrusage(RUSAGE_CHILDREN)`` reports, but per child rather than a running maximum)
and the child's own ``VmHWM`` from ``/proc/self/status``. Linux folds the RSS the child had
between fork and exec (a copy of the parent) into ``ru_maxrss``, so ``ru_maxrss`` is really
max(parent RSS, child peak); ``VmHWM`` starts afresh at exec. The parent here stays small, so
both agree. The child also reports ``getrusage(RUSAGE_SELF)`` after importing provenance and
before capturing: the import floor.

Runs: baseline (no big source); big source with the default 100 MiB ``max_bytes`` (the cap cuts
it, a truncated record, which is allowed); big source with ``max_bytes`` = 2 GiB (all 1 GiB
streams through the recorder, the spool file and the WARC writer). Target: peak RSS < 150 MB.
Every temporary directory (archive stores, spools) is removed afterwards.

Run: ``python benchmarks/memory_bench.py`` (``--quick`` streams 64 MiB with a 16 MiB cap).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GIB = 1 << 30
MIB = 1 << 20
SMALL_SOURCES = 5
LOREM = ("The committee's report, released on Tuesday, lists the documents it relied on and "
         "explains how each of them was obtained, checked and archived for later review. ")


# ------------------------------------------------------------------------------------ server


def article_html(with_big: bool) -> bytes:
    paragraphs = [f'<p>{LOREM} It cites <a href="/source/{n}">supporting document {n}</a> as '
                  f"evidence for the central claim. {LOREM}</p>" for n in range(SMALL_SOURCES)]
    if with_big:
        paragraphs.append(f'<p>{LOREM} The full dataset is available as <a href="/big.bin">a '
                          f"single large download</a> from the agency. {LOREM}</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Memory benchmark article</title></head><body><main><article>"
            "<h1>Memory benchmark article</h1>" + "\n".join(paragraphs)
            + "</article></main></body></html>").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the capped capture hangs up mid-body on purpose


def make_server(big_size: int) -> _Server:
    block = os.urandom(MIB)  # the only copy of the payload in memory
    pages = {"/article": article_html(True), "/article-small": article_html(False)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _head(self, media_type: str, length: int) -> None:
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: {media_type}\r\n"
                             f"Content-Length: {length}\r\n\r\n".encode("ascii"))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in pages:
                self._head("text/html; charset=utf-8", len(pages[path]))
                self.wfile.write(pages[path])
            elif path.startswith("/source/"):
                body = f"<html><body><p>Document {path[8:]}. {LOREM * 8}</p></body></html>"
                self._head("text/html; charset=utf-8", len(body))
                self.wfile.write(body.encode())
            elif path == "/big.bin":
                self._head("application/octet-stream", big_size)
                view = memoryview(block)
                left = big_size
                try:
                    while left > 0:
                        chunk = view[: min(left, MIB)]
                        self.wfile.write(chunk)
                        left -= len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the size cap cut us off; expected
            else:
                self._head("text/plain", 9)
                self.wfile.write(b"not found")

    return _Server(("127.0.0.1", 0), Handler)


# ------------------------------------------------------------------------------------- child


def vm_hwm_kib() -> int:
    """Peak RSS of this process image since its exec (``VmHWM``; Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_main(url: str, store: str, max_bytes: int) -> None:
    """Run one capture in this process and print what happened as one JSON line."""
    from provenance.capture.options import CaptureSettings
    from provenance.capture.pipeline import capture

    import_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    settings = CaptureSettings(requisites=True, max_bytes=max_bytes, total_timeout=600.0)
    start = time.perf_counter()
    result = capture(url, store=Path(store), settings=settings, signer=None)
    elapsed = time.perf_counter() - start
    big = [r for r in result.manifest.resources if r.url.endswith("/big.bin")]
    warc_bytes = sum(f.bytes for f in result.manifest.files)
    print(json.dumps({
        "elapsed_s": elapsed, "state": result.manifest.state,
        "import_rss_kib": import_rss_kib,
        "self_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vm_hwm_kib": vm_hwm_kib(),
        "big_outcome": big[0].outcome if big else None,
        "big_bytes": big[0].bytes if big else None,
        "warc_bytes": warc_bytes,
        "sources": sum(1 for r in result.manifest.resources if r.role == "linked_source"),
    }))


def run_child(url: str, max_bytes: int) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix="provbench-mem-"))
    try:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", url, str(store), str(max_bytes)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        output = proc.stdout.read()  # the child prints one line at the very end
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            raise RuntimeError(f"capture child exited {proc.returncode}")
        report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        # Linux: kibibytes. ru_maxrss also counts the pre-exec moment of the fork, when the
        # child is a copy of this (small) parent, so it is max(parent RSS, child peak);
        # VmHWM, read by the child itself, is the peak of the capture process image alone.
        report["max_rss_kib"] = usage.ru_maxrss
        return report
    finally:
        shutil.rmtree(store, ignore_errors=True)


# ---------------------------------------------------------------------------------- report


def mb(kib: float) -> float:
    return kib * 1024 / 1e6


def bench(big_size: int, default_cap: int, raised_cap: int, reps: int) -> dict[str, Any]:
    server = make_server(big_size)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "capped": [], "full": []}
    try:
        for rep in range(reps):
            runs["baseline"].append(run_child(f"{base}/article-small", default_cap))
            runs["capped"].append(run_child(f"{base}/article", default_cap))
            print(f"  rep {rep + 1}/{reps}: baseline "
                  f"{mb(runs['baseline'][-1]['max_rss_kib']):.1f} MB, capped "
                  f"{mb(runs['capped'][-1]['max_rss_kib']):.1f} MB", file=sys.stderr)
        # the full stream once (it is the slow one); RSS does not depend on noise
        runs["full"].append(run_child(f"{base}/article", raised_cap))
    finally:
        server.shutdown()
        server.server_close()
    for name, expected in (("capped", "truncated"), ("full", "captured")):
        for run in runs[name]:
            if run["big_outcome"] != expected:
                raise RuntimeError(f"{name}: big source outcome {run['big_outcome']}")
    if runs["full"][0]["big_bytes"] != big_size:
        raise RuntimeError(f"full run kept {runs['full'][0]['big_bytes']} of {big_size} bytes")

    def median(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[name])

    summary = {name: {"max_rss_mb": mb(median(name, "max_rss_kib")),
                      "vm_hwm_mb": mb(median(name, "vm_hwm_kib")),
                      "import_rss_mb": mb(median(name, "import_rss_kib")),
                      "elapsed_s": median(name, "elapsed_s"),
                      "big_bytes": runs[name][0]["big_bytes"],
                      "warc_bytes": runs[name][0]["warc_bytes"],
                      "runs": len(runs[name])} for name in runs}
    base_rss = summary["baseline"]["max_rss_mb"]
    return {"benchmark": "memory", "big_size": big_size, "default_cap": default_cap,
            "raised_cap": raised_cap, "summary": summary,
            "ratio_capped_over_baseline": summary["capped"]["max_rss_mb"] / base_rss,
            "ratio_full_over_baseline": summary["full"]["max_rss_mb"] / base_rss,
            "nproc": os.cpu_count(), "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def print_report(result: dict[str, Any]) -> None:
    s = result["summary"]
    print(f"\nmemory benchmark: big source {result['big_size']} bytes "
          f"({result['date']}, nproc={result['nproc']}, python {result['python']})")
    print(f"{'run':<40}{'ru_maxrss MB':>13}{'VmHWM MB':>10}{'after import':>14}"
          f"{'big kept':>12}{'WARC bytes':>12}{'time s':>8}")
    size = f"{result['big_size'] // MIB} MiB source"
    labels = {"baseline": "baseline (no big source)",
              "capped": f"{size}, max_bytes={result['default_cap'] // MIB} MiB",
              "full": f"{size}, max_bytes={result['raised_cap'] // MIB} MiB"}
    for name, label in labels.items():
        row = s[name]
        kept = row["big_bytes"] if row["big_bytes"] is not None else "-"
        print(f"{label:<40}{row['max_rss_mb']:>13.1f}{row['vm_hwm_mb']:>10.1f}"
              f"{row['import_rss_mb']:>14.1f}{kept!s:>12}{row['warc_bytes']:>12}"
              f"{row['elapsed_s']:>8.2f}")
    print(f"capped / baseline RSS: {result['ratio_capped_over_baseline']:.3f}   "
          f"full / baseline RSS: {result['ratio_full_over_baseline']:.3f}   target: < 150 MB")
    print(json.dumps(result, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB source, 16 MiB cap")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--child", nargs=3, metavar=("URL", "STORE", "MAX_BYTES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, store, max_bytes = args.child
        child_main(url, store, int(max_bytes))
        return
    if args.quick:
        result = bench(64 * MIB, 16 * MIB, 2 * GIB, args.reps or 1)
    else:
        result = bench(GIB, 100 * MIB, 2 * GIB, args.reps or 3)
    print_report(result)


if __name__ == "__main__":
    main()
