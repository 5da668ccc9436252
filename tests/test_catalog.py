"""The capture catalog: rows from manifests, self-healing, rebuilds, ids, concurrency, CLI."""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import make_signer, run_cli
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import CaptureResult, capture
from provenance.catalog import (
    CATALOG_FILE,
    CATALOG_VERSION,
    REBUILD_PREFIX,
    Listing,
    list_captures,
    listing,
    parse_since,
    previous_capture,
    record_capture,
    reindex,
    resolve_capture,
    resolve_captures,
    unindexed_bundles,
    url_key,
)
from provenance.errors import OperationalError, UsageError
from provenance.hashing import hash_bytes
from provenance.manifest import canonical_bytes
from provenance.models import Manifest, PageMetadata, PreviousCapture
from provenance.storage import MANIFEST_PATH
from provenance.timeutil import rfc3339
from servers import html, serve

PAGE_ONLY = CaptureSettings(links="none", requisites=False)
ARTICLE = """<!DOCTYPE html><html lang="en"><head><title>{title}</title></head>
<body><main><article><h1>{title}</h1>
<p>The river authority said on Monday that the new flood barrier will be tested twice a year,
in spring and in autumn, and that the results will be published on its website.</p>
<p>Residents of the lower town have asked for the tests to be announced a week in advance so
that cars parked on the embankment can be moved before the gates close.</p>
</article></main></body></html>"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """A real manifest to derive synthetic bundles from (the catalog reads only manifests)."""
    store = tmp_path_factory.mktemp("template")
    with serve({"/a": html(ARTICLE.format(title="Template"))}) as server:
        result = capture(f"{server.base_url}/a", store=store, settings=PAGE_ONLY)
    return result.manifest


def fake_bundle(store: Path, template: Manifest, capture_id: str, url: str,
                started: datetime, *, title: str = "A page",
                previous: PreviousCapture | None = None) -> Path:
    manifest = template.model_copy(update={
        "capture_id": capture_id, "requested_url": url, "final_url": url,
        "started_at": rfc3339(started), "finished_at": rfc3339(started + timedelta(seconds=1)),
        "page": PageMetadata(title=title), "previous": previous, "state": "COMPLETE",
        "state_reason": None})
    bundle = store / capture_id
    (bundle / "provenance").mkdir(parents=True)
    (bundle / MANIFEST_PATH).write_bytes(canonical_bytes(manifest))
    return bundle


T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _integrity(store: Path) -> str:
    connection = sqlite3.connect(store / CATALOG_FILE)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def _ids(store: Path, **filters: object) -> list[str]:
    return [entry.capture_id for entry in list_captures(store, **filters)]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# URL keys, --since


def test_url_key_normalisation() -> None:
    same = ["http://example.org/a?b=1", "HTTP://Example.ORG/a?b=1", "http://example.org:80/a?b=1",
            "http://example.org/a?b=1#section-2"]
    assert {url_key(url) for url in same} == {"http://example.org/a?b=1"}
    assert url_key("https://example.org:443") == "https://example.org/"
    assert url_key("https://example.org:8443/") == "https://example.org:8443/"
    assert url_key("http://[::1]:80/x") == "http://[::1]/x"
    assert url_key("http://example.org/A") != url_key("http://example.org/a")  # paths keep case
    assert url_key("http://bücher.example/") == "http://xn--bcher-kva.example/"


def test_parse_since() -> None:
    assert parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T13:00:00+01:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_since("2026-03-01t12:00:00z") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_since("last tuesday")


# ---------------------------------------------------------------------------------------------
# Rows, listing, self-healing


def test_record_and_list(store: Path, template: Manifest) -> None:
    first = fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/x", T0)
    second = fake_bundle(store, template, "20260302-120000-bbbbbb", "http://A.example:80/x#y",
                         T0 + timedelta(days=1), title="Second")
    other = fake_bundle(store, template, "20260303-120000-cccccc", "http://b.example/",
                        T0 + timedelta(days=2))
    for bundle in (first, second, other):
        record_capture(store, bundle)
    assert (store / CATALOG_FILE).is_file()
    assert _ids(store) == [other.name, second.name, first.name]  # newest first
    assert _ids(store, url="http://a.example/x") == [second.name, first.name]
    assert _ids(store, since=datetime(2026, 3, 2, tzinfo=UTC)) == [other.name, second.name]
    entry = list_captures(store, url="http://a.example/x")[0]
    assert entry.title == "Second" and entry.state == "COMPLETE"
    assert entry.bundle == second
    assert entry.manifest_sha256 == hash_bytes((second / MANIFEST_PATH).read_bytes())
    assert entry.url_key == "http://a.example/x"
    with sqlite3.connect(store / CATALOG_FILE) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == CATALOG_VERSION
    # Recording the same bundle again replaces its row.
    record_capture(store, second)
    assert len(list_captures(store)) == 3


def test_record_refuses_a_bundle_outside_the_store(store: Path, template: Manifest,
                                                   tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    bundle = fake_bundle(elsewhere, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    with pytest.raises(UsageError):
        record_capture(store, bundle)


def test_recording_a_row_does_not_list_the_store(store: Path, template: Manifest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The end of every capture records its row: that must not cost a listing of the whole
    # store (11 ms with 10,000 bundles). Bringing the rest in line is left to the next read.
    from provenance import catalog

    first = fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    record_capture(store, first)  # creates the catalog (a rebuild lists the store once)
    unrecorded = fake_bundle(store, template, "20260301-130000-bbbbbb", "http://a.example/",
                             T0 + timedelta(hours=1))
    recorded = fake_bundle(store, template, "20260301-140000-cccccc", "http://a.example/",
                           T0 + timedelta(hours=2))
    listing = catalog._bundle_names

    def refuse(where: Path) -> set[str]:
        raise AssertionError(f"listed {where} while recording one row")

    monkeypatch.setattr(catalog, "_bundle_names", refuse)
    record_capture(store, recorded)
    monkeypatch.setattr(catalog, "_bundle_names", listing)
    assert _ids(store) == [recorded.name, unrecorded.name, first.name]  # the read heals


def test_catalog_heals_itself_from_the_bundles(store: Path, template: Manifest) -> None:
    kept = fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    record_capture(store, kept)
    # A capture killed after committing its bundle but before recording it:
    unrecorded = fake_bundle(store, template, "20260301-130000-bbbbbb", "http://a.example/",
                             T0 + timedelta(hours=1))
    # ... an unfinished capture, and a bundle deleted by hand:
    (store / ".tmp-20260301-140000-cccccc" / "provenance").mkdir(parents=True)
    gone = fake_bundle(store, template, "20260301-110000-dddddd", "http://a.example/",
                       T0 - timedelta(hours=1))
    record_capture(store, gone)
    shutil.rmtree(gone)
    assert _ids(store) == [unrecorded.name, kept.name]
    link = previous_capture(store, "http://a.example/")
    assert link is not None and link.capture_id == unrecorded.name


def test_catalog_deleted_is_rebuilt(store: Path, template: Manifest) -> None:
    for day in range(3):
        fake_bundle(store, template, f"2026030{day + 1}-120000-aaaaaa", "http://a.example/",
                    T0 + timedelta(days=day))
    assert len(list_captures(store)) == 3
    (store / CATALOG_FILE).unlink()
    assert len(list_captures(store)) == 3
    assert _integrity(store) == "ok"


def test_catalog_deleted_beside_a_stale_wal_is_rebuilt(store: Path, template: Manifest) -> None:
    """A leftover -wal of a deleted catalog must never be replayed into the new one."""
    fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    assert len(list_captures(store)) == 1
    writer = sqlite3.connect(store / CATALOG_FILE, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    for n in range(50):
        writer.execute("INSERT INTO unindexed VALUES (?, 'x', 'y')", (f"ghost-{n}",))
    stale_wal = (store / f"{CATALOG_FILE}-wal").read_bytes()
    assert len(stale_wal) > 0
    writer.close()
    (store / CATALOG_FILE).unlink()
    (store / f"{CATALOG_FILE}-wal").write_bytes(stale_wal)
    assert _ids(store) == ["20260301-120000-aaaaaa"]
    assert unindexed_bundles(store) == []
    assert _integrity(store) == "ok"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-pages", "empty"])
def test_corrupt_catalog_is_rebuilt(store: Path, template: Manifest, damage: str) -> None:
    for n in range(40):
        fake_bundle(store, template, f"20260301-1200{n:02d}-aaaaaa", f"http://a.example/{n}",
                    T0 + timedelta(seconds=n), title="x" * 500)
    assert len(list_captures(store)) == 40
    path = store / CATALOG_FILE
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"this is not a database at all" * 100)
    elif damage == "truncated":
        data = data[:len(data) // 3]
    elif damage == "zeroed-pages":
        data[4096:len(data)] = bytes(len(data) - 4096)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    assert len(list_captures(store)) == 40
    assert _integrity(store) == "ok"


def test_catalog_of_another_version_is_rebuilt(store: Path, template: Manifest) -> None:
    fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    assert len(list_captures(store)) == 1
    with sqlite3.connect(store / CATALOG_FILE) as connection:
        connection.execute("DROP TABLE captures")
        connection.execute("CREATE TABLE captures (something_else TEXT)")
        connection.execute("PRAGMA user_version = 99")
    assert _ids(store) == ["20260301-120000-aaaaaa"]
    with sqlite3.connect(store / CATALOG_FILE) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == CATALOG_VERSION


def test_unparseable_bundle_is_skipped_and_reported(store: Path, template: Manifest) -> None:
    good = fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    bad = store / "20260301-130000-bbbbbb"
    (bad / "provenance").mkdir(parents=True)
    (bad / MANIFEST_PATH).write_text("{not json")
    (store / "notes").mkdir()  # not a bundle at all
    assert _ids(store) == [good.name]
    reasons = {item.name: item.reason for item in unindexed_bundles(store)}
    assert "not JSON" in reasons[bad.name]
    assert "no manifest" in reasons["notes"]
    with pytest.raises(OperationalError):
        record_capture(store, bad)
    # Still resolvable, so that 'show' can say what is wrong with it.
    assert resolve_capture(store, "20260301-13") == bad
    # Repaired: indexed at the next opening.
    fake_manifest = (good / MANIFEST_PATH).read_bytes().replace(
        b"20260301-120000-aaaaaa", bad.name.encode())
    (bad / MANIFEST_PATH).write_bytes(fake_manifest)
    assert _ids(store) == [bad.name, good.name]  # same start time: by id, newest first
    assert [item.name for item in unindexed_bundles(store)] == ["notes"]
    assert listing(store) == Listing(list_captures(store), unindexed_bundles(store))


def test_unwritable_catalog_falls_back_to_memory(store: Path, template: Manifest) -> None:
    fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0)
    (store / CATALOG_FILE).mkdir()  # cannot be opened nor replaced
    assert _ids(store) == ["20260301-120000-aaaaaa"]
    assert resolve_capture(store, "2026").name == "20260301-120000-aaaaaa"
    with pytest.raises(OperationalError):
        record_capture(store, store / "20260301-120000-aaaaaa")


def test_missing_store_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "nowhere"
    assert list_captures(store) == []
    assert previous_capture(store, "http://a.example/") is None
    with pytest.raises(UsageError):
        resolve_capture(store, "2026")
    assert not store.exists()


# ---------------------------------------------------------------------------------------------
# Capture ids as git allows


def test_id_prefixes(store: Path, template: Manifest) -> None:
    ids = ["20260301-120000-aaaaaa", "20260301-120000-aabbbb", "20260302-090000-zzzzzz"]
    for n, capture_id in enumerate(ids):
        fake_bundle(store, template, capture_id, "http://a.example/", T0 + timedelta(hours=n))
    paths = [store / ids[2], store / ids[0]]
    assert resolve_captures(store, [str(path) for path in paths]) == paths
    assert not (store / CATALOG_FILE).exists()  # bundles given by path need no catalog
    assert resolve_capture(store, "20260302") == store / ids[2]
    assert resolve_capture(store, "20260301-120000-aab") == store / ids[1]
    assert resolve_capture(store, ids[0]) == store / ids[0]
    assert resolve_capture(store, "20260301-120000-AAB") == store / ids[1]  # case-insensitive
    assert resolve_capture(store, str(store / ids[0])) == store / ids[0]  # a bundle path
    with pytest.raises(UsageError) as ambiguous:
        resolve_capture(store, "20260301-120000-aa")
    assert ids[0] in str(ambiguous.value) and ids[1] in str(ambiguous.value)
    with pytest.raises(UsageError, match="no capture"):
        resolve_capture(store, "20250101")
    with pytest.raises(UsageError):
        resolve_capture(store, "")
    with pytest.raises(UsageError, match="not a provenance bundle"):
        resolve_capture(store, str(store))
    assert resolve_captures(store, ["20260302", str(store / ids[0]), "20260301-120000-aab"]
                            ) == [store / ids[2], store / ids[0], store / ids[1]]
    # Several refs: the first bad one in order is reported, as one at a time would.
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_captures(store, ["20260301-120000-aa", "no/such/bundle"])
    with pytest.raises(UsageError, match="does not exist"):
        resolve_captures(store, ["no/such/bundle", "20260301-120000-aa"])


# ---------------------------------------------------------------------------------------------
# Previous capture of a URL


def test_previous_capture_is_the_latest_of_the_same_url(store: Path, template: Manifest) -> None:
    assert previous_capture(store, "http://a.example/x") is None
    older = fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/x", T0)
    newer = fake_bundle(store, template, "20260301-130000-bbbbbb", "http://a.example:80/x",
                        T0 + timedelta(hours=1))
    fake_bundle(store, template, "20260301-140000-cccccc", "http://a.example/other",
                T0 + timedelta(hours=2))
    link = previous_capture(store, "HTTP://A.EXAMPLE/x#frag")
    assert link == PreviousCapture(capture_id=newer.name,
                                   manifest_sha256=hash_bytes((newer / MANIFEST_PATH).read_bytes()))
    shutil.rmtree(newer)
    link = previous_capture(store, "http://a.example/x")
    assert link is not None and link.capture_id == older.name


# ---------------------------------------------------------------------------------------------
# Concurrency and crashes

WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from provenance.catalog import list_captures, previous_capture, record_capture, reindex

    store = Path(sys.argv[1])
    names = sys.argv[3:]
    for n, name in enumerate(names):
        previous_capture(store, "http://a.example/" + name)
        record_capture(store, store / name)
        if sys.argv[2] == "reindex" and n % 3 == 0:
            reindex(store)
        list_captures(store)
""")


def _bundles(store: Path, template: Manifest, count: int) -> list[str]:
    names = []
    for n in range(count):
        name = f"20260301-12{n // 60:02d}{n % 60:02d}-{n:06d}"
        fake_bundle(store, template, name, f"http://a.example/{n % 7}", T0 + timedelta(seconds=n))
        names.append(name)
    return names


def test_concurrent_recording_processes(store: Path, template: Manifest,
                                        tmp_path: Path) -> None:
    names = _bundles(store, template, 48)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), str(store),
                                 "reindex" if index % 4 == 0 else "record",
                                 *names[index::8]])
               for index in range(8)]
    assert [worker.wait(timeout=120) for worker in workers] == [0] * 8
    assert _integrity(store) == "ok"
    assert sorted(_ids(store)) == sorted(names)
    assert not list(store.glob(f"{REBUILD_PREFIX}*"))


KILLED_WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from provenance.catalog import list_captures, record_capture, reindex

    store = Path(sys.argv[1])
    names = sys.argv[2:]
    n = 0
    while True:
        record_capture(store, store / names[n % len(names)])
        if n % 5 == 0:
            reindex(store)
        list_captures(store)
        if n == 0:
            print("ready", flush=True)
        n += 1
""")


def test_sigkill_never_corrupts_the_catalog(store: Path, template: Manifest,
                                            tmp_path: Path) -> None:
    names = _bundles(store, template, 30)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WORKER)
    chance = random.Random(5)
    for _round in range(12):
        workers = [subprocess.Popen([sys.executable, str(script), str(store), *names],
                                    stdout=subprocess.PIPE, text=True) for _ in range(2)]
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        time.sleep(chance.random() * 0.25)
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            assert worker.stdout is not None
            worker.stdout.close()
        if (store / CATALOG_FILE).exists():
            assert _integrity(store) == "ok"
    assert sorted(_ids(store)) == sorted(names)
    reindex(store)
    assert not list(store.glob(f"{REBUILD_PREFIX}*"))  # a killed rebuild's file is cleaned up


# ---------------------------------------------------------------------------------------------
# CLI


def _real_captures(store: Path, count: int = 2) -> list[CaptureResult]:
    signer, _key = make_signer()
    results = []
    with serve({"/a": html(ARTICLE.format(title="Flood barrier tests"))}) as server:
        for _ in range(count):
            results.append(capture(f"{server.base_url}/a", store=store, settings=PAGE_ONLY,
                                   signer=signer))
    return results


def test_list_cli(store: Path, template: Manifest) -> None:
    names = _bundles(store, template, 5)
    plain = run_cli("list", "--archive-dir", str(store))
    assert plain.returncode == 0, plain.stderr
    rows = [line.split("\t") for line in plain.stdout.splitlines()]
    assert [row[0] for row in rows] == names[::-1]
    assert rows[0][2] == "COMPLETE" and rows[0][3].startswith("http://a.example/")
    as_json = run_cli("list", "--archive-dir", str(store), "--json", "--url",
                      "http://A.example/1")
    data = json.loads(as_json.stdout)
    assert [item["capture_id"] for item in data] == [names[1]]
    assert data[0]["bundle"] == str(store / names[1])
    since = run_cli("list", "--archive-dir", str(store), "--since", "2026-03-01T12:00:03Z")
    assert [line.split("\t")[0] for line in since.stdout.splitlines()] == names[:2:-1]
    env = run_cli("list", "--json", env={"PROVENANCE_ARCHIVE_DIR": str(store)})
    assert len(json.loads(env.stdout)) == 5
    bad = run_cli("list", "--archive-dir", str(store), "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr
    (store / "junk").mkdir()
    warned = run_cli("list", "--archive-dir", str(store))
    assert warned.returncode == 0 and "junk" in warned.stderr


def test_show_cli(store: Path) -> None:
    first, second = _real_captures(store)
    shown = run_cli("show", second.capture_id, "--archive-dir", str(store), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["capture_id"] == second.capture_id
    assert data["state"] == "COMPLETE"
    assert data["signer"] == second.manifest.signer.fingerprint  # type: ignore[union-attr]
    assert data["manifest_sha256"] == hash_bytes(second.manifest_bytes)
    assert data["resources"][0]["role"] == "article"
    assert data["resources"][0]["sha256"].startswith("sha256:")
    assert data["timestamps"] == []
    plain = run_cli("show", str(first.bundle), "--archive-dir", str(store))
    assert plain.returncode == 0, plain.stderr
    assert f"capture id:   {first.capture_id}" in plain.stdout
    assert "state:        COMPLETE" in plain.stdout
    assert "\x1b[" not in plain.stdout
    text = run_cli("show", second.capture_id, "--archive-dir", str(store), "--text")
    assert text.returncode == 0
    assert text.stdout.startswith("Flood barrier tests\n")
    assert "tested twice a year" in text.stdout
    ambiguous = run_cli("show", second.capture_id[:9], "--archive-dir", str(store))
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    assert first.capture_id in ambiguous.stderr and second.capture_id in ambiguous.stderr
    assert len(ambiguous.stderr.strip().splitlines()) == 1


def test_show_text_of_a_capture_without_text(store: Path) -> None:
    with serve({}) as server:  # every path answers 404: a FAILED capture
        failed = capture(f"{server.base_url}/missing", store=store, settings=PAGE_ONLY)
    assert failed.manifest.state == "FAILED"
    result = run_cli("show", failed.capture_id, "--archive-dir", str(store), "--text")
    assert result.returncode == 2
    assert "has no article text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_show_lists_timestamps_without_verifying(store: Path) -> None:
    from tsa import serve_builtin_tsa

    signer, _key = make_signer()
    with serve({"/a": html(ARTICLE.format(title="Stamped"))}) as server, \
            serve_builtin_tsa() as tsa:
        result = capture(f"{server.base_url}/a", store=store, settings=PAGE_ONLY,
                         signer=signer, tsa_urls=[tsa.url])
    shown = run_cli("show", result.capture_id, "--archive-dir", str(store), "--json")
    stamps = json.loads(shown.stdout)["timestamps"]
    assert len(stamps) == 1
    assert stamps[0]["file"] == "provenance/timestamp-1.tsr"
    assert stamps[0]["gen_time"] == result.timestamps[0].gen_time
    assert stamps[0]["tsa_name"] and stamps[0]["problem"] is None
    plain = run_cli("show", result.capture_id, "--archive-dir", str(store))
    assert "provenance/timestamp-1.tsr" in plain.stdout and "not verified here" in plain.stdout


def test_reindex_cli(store: Path, template: Manifest) -> None:
    names = _bundles(store, template, 4)
    (store / "junk").mkdir()
    assert run_cli("list", "--archive-dir", str(store)).returncode == 0
    (store / CATALOG_FILE).write_bytes(b"garbage")
    result = run_cli("reindex", "--archive-dir", str(store), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["indexed"] == 4
    assert [item["name"] for item in data["unindexed"]] == ["junk"]
    assert _integrity(store) == "ok"
    assert sorted(_ids(store)) == names
    plain = run_cli("reindex", "--archive-dir", str(store))
    assert plain.returncode == 0 and "indexed 4 capture(s)" in plain.stdout
    assert "junk" in plain.stderr
    missing = run_cli("reindex", "--archive-dir", str(store / "nope"))
    assert missing.returncode == 2


def test_control_characters_never_reach_the_output(store: Path, template: Manifest) -> None:
    fake_bundle(store, template, "20260301-120000-aaaaaa", "http://a.example/", T0,
                title="evil\x1b]0;pwned\x07title\twith\ttabs\nand lines")
    plain = run_cli("list", "--archive-dir", str(store))
    line = plain.stdout.rstrip("\n")
    assert "\x1b" not in line and "\x07" not in line and "\n" not in line
    assert len(line.split("\t")) == 5
    assert "evil\\x1b]0;pwned\\x07title\\x09with" in line

