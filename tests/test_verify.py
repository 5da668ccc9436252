"""``provenance verify`` against real captures of the sample site: intact, tampered, malformed.

One capture per module (real loopback HTTP, real Ed25519 keys); every test works on its own
copy. Library calls carry the detailed assertions; the CLI is run as a user would run it for
exit codes, ``--json`` and the absence of tracebacks.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from helpers import make_signer, run_cli
from provenance import keys, signing
from provenance.capture.pipeline import capture
from provenance.demo.site import serve_sample_site
from provenance.errors import UsageError
from provenance.keys import TrustStore
from provenance.manifest import load_manifest
from provenance.models import Manifest, WarcLocation
from provenance.snapshot import read_record
from provenance.storage import MANIFEST_PATH, RAW_SIGNATURE_PATH, SIGNATURE_PATH
from provenance.verify import Problem, VerificationReport, verify_bundle
from provenance.warcheader import parse_header
from provenance.warcscan import scan_warc

CHECK_NAMES = ["signature", "identity", "files", "records", "resources"]


# --------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Pristine:
    bundle: Path
    key: signing.PrivateKey
    fingerprint: str
    manifest: Manifest
    warc: str  # bundle-relative path of the one WARC file


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    store = tmp_path_factory.mktemp("pristine")
    signer, key = make_signer()
    with serve_sample_site(slow_delay=0.05) as site:
        result = capture(site.article_url, store=store, signer=signer)
    warcs = [f.path for f in result.manifest.files if f.path.endswith(".warc.gz")]
    assert len(warcs) == 1
    return Pristine(result.bundle, key, signer.fingerprint, result.manifest, warcs[0])


@pytest.fixture
def bundle(pristine: Pristine, tmp_path: Path) -> Path:
    """A private copy of the pristine bundle."""
    return Path(shutil.copytree(pristine.bundle, tmp_path / "bundle", symlinks=True))


# --------------------------------------------------------------------------- helpers


def verify(path: Path, *trusted: str) -> VerificationReport:
    return verify_bundle(path, trusted=trusted)


def cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = run_cli(*(str(a) for a in args), timeout=timeout)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def cli_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify", *args, "--json")
    return result.returncode, json.loads(result.stdout)


def statuses(report: VerificationReport) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def problems(report: VerificationReport, check: str | None = None) -> list[Problem]:
    return [p for c in report.checks if check in (None, c.name) for p in c.problems]


def named(report: VerificationReport, check: str | None = None) -> set[str | None]:
    return {p.file for p in problems(report, check)}


def assert_fails_naming(report: VerificationReport, *files: str) -> None:
    assert report.verdict == "FAILED"
    assert not report.ok
    assert set(files) <= named(report), (files, problems(report))


def check(report: VerificationReport, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def write_manifest(bundle: Path, data: dict[str, Any]) -> bytes:
    raw = bytes(rfc8785.dumps(data))
    (bundle / MANIFEST_PATH).write_bytes(raw)
    return raw


def sign(bundle: Path, key: signing.PrivateKey) -> None:
    """(Re-)sign the manifest on disk: SSHSIG, and the plain Ed25519 signature if present."""
    raw = (bundle / MANIFEST_PATH).read_bytes()
    (bundle / SIGNATURE_PATH).write_bytes(signing.sign_message(key, raw))
    if (bundle / RAW_SIGNATURE_PATH).exists():
        (bundle / RAW_SIGNATURE_PATH).write_bytes(signing.raw_signature(key, raw))


def edit_manifest(bundle: Path, edit: Callable[[dict[str, Any]], object],
                  key: signing.PrivateKey | None = None) -> None:
    """Apply ``edit`` to the manifest JSON, re-canonicalise, and re-sign with ``key`` if given."""
    data = json.loads((bundle / MANIFEST_PATH).read_bytes())
    edit(data)
    write_manifest(bundle, data)
    if key is not None:
        sign(bundle, key)


def relist(bundle: Path, key: signing.PrivateKey) -> None:
    """Make the manifest's file list match the files on disk again, and re-sign it."""
    def update(data: dict[str, Any]) -> None:
        for entry in data["files"]:
            content = (bundle / entry["path"]).read_bytes()
            entry["bytes"] = len(content)
            entry["sha256"] = "sha256:" + hashlib.sha256(content).hexdigest()
    edit_manifest(bundle, update, key)


def file_entry(path: str, content: bytes) -> dict[str, Any]:
    return {"path": path, "bytes": len(content),
            "sha256": "sha256:" + hashlib.sha256(content).hexdigest()}


def member_spans(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every gzip member, found with zlib alone (independent of us)."""
    spans = []
    offset = 0
    while offset < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[offset:])
        assert inflater.eof
        length = len(data) - offset - len(inflater.unused_data)
        spans.append((offset, length))
        offset += length
    return spans


def inflate_member(member: bytes) -> bytes | None:
    """The member's content if it inflates cleanly (CRC and size included), else ``None``."""
    inflater = zlib.decompressobj(31)
    try:
        out = inflater.decompress(member)
    except zlib.error:
        return None
    return out if inflater.eof and not inflater.unused_data else None


_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | Path):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Every file opened in this process meanwhile, as a resolved path."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def assert_never_opened(opened: list[str], *bait: Path) -> None:
    for path in opened:
        for forbidden in bait:
            assert not path.startswith(os.path.realpath(forbidden)), f"read {path}"


# --------------------------------------------------------------------------- intact bundles


def test_fresh_bundle_verifies_when_signer_trusted(bundle: Path, pristine: Pristine) -> None:
    report = verify(bundle, pristine.fingerprint)
    assert report.verdict == "VERIFIED" and report.ok
    assert [c.name for c in report.checks] == CHECK_NAMES
    assert all(c.status == "PASS" and not c.problems for c in report.checks)
    assert report.signer == pristine.fingerprint
    assert report.capture_id == pristine.manifest.capture_id
    records = check(report, "records").detail
    assert records.startswith(f"{len(scan_warc(bundle / pristine.warc).records)} record(s)")


def test_fresh_bundle_cli(bundle: Path, pristine: Pristine) -> None:
    result = cli("verify", bundle, "--trusted-key", pristine.fingerprint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout
    code, report = cli_json(bundle, "--trusted-key", pristine.fingerprint)
    assert code == 0
    assert report["verdict"] == "VERIFIED"
    assert report["signer"] == pristine.fingerprint
    assert [c["name"] for c in report["checks"]] == CHECK_NAMES
    assert [c["status"] for c in report["checks"]] == ["PASS"] * 5


def test_untrusted_signer(bundle: Path, pristine: Pristine) -> None:
    report = verify(bundle)
    assert report.verdict == "UNTRUSTED" and not report.ok
    assert statuses(report) == {"signature": "PASS", "identity": "UNTRUSTED", "files": "PASS",
                                "records": "PASS", "resources": "PASS"}
    assert pristine.fingerprint in check(report, "identity").detail
    result = cli("verify", bundle)
    assert result.returncode == 1
    assert "NOT FULLY VERIFIED" in result.stdout
    code, data = cli_json(bundle)
    assert code == 1
    assert data["verdict"] == "UNTRUSTED"
    assert [(c["name"], c["status"]) for c in data["checks"]][:2] == [
        ("signature", "PASS"), ("identity", "UNTRUSTED")]


def test_trust_from_files_and_config(bundle: Path, pristine: Pristine, tmp_path: Path) -> None:
    pub = pristine.key.public_key()
    pub_file = tmp_path / "signer.pub"
    pub_file.write_text(signing.public_key_openssh(pub, "desk") + "\n")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signing.allowed_signers_line(pub, "desk@example.org") + "\n")
    assert verify(bundle, str(pub_file)).verdict == "VERIFIED"
    report = verify(bundle, str(allowed))
    assert report.verdict == "VERIFIED"
    assert "desk@example.org" in check(report, "identity").detail
    assert cli("verify", bundle, "--trusted-key", allowed).returncode == 0
    # Someone else's key does not vouch for this signer.
    other = signing.generate_private_key().public_key()
    assert verify(bundle, signing.fingerprint(other)).verdict == "UNTRUSTED"
    # Trusted through the config's allowed_signers; an explicit empty TrustStore means none.
    keys.trust_key(pub, "newsdesk")
    assert verify(bundle).verdict == "VERIFIED"
    assert verify_bundle(bundle, trust=TrustStore()).verdict == "UNTRUSTED"


def test_plain_signature_file_is_required(bundle: Path, pristine: Pristine) -> None:
    (bundle / RAW_SIGNATURE_PATH).unlink()
    report = verify(bundle, pristine.fingerprint)
    assert report.verdict == "FAILED"
    assert RAW_SIGNATURE_PATH in named(report)


# --------------------------------------------------------------------------- random flips


def _flip_positions(bundle: Path, count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` positions spread evenly over every file, plus each file's first and last."""
    rng = random.Random(seed)
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    positions = []
    for index, name in enumerate(files):
        size = (bundle / name).stat().st_size
        share = count // len(files) + (1 if index < count % len(files) else 0)
        positions += [(name, 0), (name, size - 1)]
        positions += [(name, rng.randrange(size)) for _ in range(share)]
    return positions


def test_single_byte_flips_anywhere_are_caught(bundle: Path, pristine: Pristine) -> None:
    positions = _flip_positions(bundle, 200, seed=20170814)
    names = {name for name, _ in positions}
    assert {MANIFEST_PATH, SIGNATURE_PATH, pristine.warc} <= names
    warc_bytes = (bundle / pristine.warc).read_bytes()
    spans = member_spans(warc_bytes)
    rng = random.Random(8785)
    content_unchanged = 0
    for name, position in positions:
        path = bundle / name
        original = path.read_bytes()
        mutated = bytearray(original)
        mutated[position] ^= rng.randrange(1, 256)
        path.write_bytes(mutated)
        try:
            report = verify(bundle, pristine.fingerprint)
        finally:
            path.write_bytes(original)
        where = f"{name}@{position}"
        assert report.verdict == "FAILED", where
        assert name in named(report), (where, problems(report))
        if name != pristine.warc:
            continue
        start, length = next((o, n) for o, n in spans if o <= position < o + n)
        member = bytes(mutated[start:start + length])
        if inflate_member(member) == inflate_member(warc_bytes[start:start + length]):
            # Only bits outside every checksum changed (gzip header FLG.FTEXT, MTIME, XFL, OS;
            # deflate padding bits): every record is intact, and the whole-file sha256 is
            # what catches it.
            content_unchanged += 1
            assert statuses(report)["records"] == "PASS", where
            assert [p.message for p in problems(report, "files")] == [
                "sha256 differs from the manifest"], where
            continue
        located = [p for p in problems(report) if p.file == name and p.offset == start]
        assert located, (where, start, problems(report))
        # One damaged record does not hide the others: nothing else in the WARC is blamed.
        others = [p for p in problems(report, "records") if p.offset not in (start, None)]
        assert not others, (where, others)
    assert content_unchanged <= len(positions) // 10


def test_flips_through_the_cli(bundle: Path, pristine: Pristine) -> None:
    for name in sorted({MANIFEST_PATH, SIGNATURE_PATH, RAW_SIGNATURE_PATH, pristine.warc}):
        path = bundle / name
        original = path.read_bytes()
        mutated = bytearray(original)
        mutated[len(mutated) // 2] ^= 0x20
        path.write_bytes(mutated)
        try:
            code, report = cli_json(bundle, "--trusted-key", pristine.fingerprint)
            human = cli("verify", bundle, "--trusted-key", pristine.fingerprint) \
                if name == pristine.warc else None
        finally:
            path.write_bytes(original)
        assert code == 1, name
        assert report["verdict"] == "FAILED"
        assert name in {p["file"] for c in report["checks"] for p in c["problems"]}
        if human is not None:
            assert human.returncode == 1
            assert "FAILED" in human.stdout


# --------------------------------------------------------------------------- the WARC file


@pytest.mark.parametrize("where", ["mid-first", "mid-member", "boundary", "boundary-last",
                                   "one-byte-short", "empty"])
def test_truncated_warc(bundle: Path, pristine: Pristine, where: str) -> None:
    path = bundle / pristine.warc
    data = path.read_bytes()
    spans = member_spans(data)
    cut_member = {"mid-first": 0, "mid-member": len(spans) // 2}.get(where)
    if cut_member is not None:
        start, length = spans[cut_member]
        cut = start + length // 2
    else:
        cut = {"boundary": spans[1][0], "boundary-last": spans[-1][0],
               "one-byte-short": len(data) - 1, "empty": 0}[where]
    path.write_bytes(data[:cut])
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    assert any(p.message.startswith(f"size {cut} differs") for p in problems(report, "files"))
    records = problems(report, "records")
    if where.startswith("mid") or where == "one-byte-short":
        start = spans[cut_member][0] if cut_member is not None else spans[-1][0]
        assert any(p.offset == start and "truncated" in p.message for p in records), records
    elif where == "empty":
        assert any(p.message == "empty file, not a WARC" for p in records)
    else:  # cut exactly between members: every record that was after the cut is missed
        referenced = [p for p in problems(report, "resources")
                      if "no record starts at this offset" in p.message]
        assert referenced and all(p.offset is not None and p.offset >= cut for p in referenced)
        assert min(p.offset or 0 for p in referenced) == cut
    if where == "mid-member":
        assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1


def test_deleted_warc(bundle: Path, pristine: Pristine) -> None:
    (bundle / pristine.warc).unlink()
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    assert statuses(report) == {"signature": "PASS", "identity": "PASS", "files": "FAIL",
                                "records": "FAIL", "resources": "FAIL"}
    assert problems(report, "files")[0].message == "listed file is missing"
    assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1


@pytest.mark.parametrize("extra", ["archive/extra.warc.gz", "notes.txt", "provenance/notes.txt",
                                   "archive/deeper/x.warc.gz", "provenance/timestamp-1/x.tsr"])
def test_unlisted_file(bundle: Path, pristine: Pristine, extra: str) -> None:
    target = bundle / extra
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle / pristine.warc, target)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, extra)
    assert statuses(report)["files"] == "FAIL"
    assert [p.message for p in problems(report)] == ["file is not listed in the manifest"]
    if extra == "notes.txt":
        assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1


def test_timestamp_tokens_may_be_unlisted(bundle: Path, pristine: Pristine) -> None:
    for name in ("timestamp-1.tsr", "timestamp-1.tsq", "timestamp-12.tsr"):
        (bundle / "provenance" / name).write_bytes(b"\x30\x03\x02\x01\x00")
    report = verify(bundle, pristine.fingerprint)
    assert check(report, "files").status == "PASS"  # tokens need not be listed...
    stamps = check(report, "timestamps")  # ...but every one of them is checked
    assert stamps.status == "FAIL"
    assert {p.file for p in stamps.problems} == {"provenance/timestamp-1.tsr",
                                                 "provenance/timestamp-12.tsr"}
    for name in ("timestamp-1.tsr", "timestamp-1.tsq", "timestamp-12.tsr"):
        (bundle / "provenance" / name).unlink()
    for name in ("timestamp-x.tsr", "timestamp-0.tsq", ".timestamp-1.tsr.tmp",
                 "timestamp-1.tsr.bak"):
        (bundle / "provenance" / name).write_bytes(b"x")
        report = verify(bundle, pristine.fingerprint)
        assert named(report) == {f"provenance/{name}"}, name
        (bundle / "provenance" / name).unlink()


def test_one_damaged_record_is_reported_alone(bundle: Path, pristine: Pristine) -> None:
    path = bundle / pristine.warc
    data = bytearray(path.read_bytes())
    spans = member_spans(bytes(data))
    start, length = spans[len(spans) // 2]
    data[start + length // 2] ^= 0xFF
    path.write_bytes(data)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    assert {p.offset for p in problems(report, "records")} == {start}
    assert {p.offset for p in problems(report, "resources")} <= {start}
    assert f"among {len(spans)} record(s)" in check(report, "records").detail


@pytest.mark.parametrize("flag", [0x02, 0x04, 0x08, 0x10, 0x20],
                         ids=["FHCRC", "FEXTRA", "FNAME", "FCOMMENT", "reserved"])
def test_damaged_gzip_header_flags(bundle: Path, pristine: Pristine, flag: int) -> None:
    """A header flag that makes a member swallow what follows still blames one record."""
    path = bundle / pristine.warc
    original = path.read_bytes()
    spans = member_spans(original)
    for start, _length in (spans[1], spans[len(spans) // 2], spans[-2]):
        data = bytearray(original)
        data[start + 3] ^= flag  # RFC 1952 section 2.3.1: FLG
        path.write_bytes(data)
        report = verify(bundle, pristine.fingerprint)
        assert_fails_naming(report, pristine.warc)
        assert {p.offset for p in problems(report, "records")} == {start}, problems(report)
        assert {p.offset for p in problems(report, "resources")} <= {start}
    path.write_bytes(original)


# --------------------------------------------------------------------------- manifest and signature


def test_edited_manifest_fails_signature(bundle: Path, pristine: Pristine) -> None:
    edit_manifest(bundle, lambda m: m["page"].update(title="A different headline"))
    assert load_manifest(bundle / MANIFEST_PATH).manifest.page.title == "A different headline"
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH, SIGNATURE_PATH)
    assert statuses(report) == {"signature": "FAIL", "identity": "SKIP", "files": "PASS",
                                "records": "PASS", "resources": "PASS"}
    assert report.signer is None
    assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1


def test_signature_over_other_bytes(bundle: Path, pristine: Pristine) -> None:
    (bundle / SIGNATURE_PATH).write_bytes(signing.sign_message(pristine.key, b"other bytes"))
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, SIGNATURE_PATH)
    assert statuses(report)["signature"] == "FAIL"
    assert "does not match the signed data" in check(report, "signature").detail


def test_signature_in_another_namespace(bundle: Path, pristine: Pristine) -> None:
    raw = (bundle / MANIFEST_PATH).read_bytes()
    (bundle / SIGNATURE_PATH).write_bytes(signing.sign_message(pristine.key, raw, "file"))
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, SIGNATURE_PATH)
    assert "namespace" in check(report, "signature").detail


def test_plain_signature_must_match(bundle: Path, pristine: Pristine) -> None:
    raw_sig = bundle / RAW_SIGNATURE_PATH
    raw_sig.write_bytes(signing.raw_signature(pristine.key, b"other bytes"))
    assert_fails_naming(verify(bundle, pristine.fingerprint), RAW_SIGNATURE_PATH)
    other = signing.generate_private_key()
    raw_sig.write_bytes(signing.raw_signature(other, (bundle / MANIFEST_PATH).read_bytes()))
    assert_fails_naming(verify(bundle, pristine.fingerprint), RAW_SIGNATURE_PATH)
    raw_sig.write_bytes(b"\x00" * 63)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, RAW_SIGNATURE_PATH)
    assert "63 bytes" in check(report, "signature").detail


def test_resigned_by_another_key_keeping_the_signer_field(bundle: Path,
                                                          pristine: Pristine) -> None:
    forger = signing.generate_private_key()
    forger_fp = signing.fingerprint(forger.public_key())
    edit_manifest(bundle, lambda m: m["page"].update(title="Forged"), forger)
    # The manifest still names the original signer: a mismatch, whoever is trusted.
    for trusted in ([pristine.fingerprint], [forger_fp], [pristine.fingerprint, forger_fp]):
        report = verify(bundle, *trusted)
        assert_fails_naming(report, SIGNATURE_PATH, MANIFEST_PATH)
        detail = check(report, "signature").detail
        assert detail == f"signed by {forger_fp} but the manifest names {pristine.fingerprint}"
        assert statuses(report)["identity"] == "SKIP"


def test_resigned_by_another_key_as_signer(bundle: Path, pristine: Pristine) -> None:
    forger = signing.generate_private_key()
    forger_fp = signing.fingerprint(forger.public_key())

    def forge(data: dict[str, Any]) -> None:
        data["page"]["title"] = "Forged"
        data["signer"] = {"fingerprint": forger_fp, "namespace": signing.SIGNATURE_NAMESPACE,
                          "public_key": signing.public_key_openssh(forger.public_key())}
    edit_manifest(bundle, forge, forger)
    # Self-consistent and intact: only trust tells the forgery from the original.
    report = verify(bundle, pristine.fingerprint)
    assert report.verdict == "UNTRUSTED"
    assert statuses(report) == {"signature": "PASS", "identity": "UNTRUSTED", "files": "PASS",
                                "records": "PASS", "resources": "PASS"}
    assert report.signer == forger_fp
    assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1
    assert verify(bundle, forger_fp).verdict == "VERIFIED"


def test_warc_replaced_and_relisted_by_a_forger(bundle: Path, pristine: Pristine) -> None:
    """A forger re-signs a manifest over a changed WARC: the records check still localises."""
    path = bundle / pristine.warc
    data = path.read_bytes()
    spans = member_spans(data)
    start, length = spans[1]
    original = gzip.decompress(data[start:start + length])
    content = original.replace(b" 200 OK\r\n", b" 200 Ok\r\n", 1)
    assert content != original and content.startswith(b"WARC/1.1\r\nWARC-Type: response")
    path.write_bytes(data[:start] + gzip.compress(content, mtime=0) + data[start + length:])
    forger = signing.generate_private_key()
    forger_fp = signing.fingerprint(forger.public_key())

    def forge(m: dict[str, Any]) -> None:
        m["signer"]["fingerprint"] = forger_fp
        m["signer"]["public_key"] = signing.public_key_openssh(forger.public_key())
    edit_manifest(bundle, forge)
    relist(bundle, forger)
    report = verify(bundle, forger_fp)
    assert_fails_naming(report, pristine.warc)
    assert statuses(report)["files"] == "PASS"
    assert {p.offset for p in problems(report, "records")} == {start}
    assert any("digest mismatch" in p.message for p in problems(report, "records"))


# --------------------------------------------------------------------------- malformed input


def _one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")


def test_not_a_bundle(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "index.html").write_text("<p>hello</p>")
    a_file = tmp_path / "file.txt"
    a_file.write_text("hello")
    half = tmp_path / "half"
    (half / "provenance" / "manifest.json").mkdir(parents=True)
    for path in (empty, tmp_path / "does-not-exist", a_file, half):
        with pytest.raises(UsageError):
            verify_bundle(path)
        result = cli("verify", path)
        assert result.returncode == 2, (path, result.stderr)
        _one_line_error(result)
        assert result.stdout == ""


def test_bad_trusted_key_is_a_usage_error(bundle: Path) -> None:
    result = cli("verify", bundle, "--trusted-key", "SHA256:too-short")
    assert result.returncode == 2
    _one_line_error(result)


def test_garbage_manifest(bundle: Path, pristine: Pristine) -> None:
    (bundle / MANIFEST_PATH).write_bytes(bytes(random.Random(1).randbytes(4096)))
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH)
    assert [c.name for c in report.checks] == [
        "signature", "identity", "manifest", "files", "records", "resources"]
    assert statuses(report) == {"signature": "FAIL", "identity": "SKIP", "manifest": "FAIL",
                                "files": "SKIP", "records": "SKIP", "resources": "SKIP"}
    assert problems(report, "manifest")[0].file == MANIFEST_PATH
    code, data = cli_json(bundle, "--trusted-key", pristine.fingerprint)
    assert code == 1
    assert data["verdict"] == "FAILED"


@pytest.mark.parametrize("content", [b"", b"{}", b'{"hello": "world"}', b"[1, 2, 3]", b"null",
                                     b'"\\ud800"'])
def test_manifest_json_of_the_wrong_shape(bundle: Path, pristine: Pristine,
                                          content: bytes) -> None:
    (bundle / MANIFEST_PATH).write_bytes(content)
    sign(bundle, pristine.key)  # even a valid signature does not make it a manifest
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH)
    assert statuses(report)["signature"] == "PASS"
    assert statuses(report)["manifest"] == "FAIL"


@pytest.mark.parametrize("spelling", ["pretty", "duplicate-key", "escaped"])
def test_manifest_must_be_canonical(bundle: Path, pristine: Pristine, spelling: str) -> None:
    """Signed bytes with one reading only: what other JSON parsers see is what we checked."""
    raw = (bundle / MANIFEST_PATH).read_bytes()
    data = json.loads(raw)
    edited = {
        "pretty": lambda: json.dumps(data, indent=2, sort_keys=True).encode(),
        # json.loads keeps the last of duplicate keys; other parsers keep the first.
        "duplicate-key": lambda: b'{"capture_id":"forged",' + raw[1:],
        "escaped": lambda: raw.replace(b'"capture_id":"', b'"capture\\u005fid":"', 1),
    }[spelling]()
    assert edited != raw and json.loads(edited)["capture_id"] == data["capture_id"]
    (bundle / MANIFEST_PATH).write_bytes(edited)
    sign(bundle, pristine.key)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH)
    assert [(c.name, c.status) for c in report.checks] == [
        ("signature", "PASS"), ("identity", "PASS"), ("manifest", "FAIL"), ("files", "PASS"),
        ("records", "PASS"), ("resources", "PASS")]
    assert "RFC 8785" in check(report, "manifest").detail


def test_deeply_nested_manifest(bundle: Path, pristine: Pristine) -> None:
    (bundle / MANIFEST_PATH).write_bytes(b"[" * 100_000 + b"]" * 100_000)
    sign(bundle, pristine.key)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH)
    assert statuses(report)["manifest"] == "FAIL"
    code, data = cli_json(bundle, "--trusted-key", pristine.fingerprint)
    assert code == 1
    assert data["verdict"] == "FAILED"


def test_manifest_missing_a_required_field(bundle: Path, pristine: Pristine) -> None:
    edit_manifest(bundle, lambda m: m.pop("files"), pristine.key)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH)
    assert "files" in check(report, "manifest").detail
    code, _ = cli_json(bundle, "--trusted-key", pristine.fingerprint)
    assert code == 1


@pytest.mark.parametrize("content", [
    b"",
    b"\n",
    b"-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n-----END PGP SIGNATURE-----\n",
    b"-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
    b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
    bytes(range(256)),
], ids=["empty", "newline", "pgp", "not-base64", "truncated-blob", "binary"])
def test_malformed_signature_file(bundle: Path, pristine: Pristine, content: bytes) -> None:
    (bundle / SIGNATURE_PATH).write_bytes(content)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, SIGNATURE_PATH)
    assert named(report, "signature") == {SIGNATURE_PATH}
    assert statuses(report)["identity"] == "SKIP"
    if content in (b"", bytes(range(256))):
        code, data = cli_json(bundle, "--trusted-key", pristine.fingerprint)
        assert code == 1
        assert data["checks"][0]["problems"][0]["file"] == SIGNATURE_PATH


def test_raw_signature_in_place_of_the_armored_one(bundle: Path, pristine: Pristine) -> None:
    raw = (bundle / MANIFEST_PATH).read_bytes()
    (bundle / SIGNATURE_PATH).write_bytes(signing.raw_signature(pristine.key, raw))
    assert_fails_naming(verify(bundle, pristine.fingerprint), SIGNATURE_PATH)


def test_missing_signature(bundle: Path, pristine: Pristine) -> None:
    (bundle / SIGNATURE_PATH).unlink()
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, SIGNATURE_PATH)
    assert check(report, "signature").detail == f"{SIGNATURE_PATH} is missing"
    assert cli("verify", bundle).returncode == 1


@pytest.mark.parametrize("content", [b"just some text\n", gzip.compress(b"just some text\n"),
                                     b""], ids=["text", "gzip-text", "empty"])
def test_listed_warc_that_is_not_a_warc(bundle: Path, pristine: Pristine,
                                        content: bytes) -> None:
    (bundle / pristine.warc).write_bytes(content)
    relist(bundle, pristine.key)
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    assert statuses(report) == {"signature": "PASS", "identity": "PASS", "files": "PASS",
                                "records": "FAIL", "resources": "FAIL"}
    assert named(report, "records") == {pristine.warc}
    assert all(p.offset == 0 for p in problems(report, "records"))
    if content.startswith(b"just"):
        code, _ = cli_json(bundle, "--trusted-key", pristine.fingerprint)
        assert code == 1


def test_odd_file_names_are_escaped_in_reports(bundle: Path, pristine: Pristine) -> None:
    name = b"notes-\xff\x1b[31m.txt"
    (bundle / os.fsdecode(name)).write_bytes(b"x")
    report = verify(bundle, pristine.fingerprint)
    assert report.verdict == "FAILED"
    [problem] = problems(report)
    assert problem.file == "notes-\\udcff\\x1b[31m.txt"
    code, data = cli_json(bundle, "--trusted-key", pristine.fingerprint)
    assert code == 1
    assert data["checks"][2]["problems"][0]["file"] == problem.file
    human = cli("verify", bundle, "--trusted-key", pristine.fingerprint)
    assert human.returncode == 1
    assert "\x1b" not in human.stdout


# --------------------------------------------------------------------------- outside the bundle


def test_open_recording_sees_what_verify_reads(bundle: Path, pristine: Pristine) -> None:
    with recording_opens() as opened:
        verify(bundle, pristine.fingerprint)
    for name in (MANIFEST_PATH, SIGNATURE_PATH, pristine.warc):
        assert os.path.realpath(bundle / name) in opened
    with pytest.raises(AssertionError):
        assert_never_opened(opened, bundle / "archive")


@pytest.mark.parametrize("listed", ["../outside.txt", "{abs}", "archive/../../outside.txt",
                                    "./notes.txt", "a/b/c.txt", "archive//x", ""])
def test_listed_path_outside_the_bundle(bundle: Path, pristine: Pristine, tmp_path: Path,
                                        listed: str) -> None:
    bait = tmp_path / "outside.txt"
    bait.write_bytes(b"not part of the bundle\n")
    listed = listed.replace("{abs}", str(bait))
    entry = file_entry(listed, bait.read_bytes())
    edit_manifest(bundle, lambda m: m["files"].append(entry), pristine.key)
    with recording_opens() as opened:
        report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, listed)
    assert statuses(report)["signature"] == "PASS"
    assert [p.message for p in problems(report, "files")] == [
        "listed path is absolute, contains '..' or lies too deep; not read"]
    assert_never_opened(opened, bait)


def test_listed_warc_outside_the_bundle(bundle: Path, pristine: Pristine,
                                        tmp_path: Path) -> None:
    """A manifest pointing its records at a WARC outside the bundle: never read."""
    bait = tmp_path / "outside.warc.gz"
    shutil.copyfile(bundle / pristine.warc, bait)
    listed = "../outside.warc.gz"

    def point_outside(m: dict[str, Any]) -> None:
        m["files"] = [file_entry(listed, bait.read_bytes())]
        for resource in m["resources"]:
            for side in ("response", "request"):
                if resource.get(side):
                    resource[side]["file"] = listed
    edit_manifest(bundle, point_outside, pristine.key)
    (bundle / pristine.warc).unlink()
    with recording_opens() as opened:
        report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, listed)
    assert statuses(report)["records"] == "FAIL"
    assert statuses(report)["resources"] == "FAIL"
    assert_never_opened(opened, bait)


def _move_out(path: Path, outside: Path) -> None:
    """Replace ``path`` by a symbolic link to an identical copy outside the bundle."""
    shutil.move(path, outside)
    path.symlink_to(outside, target_is_directory=outside.is_dir())


@pytest.mark.parametrize("link", ["warc", "archive-dir", "signature", "plain-signature",
                                  "manifest", "provenance-dir"])
def test_symlink_in_the_bundle_is_not_followed(bundle: Path, pristine: Pristine,
                                               tmp_path: Path, link: str) -> None:
    relative = {"warc": pristine.warc, "archive-dir": "archive", "signature": SIGNATURE_PATH,
                "plain-signature": RAW_SIGNATURE_PATH, "manifest": MANIFEST_PATH,
                "provenance-dir": "provenance"}[link]
    outside = tmp_path / "outside"
    _move_out(bundle / relative, outside)
    with recording_opens() as opened:
        report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, MANIFEST_PATH if link == "provenance-dir" else relative)
    assert "symbolic link" in " ".join(p.message for p in problems(report))
    assert_never_opened(opened, outside)
    if link == "warc":
        assert cli("verify", bundle, "--trusted-key", pristine.fingerprint).returncode == 1


def test_unlisted_symlinks_and_special_files(bundle: Path, pristine: Pristine,
                                             tmp_path: Path) -> None:
    bait = tmp_path / "secret.txt"
    bait.write_text("secret")
    (bundle / "notes.txt").symlink_to(bait)
    (bundle / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(bundle / "archive" / "pipe")
    with recording_opens() as opened:
        report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, "notes.txt", "dangling", "archive/pipe")
    assert_never_opened(opened, bait)
    # A FIFO that verify opened would block it forever: the CLI must finish, quickly.
    assert cli("verify", bundle, "--trusted-key", pristine.fingerprint,
               timeout=30).returncode == 1


# --------------------------------------------------------------------------- hostile WARCs


def _append_record(bundle: Path, pristine: Pristine, member: bytes) -> int:
    path = bundle / pristine.warc
    offset = path.stat().st_size
    with path.open("ab") as stream:
        stream.write(member)
    relist(bundle, pristine.key)
    return offset


def _record(headers: list[tuple[str, str]], block: bytes, length: int | str | None = None,
            trailer: bytes = b"\r\n\r\n") -> bytes:
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(block) if length is None else length}\r\n\r\n"
    return gzip.compress(head.encode() + block + trailer, mtime=0)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("length", ["-5", "+5", "5_0", "0x10", "", "99999999999999999999"])
def test_bad_content_length_fails_without_hanging(bundle: Path, pristine: Pristine,
                                                  length: str) -> None:
    block = b"abcdefghij"
    offset = _append_record(bundle, pristine, _record(
        [("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:bad-length>"),
         ("WARC-Block-Digest", _sha256(block[:5]))], block, length))
    if length == "-5":  # verify used to spin forever on a negative length: run it boundedly
        code, data = cli_json(bundle, "--trusted-key", pristine.fingerprint)
        assert code == 1
        assert {(p["file"], p["offset"]) for c in data["checks"] for p in c["problems"]} == {
            (pristine.warc, offset)}
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    assert [p.offset for p in problems(report)] == [offset]


@pytest.mark.parametrize("digest", ["shake_128:=", "shake_256:AA==", "sm3:" + "00" * 32,
                                    "ripemd160:" + "00" * 20, "sha256:", "sha256:zz", "nodigest"])
def test_uncheckable_digest_is_a_finding_not_a_crash(bundle: Path, pristine: Pristine,
                                                     digest: str) -> None:
    offset = _append_record(bundle, pristine, _record(
        [("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:odd-digest>"),
         ("WARC-Block-Digest", digest)], b"hello"))
    report = verify(bundle, pristine.fingerprint)
    assert_fails_naming(report, pristine.warc)
    [problem] = problems(report)
    assert (problem.offset, problem.record_id) == (offset, "<urn:uuid:odd-digest>")
    assert "is not a digest we can check" in problem.message


def test_digest_spellings_warcio_accepts(bundle: Path, pristine: Pristine) -> None:
    import base64

    block = b"hello world"
    raw = hashlib.sha1(block).digest()
    for number, digest in enumerate([f"sha1:{base64.b32encode(raw).decode()}",
                                     f"SHA-1:{raw.hex()}",
                                     f"sha256:{base64.b64encode(hashlib.sha256(block).digest()).decode()}"]):
        _append_record(bundle, pristine, _record(
            [("WARC-Type", "resource"), ("WARC-Record-ID", f"<urn:uuid:ok-{number}>"),
             ("WARC-Block-Digest", digest), ("WARC-Payload-Digest", digest)], block))
    assert verify(bundle, pristine.fingerprint).verdict == "VERIFIED"


def test_revisit_payload_digest_is_not_held_against_its_block(bundle: Path,
                                                              pristine: Pristine) -> None:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    _append_record(bundle, pristine, _record(
        [("WARC-Type", "revisit"), ("WARC-Record-ID", "<urn:uuid:revisit>"),
         ("WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"),
         ("WARC-Block-Digest", _sha256(block)),
         ("WARC-Payload-Digest", _sha256(b"<html>the original payload</html>"))], block))
    assert verify(bundle, pristine.fingerprint).verdict == "VERIFIED"


def test_record_with_long_trailer_or_garbage_after(bundle: Path, pristine: Pristine) -> None:
    block = b"hello"
    offset = _append_record(bundle, pristine, _record(
        [("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:trailer>"),
         ("WARC-Block-Digest", _sha256(block))], block, trailer=b"\r\n\r\n" + b"x" * 100_000))
    report = verify(bundle, pristine.fingerprint)
    assert [(p.offset, p.message) for p in problems(report)] == [
        (offset, "record does not end with the CRLF CRLF trailer")]
    garbage = _append_record(bundle, pristine, b"\x00" * 1000)
    report = verify(bundle, pristine.fingerprint)
    assert [p.offset for p in problems(report)] == [offset, garbage]


def test_repeated_fields_are_read_alike_by_verify_and_cite(bundle: Path,
                                                          pristine: Pristine) -> None:
    """One header parser for verify and for cite/show: the first value of a repeated field.

    Verify used to keep the first and read_record the last value, so a record whose second
    Content-Length was shorter verified whole but was cited cut short. WARC 1.1 section 5.1
    allows only WARC-Concurrent-To to repeat: verify reports any other defined field that does.
    """
    block = b"hello world"
    # _record puts Content-Length: 5 last, after the true length given here.
    repeated = _record([("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:first>"),
                        ("warc-record-id", "<urn:uuid:second>"),
                        ("WARC-Block-Digest", _sha256(block)),
                        ("Content-Length", str(len(block)))], block, length=5)
    offset = _append_record(bundle, pristine, repeated)
    concurrent = _record([("WARC-Type", "metadata"), ("WARC-Record-ID", "<urn:uuid:meta>"),
                          ("WARC-Concurrent-To", "<urn:uuid:a>"),
                          ("WARC-Concurrent-To", "<urn:uuid:b>"),
                          ("X-Extension", "1"), ("X-Extension", "2"),
                          ("WARC-Block-Digest", _sha256(block))], block)
    other = _append_record(bundle, pristine, concurrent)

    report = verify(bundle, pristine.fingerprint)
    assert [(p.offset, p.record_id, p.message) for p in problems(report)] == [
        (offset, "<urn:uuid:first>", f"{name} field repeated: WARC 1.1 section 5.1 allows only "
         "WARC-Concurrent-To to repeat (the first value was used)")
        for name in ("WARC-Record-ID", "Content-Length")]

    scanned = {r.offset: r for r in scan_warc(bundle / pristine.warc).records}
    for at, member in ((offset, repeated), (other, concurrent)):
        read = read_record(bundle, WarcLocation(file=pristine.warc, record_id="<x>",
                                                offset=at, length=len(member)))
        assert read.warc_headers["warc-record-id"] == scanned[at].record_id
        assert read.block == block and read.complete
    first = read_record(bundle, WarcLocation(file=pristine.warc, record_id="<x>",
                                             offset=offset, length=len(repeated)))
    assert first.warc_headers.get_all("warc-record-id") == ("<urn:uuid:first>",
                                                           "<urn:uuid:second>")
    assert first.warc_headers.get_all("content-length") == ("11", "5")
    assert read.warc_headers.get_all("warc-concurrent-to") == ("<urn:uuid:a>", "<urn:uuid:b>")
    assert read.warc_headers.repeated == ()


def test_header_parser_edges() -> None:
    header = parse_header(b"WARC/1.1\r\nwarc-TYPE:  resource \r\nContent-Length: 0012\r\n"
                          b"WARC-Target-URI: http://example.org/caf\xc3\xa9\xff\r\n\r\n")
    assert header is not None
    assert header.version == "WARC/1.1"
    assert header["warc-type"] == "resource"
    assert header.content_length == 12
    assert header["warc-target-uri"] == "http://example.org/caf\u00e9\ufffd"
    assert parse_header(b"HTTP/1.1 200 OK\r\n\r\n") is None
    for bad in (b"-5", b"+5", b"1_0", b"\xd9\xa3", b"", b"9" * 19):
        parsed = parse_header(b"WARC/1.1\r\nContent-Length: " + bad + b"\r\n")
        assert parsed is not None and parsed.content_length is None, bad


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_inflating_is_bounded_in_memory(bundle: Path, pristine: Pristine) -> None:
    """One member that inflates to 256 MiB of zeros: verify's memory must not follow it."""
    size = 256 << 20
    chunk = bytes(1 << 20)
    digest = hashlib.sha256()
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = ("WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:zeros>\r\n"
            "WARC-Block-Digest: {}\r\nContent-Length: {}\r\n\r\n")
    for _ in range(size // len(chunk)):
        digest.update(chunk)
    parts = [deflater.compress(head.format("sha256:" + digest.hexdigest(), size).encode())]
    parts += [deflater.compress(chunk) for _ in range(size // len(chunk))]
    parts += [deflater.compress(b"\r\n\r\n"), deflater.flush()]
    _append_record(bundle, pristine, b"".join(parts))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provenance.verify import verify_bundle\n"
        "report = verify_bundle(Path(sys.argv[1]), trusted=[sys.argv[2]])\n"
        "status = open('/proc/self/status').read()\n"
        "peak = next(l for l in status.splitlines() if l.startswith('VmHWM:'))\n"
        "print(report.verdict, int(peak.split()[1]) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", code, str(bundle), pristine.fingerprint],
                            capture_output=True, text=True, timeout=120, check=True)
    verdict, peak_mib = result.stdout.split()
    assert verdict == "VERIFIED"
    assert int(peak_mib) < 160, f"peak RSS {peak_mib} MiB while inflating 256 MiB"
