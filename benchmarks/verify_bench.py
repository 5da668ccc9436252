"""Verification throughput: ``verify_bundle`` vs ``warcio check`` vs a single-pass floor.

The bundle is made by the real capture against a threaded loopback server (127.0.0.1, port
chosen by the OS): an article linking to 30 binary sources of 10 MiB each (random bytes: one
10 MiB ``os.urandom`` buffer generated once and sent rotated, so every source differs) and to
10 HTML sources of about 1 MiB of compressible prose. ``max_bytes`` is raised to 1 GiB. The
manifest is signed with a throwaway Ed25519 key (built as ``tests/helpers.py make_signer``).
The WARC holds well over 300 MB.

Measured side by side, in rotating order, median of 3 (the files are in the page cache for all
three, as they were just written):

* ``verify``: ``provenance.verify.verify_bundle(bundle, trusted=[fingerprint])``, in process;
* ``warcio check``: the console script on the same WARC (a subprocess);
* ``floor``: every bundle file read once in 1 MiB chunks, sha256 of the compressed bytes, each
  gzip member inflated (``zlib.decompressobj(31)`` per member, following ``unused_data``),
  sha256 of the inflated bytes;
* ``floor+1``: the floor plus a second sha256 over the inflated bytes. A verifier must compute
  two digests over (almost) every inflated byte, the block digest and the payload digest, which
  cannot be derived from each other, so this is the floor for what ``verify`` is asked to do.

Also the peak RSS of ``verify_bundle`` in a child process, next to the child's RSS after imports,
to show that memory does not grow with the 300 MB of data. The peak is the child's own
``VmHWM`` (``/proc/self/status``); ``os.wait4``'s ``ru_maxrss`` is printed too but on Linux it
also counts the fork-to-exec moment, when the child is a copy of this (large) parent; and
the same for a small bundle whose one record is 256 MiB of zeros (a member that inflates about
1000:1), which shows whether inflating is bounded.

Run: ``python benchmarks/verify_bench.py`` (``--quick``: 4 x 10 MiB sources, 2 HTML, zeros 32 MiB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MIB = 1 << 20
READ_SIZE = MIB
WARCIO = Path(sys.executable).parent / "warcio"
WORDS = (
    "archive", "record", "evidence", "source", "report", "court", "ministry", "statement",
    "figure", "data", "journalist", "editor", "review", "budget", "council", "hearing", "witness",
    "document", "version", "claim", "analysis", "published", "correction", "update", "page",
    "citation", "museum", "library", "river", "winter", "election", "policy", "contract", "energy",
    "hospital", "school", "transport", "harbour",
)


# ------------------------------------------------------------------------------------ server


def prose(seed: int, size: int) -> bytes:
    """Compressible but not trivially so: random sentences from a small vocabulary."""
    rng = random.Random(seed)
    parts: list[str] = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Source "
                        f"{seed}</title></head><body><article>"]
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        paragraph = f"<p>{sentence.capitalize()}. {rng.randint(1, 99999)} cases.</p>\n"
        parts.append(paragraph)
        length += len(paragraph)
    parts.append("</article></body></html>")
    return "".join(parts).encode()


def article_html(binaries: int, texts: int) -> bytes:
    lorem = ("The inquiry published the underlying material so that readers can check every "
             "figure against the documents it came from. ")
    paragraphs = [f'<p>{lorem} Dataset {n} is <a href="/data/{n}.bin">available here</a>. '
                  f"{lorem}</p>" for n in range(binaries)]
    paragraphs += [f'<p>{lorem} The background is in <a href="/text/{n}">report {n}</a>. '
                   f"{lorem}</p>" for n in range(texts)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Verify "
            "benchmark</title></head><body><main><article><h1>Verify benchmark</h1>"
            + "\n".join(paragraphs) + "</article></main></body></html>").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def make_server(binaries: int, binary_size: int, texts: int, zeros_size: int) -> _Server:
    noise = os.urandom(binary_size)  # generated once, sent rotated per source
    text_pages = {n: prose(n, MIB) for n in range(texts)}
    article = article_html(binaries, texts)
    zeros_page = (b"<html><head><title>Zeros</title></head><body><article><p>A very "
                  b"compressible download: <a href='/zeros.bin'>all zeros</a>, offered by the "
                  b"agency for the benchmark. It is large but it inflates from almost nothing."
                  b"</p></article></body></html>")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _head(self, media_type: str, length: int) -> None:
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: {media_type}\r\n"
                             f"Content-Length: {length}\r\n\r\n".encode("ascii"))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/article":
                self._head("text/html; charset=utf-8", len(article))
                self.wfile.write(article)
            elif path == "/zeros":
                self._head("text/html; charset=utf-8", len(zeros_page))
                self.wfile.write(zeros_page)
            elif path == "/zeros.bin":
                self._head("application/octet-stream", zeros_size)
                block = bytes(MIB)
                for start in range(0, zeros_size, MIB):
                    self.wfile.write(block[: min(MIB, zeros_size - start)])
            elif path.startswith("/data/") and path.endswith(".bin"):
                n = int(path[6:-4])
                view = memoryview(noise)
                cut = (n * 7919 * 4096) % binary_size
                self._head("application/octet-stream", binary_size)
                self.wfile.write(view[cut:])
                self.wfile.write(view[:cut])
            elif path.startswith("/text/"):
                page = text_pages[int(path[6:])]
                self._head("text/html; charset=utf-8", len(page))
                self.wfile.write(page)
            else:
                self._head("text/plain", 9)
                self.wfile.write(b"not found")

    return _Server(("127.0.0.1", 0), Handler)


# ------------------------------------------------------------------------------------ bundle


def make_signer() -> Any:
    from provenance import signing
    from provenance.capture.pipeline import SigningIdentity

    return SigningIdentity.from_key(signing.generate_private_key())


def build_bundle(url: str, store: Path, signer: Any, expected_sources: int) -> Path:
    from provenance.capture.options import CaptureSettings
    from provenance.capture.pipeline import capture

    settings = CaptureSettings(max_bytes=1024 * MIB, total_timeout=600.0)
    result = capture(url, store=store, settings=settings, signer=signer)
    captured = sum(1 for r in result.manifest.resources
                   if r.role == "linked_source" and r.outcome == "captured")
    if captured != expected_sources or result.manifest.state != "COMPLETE":
        raise RuntimeError(f"capture got {captured}/{expected_sources} sources, "
                           f"state {result.manifest.state}")
    return result.bundle


def bundle_files(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file())


def warc_files(bundle: Path) -> list[Path]:
    return sorted((bundle / "archive").glob("*.warc.gz"))


# ---------------------------------------------------------------------------- measurements


def floor(bundle: Path, inflated_hashes: int = 1) -> tuple[int, int]:
    """Read, hash, inflate (per member), hash the inflated bytes; return (read, inflated)."""
    read_total = inflated_total = 0
    for path in bundle_files(bundle):
        file_hash = hashlib.sha256()
        inflated = [hashlib.sha256() for _ in range(inflated_hashes)]
        gzipped = path.name.endswith(".gz")
        inflater = zlib.decompressobj(31)
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(READ_SIZE), b""):
                read_total += len(chunk)
                file_hash.update(chunk)
                data = chunk
                while gzipped and data:
                    out = inflater.decompress(data)
                    inflated_total += len(out)
                    for digest in inflated:
                        digest.update(out)
                    if not inflater.eof:
                        break
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(31)
        file_hash.hexdigest()
    return read_total, inflated_total


def run_verify(bundle: Path, fingerprint: str) -> None:
    from provenance.verify import verify_bundle

    report = verify_bundle(bundle, trusted=[fingerprint])
    if report.verdict != "VERIFIED":
        raise RuntimeError(f"verify said {report.verdict}: {report.model_dump_json()[:2000]}")


def run_warcio(bundle: Path) -> None:
    for path in warc_files(bundle):
        done = subprocess.run([str(WARCIO), "check", str(path)], capture_output=True, text=True,
                              timeout=1800, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"warcio check failed ({done.returncode}): {done.stdout[-2000:]}")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def vm_hwm_kib() -> int:
    """Peak RSS of this process image since its exec (``VmHWM``; Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_verify(bundle: str, fingerprint: str) -> None:
    """Child process: verify once, print import RSS and the verdict as one JSON line."""
    from provenance.verify import verify_bundle

    import_hwm = vm_hwm_kib()
    start = time.perf_counter()
    report = verify_bundle(Path(bundle), trusted=[fingerprint])
    print(json.dumps({"verdict": report.verdict, "import_hwm_kib": import_hwm,
                      "vm_hwm_kib": vm_hwm_kib(),
                      "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "elapsed_s": time.perf_counter() - start}))


def verify_rss(bundle: Path, fingerprint: str) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--child-verify", str(bundle), fingerprint],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"verify child exited {proc.returncode}")
    report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    # ru_maxrss (wait4) includes the fork-to-exec moment, when the child is a copy of this big
    # parent, so it is max(parent RSS, child peak); VmHWM restarts at exec: the verifier alone.
    report["ru_maxrss_mb"] = usage.ru_maxrss * 1024 / 1e6
    report["peak_rss_mb"] = report.pop("vm_hwm_kib") * 1024 / 1e6
    report["import_rss_mb"] = report.pop("import_hwm_kib") * 1024 / 1e6
    return report


# ---------------------------------------------------------------------------------- report


def bench(binaries: int, binary_size: int, texts: int, zeros_size: int,
          reps: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="provbench-verify-"))
    os.environ["PROVENANCE_CONFIG_DIR"] = str(work / "config")  # no personal trust store
    server = make_server(binaries, binary_size, texts, zeros_size)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        signer = make_signer()
        start = time.perf_counter()
        bundle = build_bundle(f"{base}/article", work / "store", signer, binaries + texts)
        build_s = time.perf_counter() - start
        zeros_bundle = build_bundle(f"{base}/zeros", work / "zeros", signer, 1)
        server.shutdown()
        warc_bytes = sum(p.stat().st_size for p in warc_files(bundle))
        read_bytes, inflated_bytes = floor(bundle)  # also warms the page cache
        print(f"  bundle: {warc_bytes / 1e6:.1f} MB of WARC, {inflated_bytes / 1e6:.1f} MB "
              f"inflated, built in {build_s:.1f}s", file=sys.stderr)
        fp = signer.fingerprint
        steps: dict[str, Callable[[], object]] = {
            "verify": lambda: run_verify(bundle, fp),
            "warcio_check": lambda: run_warcio(bundle),
            "floor": lambda: floor(bundle),
            "floor_plus_1": lambda: floor(bundle, inflated_hashes=2),
        }
        names = list(steps)
        samples: dict[str, list[float]] = {name: [] for name in names}
        ratios: dict[str, list[float]] = {"verify_over_floor": [], "verify_over_floor_plus_1": [],
                                          "warcio_over_verify": []}
        for rep in range(reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                samples[name].append(timed(steps[name]))
            v = samples["verify"][-1]
            ratios["verify_over_floor"].append(v / samples["floor"][-1])
            ratios["verify_over_floor_plus_1"].append(v / samples["floor_plus_1"][-1])
            ratios["warcio_over_verify"].append(samples["warcio_check"][-1] / v)
            print(f"  rep {rep + 1}/{reps}: "
                  + "  ".join(f"{n} {samples[n][-1]:.2f}s" for n in names), file=sys.stderr)
        rss = verify_rss(bundle, fp)
        zeros_rss = verify_rss(zeros_bundle, fp)
    finally:
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    return {"benchmark": "verify", "warc_bytes": warc_bytes, "bundle_bytes": read_bytes,
            "inflated_bytes": inflated_bytes, "build_s": build_s, "reps": reps,
            "medians_s": medians,
            "throughput_mb_s": {n: warc_bytes / 1e6 / t for n, t in medians.items()},
            "ratios": {k: statistics.median(v) for k, v in ratios.items()},
            "verify_rss": rss, "zeros_size": zeros_size, "zeros_verify_rss": zeros_rss,
            "samples_s": samples, "nproc": os.cpu_count(), "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def print_report(result: dict[str, Any]) -> None:
    m, r = result["medians_s"], result["ratios"]
    print(f"\nverify benchmark: {result['warc_bytes'] / 1e6:.1f} MB WARC "
          f"({result['inflated_bytes'] / 1e6:.1f} MB inflated), median of {result['reps']} "
          f"({result['date']}, nproc={result['nproc']}, python {result['python']})")
    print(f"{'measurement':<44}{'seconds':>9}{'MB/s (gz)':>11}")
    for label, key in (("verify_bundle (library)", "verify"),
                       ("warcio check", "warcio_check"),
                       ("floor: read+sha256+inflate+sha256", "floor"),
                       ("floor+1: floor + 2nd sha256 of inflated", "floor_plus_1")):
        print(f"{label:<44}{m[key]:>9.2f}{result['throughput_mb_s'][key]:>11.1f}")
    print(f"\n{'ratio (median of per-rep ratios)':<44}{'value':>9}  target")
    print(f"{'verify / floor':<44}{r['verify_over_floor']:>9.2f}  <= 1.3")
    print(f"{'verify / floor+1':<44}{r['verify_over_floor_plus_1']:>9.2f}")
    print(f"{'warcio check / verify':<44}{r['warcio_over_verify']:>9.2f}")
    v, z = result["verify_rss"], result["zeros_verify_rss"]
    print(f"\nverify peak RSS (child VmHWM): {v['peak_rss_mb']:.1f} MB (after imports "
          f"{v['import_rss_mb']:.1f} MB; wait4 ru_maxrss {v['ru_maxrss_mb']:.1f} MB) on the "
          f"{result['warc_bytes'] / 1e6:.0f} MB bundle")
    print(f"verify peak RSS (child VmHWM): {z['peak_rss_mb']:.1f} MB (after imports "
          f"{z['import_rss_mb']:.1f} MB; wait4 ru_maxrss {z['ru_maxrss_mb']:.1f} MB) on a "
          f"bundle with one {result['zeros_size'] // MIB} MiB all-zero record")
    print(json.dumps({k: v for k, v in result.items() if k != "samples_s"}, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 45 MB of WARC")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--child-verify", nargs=2, metavar=("BUNDLE", "FINGERPRINT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_verify:
        child_verify(*args.child_verify)
        return
    if args.quick:
        result = bench(4, 10 * MIB, 2, 32 * MIB, args.reps or 2)
    else:
        result = bench(30, 10 * MIB, 10, 256 * MIB, args.reps or 3)
    print_report(result)


if __name__ == "__main__":
    main()
