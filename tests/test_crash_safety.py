"""Crash safety and concurrency of real ``provenance capture`` processes on one archive store.

SIGKILL cannot be caught, so these tests say what the store looks like after the worst case:
a bundle either exists complete (and verifies) or not at all, the catalog stays a sound SQLite
database that lists exactly the committed bundles, and the next capture removes what the
killed ones left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from helpers import run_cli
from provenance import catalog
from provenance.demo.site import serve_sample_site
from provenance.storage import TEMP_PREFIX
from provenance.verify import verify_bundle
from servers import html, serve

KILLS = 20
AT_ONCE = 4  # killed captures run side by side, so kills also land during each other's commits
SEED = 20261126


def _start_capture(url: str, store: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "provenance", "capture", url, "--archive-dir", str(store),
         "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env=dict(os.environ))


def _bundles(store: Path) -> list[Path]:
    return sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX))


def _fingerprint() -> str:
    done = run_cli("keys", "show")
    line = next(line for line in done.stdout.splitlines() if line.startswith("fingerprint:"))
    return line.split()[1]


def test_sigkill_at_random_moments_never_leaves_a_half_bundle_or_a_broken_catalog(
        tmp_path: Path) -> None:
    store = tmp_path / "archives"
    assert run_cli("keys", "generate").returncode == 0  # not part of what is being killed
    fingerprint = _fingerprint()
    rng = random.Random(SEED)
    killed = attempts = 0
    with serve_sample_site(slow_delay=0.4) as site:
        # Keep starting captures, AT_ONCE side by side, until KILLS of them have been killed:
        # each is killed at its own random moment counted from its own start (a capture that
        # finishes first is simply a complete one).
        while killed < KILLS:
            assert attempts < 4 * KILLS, f"only {killed} kills in {attempts} captures"
            batch = [(time.monotonic(), rng.uniform(0.05, 2.5),
                      _start_capture(site.article_url, store)) for _ in range(AT_ONCE)]
            attempts += AT_ONCE
            for started, delay, process in batch:
                try:
                    process.wait(timeout=max(0.0, started + delay - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    killed += 1

        # Whatever exists as a bundle is complete: it verifies, signature to WARC records.
        for bundle in _bundles(store):
            report = verify_bundle(bundle, trusted=(fingerprint,))
            assert report.verdict == "VERIFIED", (bundle.name, report.checks)

        # The catalog file is a sound database, and opening it lists exactly the bundles,
        # including one committed by a process killed before it could update the catalog.
        database = store / catalog.CATALOG_FILE
        if database.exists():
            with sqlite3.connect(database) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        listed = {entry.capture_id for entry in catalog.list_captures(store)}
        assert listed == {bundle.name for bundle in _bundles(store)}

        # The next capture cleans up after the killed ones and completes.
        done = run_cli("capture", site.article_url, "--archive-dir", str(store), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] in ("COMPLETE", "PARTIAL")
    leftovers = [p.name for p in store.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []
    listed = {entry.capture_id for entry in catalog.list_captures(store)}
    assert listed == {bundle.name for bundle in _bundles(store)}


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path: Path) -> None:
    store = tmp_path / "archives"
    assert run_cli("keys", "generate").returncode == 0
    arrived, release = threading.Event(), threading.Event()

    def held_open(_handler: BaseHTTPRequestHandler) -> None:
        arrived.set()
        release.wait(30)  # hold the article's response until SIGINT has been handled

    with serve({"/": held_open}) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "provenance", "capture", f"{server.base_url}/",
             "--archive-dir", str(store)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            assert arrived.wait(30), "the capture never reached the server"
            process.send_signal(signal.SIGINT)  # the capture is now in flight
            _out, err = process.communicate(timeout=30)
        finally:
            release.set()
    assert process.returncode == 130
    assert b"interrupted" in err and b"Traceback" not in err
    assert err.strip().splitlines() == [
        b"error: interrupted; the unfinished capture was discarded"], err
    assert _bundles(store) == []
    assert [p.name for p in store.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


def test_eight_captures_at_once_all_complete_verify_and_are_catalogued(tmp_path: Path) -> None:
    store = tmp_path / "archives"
    assert run_cli("keys", "generate").returncode == 0
    fingerprint = _fingerprint()
    text = ("The committee heard evidence from residents, engineers and the council's own "
            "auditors before it published the findings that this page summarises. ")
    routes = {}
    for n in range(8):
        routes[f"/page{n}"] = html(
            f"<html><head><title>Page {n}</title></head><body><article><h1>Page {n}</h1>"
            f"<p>{text * 3}</p><p>See <a href='/source{n}'>the source</a>.</p></article>"
            f"</body></html>")
        routes[f"/source{n}"] = html(f"<p>source {n}</p>")
    with serve(routes) as server:
        urls = [f"{server.base_url}/page{n}" for n in range(8)]
        processes = [subprocess.Popen(
            [sys.executable, "-m", "provenance", "capture", url, "--archive-dir", str(store),
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            for url in urls]
        outputs = [process.communicate(timeout=120) for process in processes]
    summaries = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        summaries.append(json.loads(out))
    assert {s["state"] for s in summaries} == {"COMPLETE"}
    assert len({s["capture_id"] for s in summaries}) == 8
    for summary in summaries:
        report = verify_bundle(Path(summary["bundle"]), trusted=(fingerprint,))
        assert report.verdict == "VERIFIED", report.checks
    listed = {entry.capture_id: entry for entry in catalog.list_captures(store)}
    assert set(listed) == {s["capture_id"] for s in summaries}
    assert {entry.requested_url for entry in listed.values()} == set(urls)
    with sqlite3.connect(store / catalog.CATALOG_FILE) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
