"""A bundle made by the real CLI checks out with stock tools, and stops checking out when altered.

``ssh-keygen -Y verify`` (the SSHSIG), ``openssl pkeyutl -verify -rawin`` (the plain Ed25519
signature), ``sha256sum -c`` (the manifest's file list) and ``warcio check``/``index`` (the WARC).
The key is made with ``provenance keys generate``, the capture with ``provenance capture --key``
and the public key exported with ``provenance keys export``, all as a user would run them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import run_cli, tool
from provenance import signing
from provenance.demo.site import serve_sample_site
from provenance.keys import load_signing_key
from provenance.manifest import load_manifest
from provenance.models import Manifest
from provenance.storage import MANIFEST_PATH, RAW_SIGNATURE_PATH, SIGNATURE_PATH
from provenance.warcscan import scan_warc

PRINCIPAL = "t"


def _require(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(*args: str | Path, stdin: Path | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], input=stdin.read_bytes() if stdin else b"",
                            capture_output=True, cwd=cwd, timeout=60)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(errors="replace"),
                                       result.stderr.decode(errors="replace"))


@dataclass(frozen=True)
class CliCapture:
    config: Path
    key_file: Path
    fingerprint: str
    bundle: Path
    manifest: Manifest
    warc: Path
    allowed_signers: Path
    pub_pem: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> CliCapture:
    config = tmp_path_factory.mktemp("stock-config")
    work = tmp_path_factory.mktemp("stock")
    env = {"PROVENANCE_CONFIG_DIR": str(config)}
    generated = run_cli("keys", "generate", "--name", PRINCIPAL, env=env)
    assert generated.returncode == 0, generated.stderr
    fingerprint = generated.stdout.strip()
    assert fingerprint.startswith("SHA256:")
    key_file = config / "keys" / PRINCIPAL
    with serve_sample_site(slow_delay=0.05) as site:
        captured = run_cli("capture", site.article_url, "--archive-dir", str(work / "archives"),
                           "--key", str(key_file), "--quiet", env=env)
    assert captured.returncode == 0, captured.stderr
    bundle = Path(captured.stdout.strip().splitlines()[-1])
    manifest = load_manifest(bundle / MANIFEST_PATH).manifest
    assert manifest.signer is not None and manifest.signer.fingerprint == fingerprint
    [warc] = [bundle / f.path for f in manifest.files if f.path.endswith(".warc.gz")]
    exported = run_cli("keys", "export", PRINCIPAL, "--format", "allowed-signers", env=env)
    assert exported.returncode == 0, exported.stderr
    allowed_signers = work / "allowed_signers"
    allowed_signers.write_text(exported.stdout)
    pub_pem = work / "pub.pem"
    pem = run_cli("keys", "export", PRINCIPAL, "--format", "pem", "--output", str(pub_pem),
                  env=env)
    assert pem.returncode == 0, pem.stderr
    return CliCapture(config, key_file, fingerprint, bundle, manifest, warc, allowed_signers,
                      pub_pem)


def _tampered_manifest(made: CliCapture, tmp_path: Path) -> Path:
    data = bytearray((made.bundle / MANIFEST_PATH).read_bytes())
    data[len(data) // 2] ^= 0x01
    path = tmp_path / "manifest.json"
    path.write_bytes(data)
    return path


def test_exported_allowed_signers_line(made: CliCapture) -> None:
    line = made.allowed_signers.read_text().strip()
    assert line.startswith(f'{PRINCIPAL} namespaces="{signing.SIGNATURE_NAMESPACE}" ssh-ed25519 ')
    assert made.manifest.signer is not None
    assert line.split()[3] == made.manifest.signer.public_key.split()[1]


def test_provenance_verify_trusts_its_own_key(made: CliCapture) -> None:
    result = run_cli("verify", str(made.bundle), "--json",
                     env={"PROVENANCE_CONFIG_DIR": str(made.config)})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "VERIFIED"
    assert report["checks"][1]["detail"] == f"{made.fingerprint} is trusted as {PRINCIPAL}"


def test_ssh_keygen_verifies_the_manifest_signature(made: CliCapture, tmp_path: Path) -> None:
    ssh_keygen = _require("ssh-keygen")

    def ssh_verify(manifest: Path, namespace: str = signing.SIGNATURE_NAMESPACE,
                   principal: str = PRINCIPAL) -> subprocess.CompletedProcess[str]:
        return _run(ssh_keygen, "-Y", "verify", "-f", made.allowed_signers, "-I", principal,
                    "-n", namespace, "-s", made.bundle / SIGNATURE_PATH, stdin=manifest)

    good = ssh_verify(made.bundle / MANIFEST_PATH)
    assert good.returncode == 0, good.stdout + good.stderr
    assert (f'Good "{signing.SIGNATURE_NAMESPACE}" signature for {PRINCIPAL} with ED25519 key '
            f"{made.fingerprint}") in good.stdout + good.stderr
    assert ssh_verify(_tampered_manifest(made, tmp_path)).returncode != 0
    assert ssh_verify(made.bundle / MANIFEST_PATH, namespace="file").returncode != 0
    assert ssh_verify(made.bundle / MANIFEST_PATH, principal="someone-else").returncode != 0


def test_openssl_verifies_the_plain_ed25519_signature(made: CliCapture, tmp_path: Path) -> None:
    openssl = _require("openssl")
    manifest = made.bundle / MANIFEST_PATH
    loaded = load_signing_key(made.key_file, lambda: None)
    assert loaded.fingerprint == made.fingerprint
    sig = tmp_path / "sig.bin"
    sig.write_bytes(signing.raw_signature(loaded.private_key, manifest.read_bytes()))
    # Ed25519 is deterministic: the bundle's own plain signature is the very same bytes.
    assert (made.bundle / RAW_SIGNATURE_PATH).read_bytes() == sig.read_bytes()
    assert made.pub_pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")

    def pkey_verify(message: Path, signature: Path) -> subprocess.CompletedProcess[str]:
        return _run(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", made.pub_pem, "-rawin",
                    "-in", message, "-sigfile", signature)

    for signature in (sig, made.bundle / RAW_SIGNATURE_PATH):
        good = pkey_verify(manifest, signature)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "Signature Verified Successfully" in good.stdout
    bad = pkey_verify(_tampered_manifest(made, tmp_path), sig)
    assert bad.returncode != 0
    assert "Signature Verified Successfully" not in bad.stdout


def test_sha256sum_checks_the_file_list(made: CliCapture, tmp_path: Path) -> None:
    sha256sum = _require("sha256sum")
    bundle = Path(shutil.copytree(made.bundle, tmp_path / "bundle"))
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("".join(f"{f.sha256.removeprefix('sha256:')}  {f.path}\n"
                            for f in made.manifest.files))
    good = _run(sha256sum, "-c", sums, cwd=bundle)
    assert good.returncode == 0, good.stdout + good.stderr
    assert sorted(good.stdout.splitlines()) == sorted(f"{f.path}: OK"
                                                      for f in made.manifest.files)
    warc = bundle / made.warc.relative_to(made.bundle)
    data = bytearray(warc.read_bytes())
    data[len(data) // 3] ^= 0x80
    warc.write_bytes(data)
    bad = _run(sha256sum, "-c", sums, cwd=bundle)
    assert bad.returncode == 1
    assert f"{warc.relative_to(bundle).as_posix()}: FAILED" in bad.stdout


def test_warcio_checks_and_indexes_every_record(made: CliCapture) -> None:
    check = _run(tool("warcio"), "check", "-v", made.warc)
    assert check.returncode == 0, check.stdout + check.stderr
    index = _run(tool("warcio"), "index", "-f", "offset,length,warc-record-id,warc-type",
                 made.warc)
    assert index.returncode == 0, index.stderr
    theirs = [json.loads(line) for line in index.stdout.splitlines()]
    ours = scan_warc(made.warc)
    assert not ours.problems
    assert all(not r.problems for r in ours.records)
    assert len(theirs) == len(ours.records) > 10
    assert [(int(t["offset"]), int(t["length"]), t["warc-record-id"], t["warc-type"])
            for t in theirs] == [(r.offset, r.length, r.record_id, r.record_type)
                                 for r in ours.records]
    assert ours.size == made.warc.stat().st_size
