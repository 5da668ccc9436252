"""Capturing with --tsa, and stamping an existing bundle later (RFC 3161 over the signature)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import make_signer, run_cli
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from provenance.demo.site import SampleSite
from tsa import make_pki, serve_builtin_tsa, serve_openssl_tsa

PAGE_ONLY = CaptureSettings(links="none", requisites=False)


def test_capture_with_two_tsas_stores_tokens(sample_site: SampleSite, store: Path,
                                             tmp_path: Path) -> None:
    signer, _key = make_signer()
    with serve_builtin_tsa() as builtin, serve_openssl_tsa(tmp_path / "ossl") as ossl:
        result = capture(sample_site.article_url, store=store, settings=PAGE_ONLY,
                         signer=signer, tsa_urls=[builtin.url, ossl.url])
        sent_by_openssl = ossl.responses[0]
    assert [s.error for s in result.timestamps] == [None, None]
    assert [s.token_file for s in result.timestamps] == [
        "provenance/timestamp-1.tsr", "provenance/timestamp-2.tsr"]
    bundle = result.bundle
    assert (bundle / "provenance/timestamp-2.tsr").read_bytes() == sent_by_openssl
    assert (bundle / "provenance/timestamp-1.tsq").is_file()
    # The manifest is untouched by stamping: its bytes are still what was signed.
    assert (bundle / "provenance/manifest.json").read_bytes() == result.manifest_bytes
    root = tmp_path / "root.pem"
    root.write_bytes(builtin.pki.root_pem)
    check = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(bundle / "provenance/manifest.json.sig"),
         "-in", str(bundle / "provenance/timestamp-1.tsr"), "-CAfile", str(root)],
        capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Verification: OK" in check.stdout


def test_unreachable_tsa_keeps_the_signed_capture(sample_site: SampleSite,
                                                  tmp_path: Path) -> None:
    with serve_builtin_tsa() as tsa:
        tsa.mode = "http500"
        result = run_cli("capture", sample_site.article_url, "--links", "none",
                         "--archive-dir", str(tmp_path), "--tsa", tsa.url, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["timestamps"][0]["error"] and "HTTP 500" in summary["timestamps"][0]["error"]
    assert "timestamp failed" in result.stderr
    bundle = Path(summary["bundle"])
    assert (bundle / "provenance/manifest.json.sig").is_file()
    assert not list((bundle / "provenance").glob("timestamp-*"))

    with serve_builtin_tsa() as tsa:
        tsa.mode = "http500"
        strict = run_cli("capture", sample_site.article_url, "--links", "none",
                         "--archive-dir", str(tmp_path), "--tsa", tsa.url, "--strict")
    assert strict.returncode == 3
    assert "Traceback" not in strict.stderr


def test_timestamp_command_adds_tokens_later(sample_site: SampleSite, tmp_path: Path) -> None:
    captured = run_cli("capture", sample_site.article_url, "--links", "none", "--quiet",
                       "--archive-dir", str(tmp_path))
    bundle = Path(captured.stdout.strip())
    manifest_before = (bundle / "provenance/manifest.json").read_bytes()
    pki = make_pki()
    with serve_builtin_tsa(pki) as tsa:
        first = run_cli("timestamp", str(bundle), "--tsa", tsa.url)
        second = run_cli("timestamp", str(bundle), "--tsa", tsa.url,
                         env={"PROVENANCE_TSA": ""})
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in (bundle / "provenance").glob("timestamp-*.tsr")) == [
        "timestamp-1.tsr", "timestamp-2.tsr"]
    assert (bundle / "provenance/manifest.json").read_bytes() == manifest_before

    no_tsa = run_cli("timestamp", str(bundle), env={"PROVENANCE_TSA": ""})
    assert no_tsa.returncode == 2
    not_bundle = run_cli("timestamp", str(tmp_path), "--tsa", "http://127.0.0.1:9/")
    assert not_bundle.returncode == 2


def test_tsa_from_environment(sample_site: SampleSite, tmp_path: Path) -> None:
    with serve_builtin_tsa() as tsa:
        result = run_cli("capture", sample_site.article_url, "--links", "none", "--json",
                         "--archive-dir", str(tmp_path), env={"PROVENANCE_TSA": tsa.url})
    assert result.returncode == 0, result.stderr
    stamps = json.loads(result.stdout)["timestamps"]
    assert [s["token_file"] for s in stamps] == ["provenance/timestamp-1.tsr"]
