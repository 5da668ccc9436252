"""Paired A/B of the host-per-source capture: two code trees, captures alternated one by one.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/paired_capture.py /tmp/before . --pairs 40

One loopback server (``capture_bench.ServerProcess``, 127.0.0.1 only) answers both sides. Each
tree gets a worker process of its own that imports ``provenance`` from ``<tree>/src``; the
workers take turns, one capture each, in alternating order, with a bound measurement before
every pair. The machine's slow and fast phases (they change a capture's CPU time by up to 1.6x
within minutes) then fall on both sides alike, and the median of the per-pair differences
resolves changes of a millisecond or two that whole runs of ``capture_bench.py`` cannot.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import capture_bench as bench

SOURCES = 50

WORKER = r"""
import json, shutil, sys, tempfile
from pathlib import Path
tree, benchmarks, url, sources = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [str(tree / "src"), benchmarks]
import provenance
if not Path(provenance.__file__).resolve().is_relative_to(tree.resolve()):
    sys.exit(f"provenance was imported from {provenance.__file__}, not from {tree}")
import capture_bench
store = Path(tempfile.mkdtemp(prefix="provbench-paired-"))
try:
    for _ in sys.stdin:
        cpu = []
        elapsed = capture_bench.run_provenance(url, sources, store, many_hosts=True, cpu=cpu)
        print(json.dumps([elapsed, cpu[0]]), flush=True)
finally:
    shutil.rmtree(store, ignore_errors=True)
"""


class Worker:
    def __init__(self, tree: Path, url: str) -> None:
        self.tree = tree
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tree), str(Path(__file__).parent), url,
             str(SOURCES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.times: list[float] = []
        self.cpu: list[float] = []

    def capture(self, keep: bool = True) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.tree} died")
        elapsed, cpu = json.loads(line)
        if keep:
            self.times.append(elapsed)
            self.cpu.append(cpu)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree_a", type=Path)
    parser.add_argument("tree_b", type=Path)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--server", choices=bench.SERVERS, default="asyncio",
                        help="the loopback server (see capture_bench.py --server)")
    args = parser.parse_args()
    server = bench.ServerProcess(SOURCES, args.server)
    url = f"{server.base}/many-hosts"
    a, b = Worker(args.tree_a, url), Worker(args.tree_b, url)
    bounds = []
    try:
        for worker in (a, b, a, b):  # warm-up: imports, caches, each store's catalog
            worker.capture(keep=False)
        for pair in range(args.pairs):
            article, source = bench.run_bound(server.base)
            bounds.append(article + source)
            for worker in ((a, b) if pair % 2 == 0 else (b, a)):
                worker.capture()
    finally:
        a.close()
        b.close()
        server.close()
    bound = statistics.median(bounds)
    for worker in (a, b):
        wall = statistics.median(worker.times)
        print(f"{worker.tree!s:30s} {wall * 1000:6.1f} ms  {wall / bound:.3f}x the bound  "
              f"CPU {statistics.median(worker.cpu) * 1000:.1f} ms")
    differences = [y - x for x, y in zip(a.times, b.times, strict=True)]
    faster = sum(1 for d in differences if d < 0)
    print(f"B - A, median of {len(differences)} pairs: "
          f"{statistics.median(differences) * 1000:+.1f} ms (B faster in {faster})")


if __name__ == "__main__":
    main()
