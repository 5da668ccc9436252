"""Capture time against the size of the archive store: a store of N bundles vs a store of one.

    .venv/bin/python benchmarks/store_bench.py --bundles 10000 --pairs 30
    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/store_bench.py --tree /tmp/before     # older code, same way

The host-per-source capture of ``capture_bench.py`` (its loopback server, 127.0.0.1 only) goes
alternately into a large store and into a store holding one bundle, one capture each, in one
process, in alternating order. The large store is one real capture plus hard-linked copies of
it, catalogued and written out (``os.sync``) before anything is measured. The median of the
per-pair differences says what the store's size costs each capture; the machine's slow and
fast phases fall on both sides alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

SOURCES = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=10_000, help="bundles in the large store")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--tree", type=Path, default=None,
                        help="import provenance from <tree>/src (another version of the code)")
    args = parser.parse_args()
    if args.tree is not None:
        sys.path.insert(0, str(args.tree / "src"))
    # imported once the path is set, so that --tree decides which provenance is measured
    import capture_bench as bench

    import provenance

    print(f"provenance from {Path(provenance.__file__).parent}", file=sys.stderr)
    server = bench.ServerProcess(SOURCES)
    root = Path(tempfile.mkdtemp(prefix="provbench-store-"))
    url = f"{server.base}/many-hosts"
    try:
        large, small = root / "large", root / "small"
        bench.fill_store(large, url, SOURCES, args.bundles)
        bench.fill_store(small, url, SOURCES, 1)
        times: dict[Path, list[float]] = {large: [], small: []}
        for store in (large, small, large, small):  # warm-up: imports, caches, catalogs
            bench.run_provenance(url, SOURCES, store, many_hosts=True)
        for pair in range(args.pairs):
            for store in ((large, small) if pair % 2 == 0 else (small, large)):
                times[store].append(bench.run_provenance(url, SOURCES, store, many_hosts=True))
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)
        os.sync()  # the removal of the large store, before another benchmark's fsyncs
    differences = [a - b for a, b in zip(times[large], times[small], strict=True)]
    slower = sum(1 for d in differences if d > 0)
    print(f"store of {args.bundles:,} bundles: {statistics.median(times[large]) * 1000:.1f} ms, "
          f"store of one: {statistics.median(times[small]) * 1000:.1f} ms (medians)")
    print(f"large - small, median of {len(differences)} pairs: "
          f"{statistics.median(differences) * 1000:+.2f} ms (large slower in {slower})")


if __name__ == "__main__":
    main()
