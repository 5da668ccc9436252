"""End-to-end capture of the sample site over real loopback HTTP, checked record by record."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import make_signer, read_record, tool
from provenance.capture.events import Notice
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import CaptureResult, capture
from provenance.catalog import list_captures
from provenance.demo import site as sample
from provenance.manifest import load_manifest
from provenance.models import Manifest
from provenance.summary import summarize
from provenance.warc import iter_records


@pytest.fixture
def demo_capture(sample_site: sample.SampleSite, store: Path) -> CaptureResult:
    signer, _key = make_signer()
    return capture(sample_site.article_url, store=store, signer=signer)


def _links_by_path(manifest: Manifest, base: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for link in manifest.links:
        path = link.url.removeprefix(base)
        found.setdefault(path, []).append(f"{link.outcome}:{link.reason}")
    return found


def test_bundle_layout_and_manifest(demo_capture: CaptureResult,
                                    sample_site: sample.SampleSite) -> None:
    bundle = demo_capture.bundle
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert files == [f"archive/{demo_capture.capture_id}.warc.gz",
                     "provenance/manifest.json", "provenance/manifest.json.ed25519",
                     "provenance/manifest.json.sig"]
    loaded = load_manifest(bundle / "provenance/manifest.json")
    assert loaded.raw == demo_capture.manifest_bytes
    manifest = loaded.manifest
    assert manifest.state == "PARTIAL"  # the 404 and the 500 are failures of linked sources
    assert manifest.final_url == sample_site.article_url
    assert manifest.article_kind == "html"
    assert manifest.page.title is not None and sample.ARTICLE_TITLE in manifest.page.title
    assert manifest.page.authors == list(sample.ARTICLE_AUTHORS)
    assert manifest.page.language == "en"
    assert manifest.page.published is not None
    assert manifest.page.published.startswith("2017-08-14")
    assert manifest.article_text is not None
    assert not list(demo_capture.bundle.parent.glob(".tmp-*"))


def test_body_links_outcomes(demo_capture: CaptureResult, sample_site: sample.SampleSite) -> None:
    manifest = demo_capture.manifest
    outcomes = _links_by_path(manifest, sample_site.base_url)
    assert outcomes[sample.REPORT_REDIRECT_PATH] == ["captured:None"]
    assert outcomes[sample.PDF_PATH] == ["captured:None", "skipped:duplicate of an earlier link"]
    assert outcomes[sample.LEGACY_PATH] == ["captured:None"]
    assert outcomes[sample.SLOW_PATH] == ["captured:None"]
    assert outcomes[sample.GONE_PATH] == ["failed:HTTP 404"]
    assert outcomes[sample.BROKEN_PATH] == ["failed:HTTP 500"]
    assert outcomes[sample.CHAIN_START_PATH] == ["captured:None"]
    mailto = [link for link in manifest.links if link.url.startswith("mailto:")]
    assert mailto and mailto[0].outcome == "skipped"
    fragments = [link for link in manifest.links if "#fn" in link.url]
    assert fragments and all(link.outcome == "skipped" for link in fragments)
    chain = next(link for link in manifest.links if link.url.endswith(sample.CHAIN_START_PATH))
    assert chain.final_url == sample_site.base_url + sample.FINAL_DESTINATION_PATH
    by_id = {r.id: r for r in manifest.resources}
    assert [by_id[i].status for i in chain.chain] == [302, 307, 303, 200]
    report = next(link for link in manifest.links
                  if link.url.endswith(sample.REPORT_REDIRECT_PATH))
    assert [by_id[i].status for i in report.chain] == [301, 200]
    assert by_id[report.chain[0]].role == "redirect"


def test_boilerplate_links_not_followed(demo_capture: CaptureResult,
                                        sample_site: sample.SampleSite) -> None:
    requested = set(sample_site.requested_paths.paths())
    for path in sample.NEVER_REQUESTED_PATHS:
        assert path not in requested, path
    for path in sample.EXPECTED_BODY_LINK_PATHS:
        assert path in requested, path


def test_requisites_captured(demo_capture: CaptureResult, sample_site: sample.SampleSite) -> None:
    requisites = {r.url.removeprefix(sample_site.base_url): r
                  for r in demo_capture.manifest.resources if r.role == "requisite"}
    for path in sample.REQUISITE_PATHS:
        assert path in requisites, path
        assert requisites[path].status == 200
        assert requisites[path].response is not None


def test_chunked_gzip_article_stored_byte_exact(demo_capture: CaptureResult,
                                                sample_site: sample.SampleSite) -> None:
    article = next(r for r in demo_capture.manifest.resources if r.role == "article")
    assert article.response is not None
    _head, block = read_record(demo_capture.bundle, article.response)
    sent = [r.wire for r in sample_site.requested_paths.responses()
            if r.target == sample.ARTICLE_PATH]
    assert block == sent[0]  # status line, header order and case, chunk framing, gzip bytes
    assert b"Transfer-Encoding: chunked" in block and b"Content-Encoding: gzip" in block
    assert article.transfer_encoding == "chunked"
    assert article.content_encoding == "gzip"
    # The manifest's digest is over the entity with the chunk framing removed (WARC 1.1 6.3.2).
    entity = _dechunk(sample.article_wire_body(sample_site.base_url))
    assert b"<html" in gzip.decompress(entity)
    assert article.bytes == len(entity)
    assert article.sha256 == "sha256:" + hashlib.sha256(entity).hexdigest()


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    rest = body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2:]


def test_records_indexed_and_checked_by_warcio(demo_capture: CaptureResult) -> None:
    warc = demo_capture.bundle / "archive" / f"{demo_capture.capture_id}.warc.gz"
    check = subprocess.run([tool("warcio"), "check", "-v", str(warc)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    index = subprocess.run([tool("warcio"), "index", str(warc)], capture_output=True,
                           text=True, timeout=60)
    assert index.returncode == 0
    indexed = [json.loads(line) for line in index.stdout.splitlines()]
    ours = list(iter_records(warc))
    assert len(indexed) == len(ours)
    types = [r.record_type for r in ours]
    assert types[0] == "warcinfo"
    assert "conversion" in types
    responses = [r for r in ours if r.record_type == "response"]
    requests = [r for r in ours if r.record_type == "request"]
    assert len(responses) == len(requests) == len(
        [r for r in demo_capture.manifest.resources if r.response])
    for record in responses:
        headers = dict(record.headers)
        assert headers["WARC-IP-Address"] == "127.0.0.1"
        assert headers["WARC-Block-Digest"].startswith("sha256:")
        assert headers["WARC-Payload-Digest"].startswith("sha256:")
        assert record.target_uri


def test_conversion_record_refers_to_article(demo_capture: CaptureResult) -> None:
    manifest = demo_capture.manifest
    assert manifest.article_text is not None
    head, block = read_record(demo_capture.bundle, manifest.article_text.record)
    article = next(r for r in manifest.resources if r.role == "article")
    assert article.response is not None
    assert f"WARC-Refers-To: {article.response.record_id}".encode() in head
    text = block.decode("utf-8")
    for snippet in sample.ARTICLE_TEXT_SNIPPETS:
        assert snippet in text


def test_summary_rows_cover_every_url(demo_capture: CaptureResult) -> None:
    rows = summarize(demo_capture.manifest)
    outcomes = {row.outcome for row in rows}
    assert {"captured", "failed", "skipped"} <= outcomes
    failed = [row for row in rows if row.outcome == "failed"]
    assert all(row.reason for row in failed)


def test_links_none_and_patterns(sample_site: sample.SampleSite, store: Path) -> None:
    result = capture(sample_site.article_url, store=store,
                     settings=CaptureSettings(links="none", requisites=False))
    assert all(link.outcome == "skipped" for link in result.manifest.links)
    assert [r.role for r in result.manifest.resources] == ["article"]
    assert result.manifest.state == "COMPLETE"

    only_pdf = capture(sample_site.article_url, store=store,
                       settings=CaptureSettings(include=("*.pdf",), requisites=False))
    captured = [link.url for link in only_pdf.manifest.links if link.outcome == "captured"]
    assert captured == [sample_site.base_url + sample.PDF_PATH]

    no_reports = capture(sample_site.article_url, store=store,
                         settings=CaptureSettings(exclude=("*/reports/*", "*/r/*"),
                                                  requisites=False, max_links=2))
    reasons = {link.url.removeprefix(sample_site.base_url): link.reason
               for link in no_reports.manifest.links}
    assert reasons[sample.CHAIN_START_PATH] == "matched --exclude */r/*"
    over = [r for r in reasons.values() if r and "--max-links" in r]
    assert over


def test_slow_source_hits_time_limit(sample_site: sample.SampleSite, store: Path) -> None:
    result = capture(sample_site.article_url, store=store,
                     settings=CaptureSettings(read_timeout=0.1, include=("*/slow/*",),
                                              requisites=False))
    slow = next(link for link in result.manifest.links if link.url.endswith(sample.SLOW_PATH))
    assert slow.outcome == "failed"
    assert slow.reason is not None and "timed out" in slow.reason
    assert result.manifest.state == "PARTIAL"


def test_pdf_article_is_a_document(sample_site: sample.SampleSite, store: Path) -> None:
    result = capture(sample_site.base_url + sample.PDF_PATH, store=store)
    assert result.manifest.article_kind == "document"
    assert result.manifest.state == "COMPLETE"
    assert result.manifest.resources[0].media_type == "application/pdf"


def test_failed_article_is_recorded(sample_site: sample.SampleSite, store: Path) -> None:
    result = capture(sample_site.base_url + sample.GONE_PATH, store=store)
    assert result.manifest.state == "FAILED"
    assert result.manifest.resources[0].status == 404
    assert (result.bundle / "provenance/manifest.json").is_file()


def test_interrupted_capture_leaves_no_bundle(sample_site: sample.SampleSite,
                                              store: Path) -> None:
    class Boom(Exception):
        pass

    def observer(event: object) -> None:
        if getattr(event, "role", None) == "linked_source":
            raise Boom

    with pytest.raises(Boom):
        capture(sample_site.article_url, store=store, observer=observer)
    # no bundle and no temporary directory; the catalog may exist (its lookup of the previous
    # capture starts once the requests are out), and lists nothing
    assert [path.name for path in store.iterdir() if path.is_dir()] == []
    assert list_captures(store) == []


def test_stale_temporaries_are_cleaned_but_live_ones_kept(sample_site: sample.SampleSite,
                                                          store: Path) -> None:
    from provenance.storage import open_pending

    dead = store / ".tmp-20200101-000000-aaaaaa"
    (dead / "archive").mkdir(parents=True)
    (dead / "archive" / "half.warc.gz").write_bytes(b"\x1f\x8b partial")
    orphan_lock = store / ".tmp-20200101-000000-cccccc.lock"  # killed before its mkdir
    orphan_lock.write_bytes(b"")
    live = open_pending(store, "20200101-000000-bbbbbb")  # holds its lock, like a running capture
    events: list[object] = []
    try:
        result = capture(sample_site.article_url, store=store,
                         settings=CaptureSettings(links="none", requisites=False),
                         observer=events.append)
        assert not dead.exists() and not orphan_lock.exists()
        notes = [event.message for event in events if isinstance(event, Notice)]
        assert notes == [f"removed {name}, left in the store by a capture that died"
                         for name in (dead.name, orphan_lock.name)]
        assert live.path.is_dir() and live.lock_path.exists()
        assert result.bundle.is_dir()
    finally:
        live.discard()
    # Besides the bundle, only the catalog (an index derived from the bundles) remains.
    assert sorted(p.name for p in store.iterdir()) == [result.capture_id, "catalog.sqlite",
                                                       "catalog.sqlite.lock"]


def test_a_capture_failing_early_still_removes_what_dead_captures_left(
        sample_site: sample.SampleSite, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dead capture's leftovers filled the disk: the next capture fails on its first record,
    # before its store work (done once the requests are out) has run. It must still free the
    # store, or every capture after it would fail the same way.
    import errno

    from provenance import warc

    dead = store / ".tmp-20200101-000000-aaaaaa"
    (dead / "archive").mkdir(parents=True)
    (dead / "archive" / "huge.warc.gz").write_bytes(b"\x1f\x8b" * 1000)
    real_write = warc.WarcFile.write

    def disk_full(self: warc.WarcFile, *args: Any, **kwargs: Any) -> warc.RecordLocation:
        if dead.exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(warc.WarcFile, "write", disk_full)
    events: list[object] = []
    with pytest.raises(OSError, match="No space left"):
        capture(sample_site.article_url, store=store, observer=events.append,
                settings=CaptureSettings(links="none", requisites=False))
    assert not dead.exists()
    assert [event.message for event in events if isinstance(event, Notice)] == [
        f"removed {dead.name}, left in the store by a capture that died"]
    assert [path.name for path in store.iterdir() if path.name.startswith(".tmp-")] == []
    result = capture(sample_site.article_url, store=store,
                     settings=CaptureSettings(links="none", requisites=False))
    assert result.manifest.state == "COMPLETE"


def test_a_store_that_cannot_be_searched_for_leftovers_is_noted_not_fatal(
        sample_site: sample.SampleSite, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance.capture import pipeline

    def unreadable(where: Path) -> list[str]:
        raise PermissionError(13, "Permission denied", str(where))

    monkeypatch.setattr(pipeline, "remove_stale_temporaries", unreadable)
    events: list[object] = []
    result = capture(sample_site.article_url, store=store, observer=events.append,
                     settings=CaptureSettings(requisites=False))
    assert result.manifest.state in ("COMPLETE", "PARTIAL")
    assert [event.message for event in events if isinstance(event, Notice)] == [
        "could not look for what dead captures left in the store: Permission denied"]


def test_a_ctrl_c_after_the_commit_keeps_the_bundle_and_says_so(
        sample_site: sample.SampleSite, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the catalog row is written: the bundle is whole, so it stays, and the
    error says where it is instead of "discarded"; the catalog lists it when next opened."""
    from provenance.capture import pipeline
    from provenance.errors import InterruptedAfterCommitError, UserInterruptError
    from provenance.verify import verify_bundle

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # as SIGINT raises it, between two bytecodes of the catalog

    monkeypatch.setattr(pipeline, "record_capture", interrupted)
    signer, _key = make_signer()
    with pytest.raises(InterruptedAfterCommitError) as raised:
        capture(sample_site.article_url, store=store, signer=signer,
                settings=CaptureSettings(requisites=False))
    monkeypatch.undo()
    bundle = raised.value.bundle
    assert isinstance(raised.value, UserInterruptError) and raised.value.exit_code == 130
    assert str(bundle) in str(raised.value) and "committed" in str(raised.value)
    assert verify_bundle(bundle, trusted=[signer.fingerprint]).verdict == "VERIFIED"
    assert [entry.bundle for entry in list_captures(store)] == [bundle]
