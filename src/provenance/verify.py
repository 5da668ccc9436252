"""Offline verification of a bundle, layer by layer; a report, never a bare boolean.

Order (README, "Verify"): 1 the signature over the manifest's exact bytes (before parsing
them, DESIGN.md section 4 habit 4); 2 whether the signer is trusted; 3 every listed file's
size and sha256, and no unlisted file; 4 every WARC record's block and payload digests, read
to the end; 5 every resource entry points at the record the manifest names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from provenance.errors import BundleFormatError, SignatureInvalidError, UsageError
from provenance.hashing import hash_file
from provenance.keys import TrustStore, load_trusted
from provenance.manifest import MAX_MANIFEST_BYTES, parse_manifest
from provenance.models import Manifest, WarcLocation
from provenance.signing import SIGNATURE_NAMESPACE, verify_message
from provenance.storage import MANIFEST_PATH, SIGNATURE_PATH, list_bundle_files
from provenance.warcscan import ScannedRecord, ScanResult, scan_warc

CheckStatus = Literal["PASS", "FAIL", "SKIP", "UNTRUSTED"]
Verdict = Literal["VERIFIED", "UNTRUSTED", "FAILED"]
MAX_PROBLEMS_PER_CHECK = 50


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message: str
    file: str | None = None
    record_id: str | None = None
    offset: int | None = None


class Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: CheckStatus
    detail: str
    problems: list[Problem] = []


class VerificationReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: str
    capture_id: str | None
    signer: str | None
    verdict: Verdict
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return self.verdict == "VERIFIED"


def _is_unlisted_allowed(path: str) -> bool:
    """Files that cannot be listed in the manifest they accompany."""
    return path in (MANIFEST_PATH, SIGNATURE_PATH) or (
        path.startswith("provenance/timestamp-") and path.endswith(".tsr"))


def _is_safe_relative(path: str) -> bool:
    """A manifest may only name files inside the bundle, at most one directory down."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and len(parts) <= 2 \
        and all(parts)


@dataclass
class _Context:
    root: Path
    raw: bytes
    manifest: Manifest | None
    manifest_problem: str | None


def _read_bundle(root: Path) -> _Context:
    if not root.exists():
        raise UsageError(f"{root}: no such file or directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a bundle directory")
    manifest_path = root / MANIFEST_PATH
    if not manifest_path.is_file():
        raise UsageError(f"{root}: not a provenance bundle (no {MANIFEST_PATH})")
    try:
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            return _Context(root, b"", None, "manifest is implausibly large")
        raw = manifest_path.read_bytes()
    except OSError as error:
        raise BundleFormatError(f"{manifest_path}: cannot read: {error.strerror}") from None
    try:
        return _Context(root, raw, parse_manifest(raw), None)
    except BundleFormatError as error:
        return _Context(root, raw, None, str(error))


def _check_signature(context: _Context) -> tuple[Check, str | None]:
    name = "signature"
    signature_path = context.root / SIGNATURE_PATH
    if not signature_path.is_file():
        return Check(name=name, status="FAIL", detail=f"{SIGNATURE_PATH} is missing",
                     problems=[Problem(message="no signature", file=SIGNATURE_PATH)]), None
    try:
        armored = signature_path.read_bytes()[: 1 << 20]
        verified = verify_message(armored, context.raw, SIGNATURE_NAMESPACE)
    except (BundleFormatError, SignatureInvalidError) as error:
        return Check(name=name, status="FAIL", detail=str(error),
                     problems=[Problem(message=str(error), file=SIGNATURE_PATH)]), None
    except OSError as error:
        raise BundleFormatError(f"{signature_path}: cannot read: {error.strerror}") from None
    manifest = context.manifest
    if manifest is not None and manifest.signer is not None and \
            manifest.signer.fingerprint != verified.fingerprint:
        message = (f"signed by {verified.fingerprint} but the manifest names "
                   f"{manifest.signer.fingerprint}")
        return Check(name=name, status="FAIL", detail=message,
                     problems=[Problem(message=message, file=SIGNATURE_PATH)]), None
    return Check(name=name, status="PASS",
                 detail=f"Ed25519 SSHSIG over the manifest bytes by {verified.fingerprint}"), \
        verified.fingerprint


def _check_identity(fingerprint: str | None, trust: TrustStore) -> Check:
    name = "identity"
    if fingerprint is None:
        return Check(name=name, status="SKIP", detail="no valid signature to attribute")
    principal = trust.principal(fingerprint)
    if principal is not None or trust.is_trusted(fingerprint):
        return Check(name=name, status="PASS",
                     detail=f"{fingerprint} is trusted" + (f" as {principal}" if principal else ""))
    return Check(name=name, status="UNTRUSTED",
                 detail=f"{fingerprint} is not among your trusted keys (pass --trusted-key "
                        f"{fingerprint} or add it with 'provenance keys trust' if you trust it)")


def _check_files(context: _Context, manifest: Manifest,
                 scans: dict[str, ScanResult]) -> Check:
    problems: list[Problem] = []
    listed = {f.path: f for f in manifest.files}
    present = {p.as_posix() for p in list_bundle_files(context.root)}
    for path, entry in listed.items():
        if not _is_safe_relative(path):
            problems.append(Problem(message="listed path points outside the bundle", file=path))
            continue
        if (context.root / path).is_symlink():
            problems.append(Problem(message="file is a symbolic link", file=path))
            continue
        if path not in present:
            problems.append(Problem(message="listed file is missing", file=path))
            continue
        if path in scans:
            size, digest = scans[path].size, scans[path].sha256
        else:
            size, digest = hash_file(context.root / path)
        if size != entry.bytes:
            problems.append(Problem(message=f"size {size} differs from the listed {entry.bytes}",
                                    file=path))
        elif digest != entry.sha256:
            problems.append(Problem(message="sha256 differs from the manifest", file=path))
    for path in sorted(present - listed.keys()):
        if not _is_unlisted_allowed(path):
            problems.append(Problem(message="file is not listed in the manifest", file=path))
    if problems:
        return Check(name="files", status="FAIL",
                     detail=f"{len(problems)} file problem(s)", problems=problems)
    return Check(name="files", status="PASS",
                 detail=f"{len(listed)} file(s) match size and sha256; no unlisted files")


def _check_records(scans: dict[str, ScanResult]) -> Check:
    problems: list[Problem] = []
    count = 0
    for path, scan in scans.items():
        problems.extend(Problem(message=p, file=path) for p in scan.problems)
        for record in scan.records:
            count += 1
            problems.extend(Problem(message=p, file=path, record_id=record.record_id or None,
                                    offset=record.offset) for p in record.problems)
        if not scan.records and not scan.problems:
            problems.append(Problem(message="WARC file holds no records", file=path))
    if problems:
        return Check(name="records", status="FAIL",
                     detail=f"{len(problems)} record problem(s) in {len(scans)} WARC file(s)",
                     problems=problems[:MAX_PROBLEMS_PER_CHECK])
    return Check(name="records", status="PASS",
                 detail=f"{count} record(s): block and payload digests match, none truncated")


def _expect(location: WarcLocation, uri: str | None, index: dict[tuple[str, int], ScannedRecord],
            what: str) -> Problem | None:
    record = index.get((location.file, location.offset))
    if record is None:
        return Problem(message=f"{what}: no record starts at this offset", file=location.file,
                       record_id=location.record_id, offset=location.offset)
    mismatch = []
    if record.record_id != location.record_id:
        mismatch.append("record id")
    if record.length != location.length:
        mismatch.append("length")
    if uri is not None and record.target_uri != uri:
        mismatch.append("URL")
    if mismatch:
        return Problem(message=f"{what}: {', '.join(mismatch)} differ from the manifest",
                       file=location.file, record_id=location.record_id,
                       offset=location.offset)
    return None


def _check_resources(manifest: Manifest, scans: dict[str, ScanResult]) -> Check:
    index = {(path, r.offset): r for path, scan in scans.items() for r in scan.records}
    problems: list[Problem] = []
    count = 0
    for resource in manifest.resources:
        for location in (resource.response, resource.request):
            if location is not None:
                count += 1
                problem = _expect(location, resource.url, index, f"{resource.id} {resource.url}")
                if problem:
                    problems.append(problem)
    extra = [(s.record, None, f"TLS metadata for {s.host}") for s in manifest.tls]
    if manifest.article_text is not None:
        extra.append((manifest.article_text.record, None, "article text"))
    for location, uri, what in extra:
        count += 1
        problem = _expect(location, uri, index, what)
        if problem:
            problems.append(problem)
    if problems:
        return Check(name="resources", status="FAIL",
                     detail=f"{len(problems)} of {count} record reference(s) do not match",
                     problems=problems[:MAX_PROBLEMS_PER_CHECK])
    return Check(name="resources", status="PASS",
                 detail=f"{count} record reference(s) match file, offset, id, length and URL")


def verify_bundle(root: Path, *, trusted: Sequence[str] = (),
                  trust: TrustStore | None = None) -> VerificationReport:
    """Verify a bundle directory; raise only when ``root`` is not a bundle at all."""
    context = _read_bundle(root)
    signature, fingerprint = _check_signature(context)
    identity = _check_identity(fingerprint, trust or load_trusted(trusted))
    checks = [signature, identity]
    manifest = context.manifest
    if manifest is None:
        reason = context.manifest_problem or "manifest unreadable"
        checks.append(Check(name="manifest", status="FAIL", detail=reason,
                            problems=[Problem(message=reason, file=MANIFEST_PATH)]))
        for name in ("files", "records", "resources"):
            checks.append(Check(name=name, status="SKIP", detail="manifest unreadable"))
    else:
        scans = {}
        for entry in manifest.files:
            path = context.root / entry.path
            if entry.path.endswith(".warc.gz") and _is_safe_relative(entry.path) \
                    and path.is_file() and not path.is_symlink():
                scans[entry.path] = scan_warc(path)
        checks.append(_check_files(context, manifest, scans))
        checks.append(_check_records(scans))
        checks.append(_check_resources(manifest, scans))
    statuses = {check.status for check in checks}
    verdict: Verdict = "FAILED" if "FAIL" in statuses else (
        "UNTRUSTED" if "UNTRUSTED" in statuses or "SKIP" in statuses else "VERIFIED")
    return VerificationReport(
        bundle=str(root), capture_id=manifest.capture_id if manifest else None,
        signer=fingerprint, verdict=verdict, checks=checks)
