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
    second = make_pki(root_name="second operator root", tsa_name="second operator TSA")
    with serve_builtin_tsa() as builtin, serve_openssl_tsa(tmp_path / "ossl", second) as ossl:
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
    # Two TSAs, one root given: the token that can be judged passes, the other is SKIP.
    from provenance.verify import verify_bundle

    report = verify_bundle(bundle, trusted=[signer.fingerprint],
                           tsa_roots=[builtin.pki.root_cert])
    assert [t.status for t in report.timestamps] == ["PASS", "SKIP"]
    assert report.verdict == "VERIFIED"


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


def test_verify_checks_tokens(sample_site: SampleSite, store: Path, tmp_path: Path) -> None:
    from provenance.verify import verify_bundle

    signer, _key = make_signer()
    pki = make_pki()
    with serve_builtin_tsa(pki) as tsa:
        result = capture(sample_site.article_url, store=store, settings=PAGE_ONLY,
                         signer=signer, tsa_urls=[tsa.url])
    bundle = result.bundle
    trusted = [signer.fingerprint]

    passed = verify_bundle(bundle, trusted=trusted, tsa_roots=[pki.root_cert])
    assert passed.verdict == "VERIFIED"
    assert passed.checks[-1].name == "timestamps" and passed.checks[-1].status == "PASS"
    token = passed.timestamps[0]
    assert token.file == "provenance/timestamp-1.tsr" and token.gen_time
    assert token.embedded_chain  # reported from the token, never trusted

    unrooted = verify_bundle(bundle, trusted=trusted)
    assert unrooted.checks[-1].status == "SKIP"
    assert "--tsa-root" in unrooted.checks[-1].detail
    assert unrooted.verdict == "VERIFIED"  # a token nobody could check never counts as PASS

    stranger = make_pki(root_name="someone else's root")
    unrelated = verify_bundle(bundle, trusted=trusted, tsa_roots=[stranger.root_cert])
    assert unrelated.checks[-1].status == "SKIP"  # another TSA's root cannot judge it

    impostor = make_pki()  # the same root name as the TSA's, another key
    wrong_root = verify_bundle(bundle, trusted=trusted, tsa_roots=[impostor.root_cert])
    assert wrong_root.verdict == "FAILED"
    assert wrong_root.checks[-1].problems[0].file == "provenance/timestamp-1.tsr"

    root_file = tmp_path / "root.pem"
    root_file.write_bytes(pki.root_pem)
    cli = run_cli("verify", str(bundle), "--trusted-key", signer.fingerprint,
                  "--tsa-root", str(root_file))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "timestamp-1.tsr: PASS" in cli.stdout

    # A token over other bytes (the signature of another capture) fails on its imprint.
    other = capture(sample_site.article_url, store=store, settings=PAGE_ONLY, signer=signer,
                    tsa_urls=[])
    tsr = bundle / "provenance/timestamp-1.tsr"
    (other.bundle / "provenance/timestamp-1.tsr").write_bytes(tsr.read_bytes())
    (other.bundle / "provenance/timestamp-1.tsq").write_bytes(
        (bundle / "provenance/timestamp-1.tsq").read_bytes())
    moved = verify_bundle(other.bundle, trusted=trusted, tsa_roots=[pki.root_cert])
    assert moved.verdict == "FAILED"
    assert moved.timestamps[0].status == "FAIL"
    no_root_moved = verify_bundle(other.bundle, trusted=trusted)
    assert no_root_moved.timestamps[0].status == "FAIL"  # imprint mismatch needs no root


def test_bad_tsa_url_is_refused_before_capturing(sample_site: SampleSite, tmp_path: Path) -> None:
    result = run_cli("capture", sample_site.article_url, "--tsa", "ftp://tsa.example/",
                     "--archive-dir", str(tmp_path / "a"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "a").exists()
    assert sample_site.requested_paths.paths() == []  # nothing fetched
