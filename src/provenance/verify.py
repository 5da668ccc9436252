"""Offline verification of a bundle, layer by layer; a report, never a bare boolean.

Order (README, "Verify"): 1 the signature over the manifest's exact bytes (before parsing
them, DESIGN.md section 4 habit 4); 2 whether the signer is trusted; 3 every listed file's
size and sha256, and no unlisted file; 4 every WARC record's block and payload digests, read
to the end; 5 every resource entry points at the record the manifest names.

Nothing outside the bundle directory is ever read: symbolic links inside a bundle are
reported and never followed (neither for a file nor for a directory on the way to it), and
a manifest entry that is absolute, contains ``..`` or lies deeper than one directory fails
without being opened.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography import x509
from pydantic import BaseModel, ConfigDict, field_validator

from provenance.errors import BundleFormatError, SignatureInvalidError, UsageError
from provenance.hashing import hash_file
from provenance.keys import TrustStore, load_trusted
from provenance.manifest import MAX_MANIFEST_BYTES, parse_manifest
from provenance.models import BundleFile, Manifest, WarcLocation
from provenance.printable import escape_controls
from provenance.signing import (
    SIGNATURE_NAMESPACE,
    VerifiedSignature,
    verify_message,
    verify_raw,
)
from provenance.storage import (
    MANIFEST_PATH,
    RAW_SIGNATURE_PATH,
    SIGNATURE_PATH,
)
from provenance.timestamps import list_tokens, verify_timestamp
from provenance.timeutil import rfc3339
from provenance.warcscan import ScannedRecord, ScanResult, scan_warc

CheckStatus = Literal["PASS", "FAIL", "SKIP", "UNTRUSTED"]
Verdict = Literal["VERIFIED", "UNTRUSTED", "FAILED"]
MAX_PROBLEMS_PER_CHECK = 50
MAX_SIGNATURE_BYTES = 1 << 20
RAW_SIGNATURE_BYTES = 64  # RFC 8032 section 5.1.6


class _ReportModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _printable_strings(cls, value: Any) -> Any:
        return escape_controls(value) if isinstance(value, str) else value


class Problem(_ReportModel):
    message: str
    file: str | None = None
    record_id: str | None = None
    offset: int | None = None


class Check(_ReportModel):
    name: str
    status: CheckStatus
    detail: str
    problems: list[Problem] = []


class TokenReport(_ReportModel):
    """One RFC 3161 token over the signature, as checked."""

    file: str
    status: Literal["PASS", "FAIL", "SKIP"]
    detail: str
    gen_time: str | None = None
    tsa_name: str | None = None
    embedded_chain: list[str] = []


class VerificationReport(_ReportModel):
    bundle: str
    capture_id: str | None
    signer: str | None
    verdict: Verdict
    checks: list[Check]
    timestamps: list[TokenReport] = []

    @property
    def ok(self) -> bool:
        return self.verdict == "VERIFIED"


# RFC 3161 tokens over the signature and their requests (provenance.timestamps): added after
# signing, so never listed; checked by _check_timestamps.
_TIMESTAMP_FILE = re.compile(r"provenance/timestamp-[1-9][0-9]{0,8}\.ts[rq]")


def _is_unlisted_allowed(path: str) -> bool:
    """Files that cannot be listed in the manifest they accompany."""
    return path in (MANIFEST_PATH, SIGNATURE_PATH, RAW_SIGNATURE_PATH) or \
        _TIMESTAMP_FILE.fullmatch(path) is not None


def _is_safe_relative(path: str) -> bool:
    """A manifest may only name files inside the bundle, at most one directory down."""
    parts = path.split("/")
    return len(parts) <= 2 and all(part not in ("", ".", "..") for part in parts) \
        and "\x00" not in path and "\\" not in path


PathKind = Literal["file", "link", "missing", "other"]


def _kind(root: Path, relative: str) -> PathKind:
    """What ``relative`` is, looking at every component without following any link."""
    current = root
    parts = relative.split("/")
    mode = 0
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                return "missing"  # a manifest may name anything; no such name can exist here
            raise BundleFormatError(f"{current}: cannot inspect: {error.strerror}") from None
        except ValueError:
            # A lone surrogate (a JSON "\ud800" escape, RFC 8259 section 8.2) that the file
            # system encoding cannot express, or a NUL: no file can have that name.
            return "missing"
        if stat.S_ISLNK(mode):
            return "link"
        if index < len(parts) - 1 and not stat.S_ISDIR(mode):
            return "missing"  # a file where a directory should be: nothing is below it
    return "file" if stat.S_ISREG(mode) else "other"


@dataclass
class _Tree:
    """Everything in a bundle directory, by relative path; links are listed, not followed."""

    files: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)


def _walk(root: Path) -> _Tree:
    tree = _Tree()
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    relative = prefix + entry.name
                    if entry.is_symlink():
                        tree.links.add(relative)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((Path(entry.path), relative + "/"))
                    elif entry.is_file(follow_symlinks=False):
                        tree.files.add(relative)
                    else:
                        tree.others.add(relative)
        except OSError as error:
            raise BundleFormatError(f"{directory}: cannot list: {error.strerror}") from None
    return tree


def _read_at_most(path: Path, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes, so that "too large" is detectable without reading it all."""
    try:
        with path.open("rb") as stream:
            return stream.read(limit + 1)
    except OSError as error:
        raise BundleFormatError(f"{path}: cannot read: {error.strerror}") from None


@dataclass
class _Context:
    root: Path
    raw: bytes | None
    manifest: Manifest | None
    manifest_problem: str | None
    tree: _Tree
    noncanonical: bool = False


def _read_bundle(root: Path) -> _Context:
    if not root.exists():
        raise UsageError(f"{root}: no such file or directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a bundle directory")
    kind = _kind(root, MANIFEST_PATH)
    if kind == "missing":
        raise UsageError(f"{root}: not a provenance bundle (no {MANIFEST_PATH})")
    if kind == "other":
        raise UsageError(f"{root}: not a provenance bundle ({MANIFEST_PATH} is not a file)")
    tree = _walk(root)
    if kind == "link":
        return _Context(root, None, None, f"{MANIFEST_PATH} is a symbolic link (or lies under "
                        "one); verify does not follow links", tree)
    raw = _read_at_most(root / MANIFEST_PATH, MAX_MANIFEST_BYTES)
    if len(raw) > MAX_MANIFEST_BYTES:
        return _Context(root, None, None, "manifest is implausibly large", tree)
    try:
        manifest = parse_manifest(raw)
    except BundleFormatError as error:
        return _Context(root, raw, None, str(error), tree)
    except RecursionError:
        return _Context(root, raw, None, "manifest is not JSON: nested too deeply", tree)
    if not _is_canonical(raw):
        return _Context(root, raw, manifest, None, tree, noncanonical=True)
    return _Context(root, raw, manifest, None, tree)


def _is_canonical(raw: bytes) -> bool:
    """Whether ``raw`` is exactly its RFC 8785 form: one spelling per manifest.

    Signed bytes that are not canonical (duplicate keys, other escapes or whitespace) may read
    differently in other JSON parsers; our writer only ever emits the canonical form.
    """
    try:
        return bytes(rfc8785.dumps(json.loads(raw))) == raw
    except (ValueError, RecursionError):  # rfc8785.CanonicalizationError is a ValueError
        return False


def _fail(name: str, detail: str, *problems: Problem) -> Check:
    return Check(name=name, status="FAIL", detail=detail,
                 problems=list(problems) or [Problem(message=detail)])


def _signature_file(context: _Context, path: str, limit: int) -> bytes | Problem:
    kind = _kind(context.root, path)
    if kind == "missing":
        return Problem(message="is missing", file=path)
    if kind == "link":
        return Problem(message="is a symbolic link; verify does not follow links", file=path)
    if kind == "other":
        return Problem(message="is not a regular file", file=path)
    data = _read_at_most(context.root / path, limit)
    if len(data) > limit:
        return Problem(message=f"is larger than {limit} bytes; not a signature", file=path)
    return data


def _raw_signature_problem(context: _Context, raw: bytes,
                           verified: VerifiedSignature) -> Problem | None:
    """The optional plain Ed25519 signature (for openssl) must agree with the SSHSIG."""
    # Every signed bundle carries both signatures (README, "The bundle"); a missing one is a
    # deleted file, not an option.
    data = _signature_file(context, RAW_SIGNATURE_PATH, RAW_SIGNATURE_BYTES)
    if isinstance(data, Problem):
        return data
    if len(data) != RAW_SIGNATURE_BYTES:
        return Problem(message=f"is {len(data)} bytes, not a {RAW_SIGNATURE_BYTES}-byte "
                       "Ed25519 signature", file=RAW_SIGNATURE_PATH)
    if not verify_raw(verified.public_key, raw, data):
        return Problem(message=f"does not verify over the manifest bytes with the key of "
                       f"{verified.fingerprint}", file=RAW_SIGNATURE_PATH)
    return None


def _check_signature(context: _Context) -> tuple[Check, str | None]:
    name = "signature"
    raw = context.raw
    if raw is None:
        reason = context.manifest_problem or "manifest unreadable"
        return _fail(name, reason, Problem(message=reason, file=MANIFEST_PATH)), None
    armored = _signature_file(context, SIGNATURE_PATH, MAX_SIGNATURE_BYTES)
    if isinstance(armored, Problem):
        return _fail(name, f"{SIGNATURE_PATH} {armored.message}", armored), None
    try:
        verified = verify_message(armored, raw, SIGNATURE_NAMESPACE)
    except SignatureInvalidError as error:
        # Either file may have changed; both are named, the bytes cannot tell which.
        return _fail(name, str(error),
                     Problem(message="these bytes are not the bytes that were signed",
                             file=MANIFEST_PATH),
                     Problem(message=str(error), file=SIGNATURE_PATH)), None
    except BundleFormatError as error:  # SignatureFormatError: the signature file is damaged
        return _fail(name, str(error), Problem(message=str(error), file=SIGNATURE_PATH)), None
    manifest = context.manifest
    if manifest is not None and manifest.signer is not None and \
            manifest.signer.fingerprint != verified.fingerprint:
        message = (f"signed by {verified.fingerprint} but the manifest names "
                   f"{manifest.signer.fingerprint}")
        return _fail(name, message, Problem(message=message, file=SIGNATURE_PATH),
                     Problem(message=f"names signer {manifest.signer.fingerprint}",
                             file=MANIFEST_PATH)), None
    raw_problem = _raw_signature_problem(context, raw, verified)
    if raw_problem is not None:
        return _fail(name, f"{RAW_SIGNATURE_PATH} {raw_problem.message}", raw_problem), None
    also = "" if _kind(context.root, RAW_SIGNATURE_PATH) == "missing" else \
        " (and the plain Ed25519 signature)"
    return Check(name=name, status="PASS",
                 detail=f"Ed25519 SSHSIG over the manifest bytes by {verified.fingerprint}"
                        + also), verified.fingerprint


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


def _hash(root: Path, path: str) -> tuple[int, str]:
    try:
        return hash_file(root / path)
    except OSError as error:
        raise BundleFormatError(f"{root / path}: cannot read: {error.strerror}") from None


def _check_files(context: _Context, manifest: Manifest,
                 scans: dict[str, ScanResult]) -> Check:
    problems: list[Problem] = []
    listed: dict[str, BundleFile] = {}
    for entry in manifest.files:
        if entry.path in listed:
            problems.append(Problem(message="listed more than once", file=entry.path))
        listed.setdefault(entry.path, entry)
    for path, entry in listed.items():
        if not _is_safe_relative(path):
            problems.append(Problem(message="listed path is absolute, contains '..' or lies "
                                    "too deep; not read", file=path))
            continue
        kind = _kind(context.root, path)
        if kind != "file":
            problems.append(Problem(file=path, message={
                "link": "is a symbolic link (or lies under one); not followed",
                "other": "is not a regular file",
                "missing": "listed file is missing"}[kind]))
            continue
        if path in scans:
            size, digest = scans[path].size, scans[path].sha256
        else:
            size, digest = _hash(context.root, path)
        if size != entry.bytes:
            problems.append(Problem(message=f"size {size} differs from the listed {entry.bytes}",
                                    file=path))
        elif digest != entry.sha256:
            problems.append(Problem(message="sha256 differs from the manifest", file=path))
    tree = context.tree
    for path in sorted(tree.files - listed.keys()):
        if not _is_unlisted_allowed(path):
            problems.append(Problem(message="file is not listed in the manifest", file=path))
    for path in sorted(tree.links - listed.keys()):
        problems.append(Problem(message="symbolic link in the bundle; not followed", file=path))
    for path in sorted(tree.others - listed.keys()):
        problems.append(Problem(message="not a regular file; not listed", file=path))
    if problems:
        return Check(name="files", status="FAIL", detail=f"{len(problems)} file problem(s)",
                     problems=problems[:MAX_PROBLEMS_PER_CHECK])
    return Check(name="files", status="PASS",
                 detail=f"{len(listed)} file(s) match size and sha256; no unlisted files")


def _check_records(scans: dict[str, ScanResult], unchecked: list[str]) -> Check:
    problems = [Problem(message="WARC file not checked: missing, not a regular file, or not "
                        "inside the bundle", file=path) for path in unchecked]
    count = 0
    for path, scan in scans.items():
        problems.extend(Problem(message=p, file=path, offset=0) for p in scan.problems)
        for record in scan.records:
            count += 1
            problems.extend(Problem(message=p, file=path, record_id=record.record_id or None,
                                    offset=record.offset) for p in record.problems)
        if not scan.records and not scan.problems:
            problems.append(Problem(message="WARC file holds no records", file=path))
    if problems:
        return Check(name="records", status="FAIL",
                     detail=f"{len(problems)} record problem(s) among {count} record(s) "
                            f"in {len(scans) + len(unchecked)} WARC file(s)",
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
    wanted: list[tuple[WarcLocation, str | None, str]] = []
    for resource in manifest.resources:
        for location in (resource.response, resource.request):
            if location is not None:
                wanted.append((location, resource.url, f"{resource.id} {resource.url}"))
    wanted.extend((s.record, None, f"TLS metadata for {s.host}") for s in manifest.tls)
    if manifest.article_text is not None:
        wanted.append((manifest.article_text.record, None, "article text"))
    problems: list[Problem] = []
    unchecked: dict[str, int] = {}
    for location, uri, what in wanted:
        if location.file not in scans:
            unchecked[location.file] = unchecked.get(location.file, 0) + 1
            continue
        problem = _expect(location, uri, index, what)
        if problem:
            problems.append(problem)
    problems[:0] = [Problem(message=f"{n} record reference(s) into a WARC file that could not "
                            "be checked (missing, unlisted or not a regular file)", file=path)
                    for path, n in unchecked.items()]
    if problems:
        failing = len(problems) - len(unchecked) + sum(unchecked.values())
        return Check(name="resources", status="FAIL",
                     detail=f"{failing} of {len(wanted)} record reference(s) do not match",
                     problems=problems[:MAX_PROBLEMS_PER_CHECK])
    return Check(name="resources", status="PASS",
                 detail=f"{len(wanted)} record reference(s) match file, offset, id, length "
                        "and URL")


def _scan(root: Path, path: str) -> ScanResult:
    try:
        return scan_warc(root / path)
    except OSError as error:
        raise BundleFormatError(f"{root / path}: cannot read: {error.strerror}") from None


def _check_timestamps(context: _Context,
                      roots: Sequence[x509.Certificate]) -> tuple[Check | None, list[TokenReport]]:
    """Every ``provenance/timestamp-<n>.tsr`` covers the signature file's exact bytes.

    RFC 3161 section 2.4.2: the imprint, the nonce from the stored request, the TSA's
    signature and chain up to a root the user trusts (never one found in the bundle).
    """
    tokens = list_tokens(context.root)
    if not tokens:
        return None, []
    signature = _signature_file(context, SIGNATURE_PATH, MAX_SIGNATURE_BYTES)
    if isinstance(signature, Problem):
        return Check(name="timestamps", status="SKIP",
                     detail="no readable signature for the tokens to cover"), []
    reports: list[TokenReport] = []
    problems: list[Problem] = []
    for tsr, tsq in tokens:
        relative = tsr.relative_to(context.root).as_posix()
        try:
            response = _read_at_most(tsr, MAX_SIGNATURE_BYTES)
            request = _read_at_most(tsq, MAX_SIGNATURE_BYTES) if tsq is not None else None
        except OSError as error:
            raise BundleFormatError(f"{relative}: cannot read: {error.strerror}") from None
        result = verify_timestamp(request, response, signature, roots)
        reports.append(TokenReport(
            file=relative, status=result.status, detail=escape_controls(result.detail),
            gen_time=rfc3339(result.gen_time, micros=False) if result.gen_time else None,
            tsa_name=escape_controls(result.tsa_name) if result.tsa_name else None,
            embedded_chain=[escape_controls(s) for s in result.embedded_chain_subjects]))
        if result.status == "FAIL":
            problems.append(Problem(message=escape_controls(result.detail), file=relative))
    summary = "; ".join(
        f"{r.file.removeprefix('provenance/')} {r.status}"
        + (f" {r.gen_time} by {r.tsa_name}" if r.gen_time else "") for r in reports)
    statuses = {r.status for r in reports}
    if "FAIL" in statuses:
        return Check(name="timestamps", status="FAIL", detail=summary, problems=problems), reports
    if "PASS" in statuses:
        return Check(name="timestamps", status="PASS", detail=summary), reports
    return Check(name="timestamps", status="SKIP",
                 detail=f"{summary}: no trusted TSA root configured (pass --tsa-root)"), reports


def verify_bundle(root: Path, *, trusted: Sequence[str] = (),
                  trust: TrustStore | None = None,
                  tsa_roots: Sequence[x509.Certificate] = ()) -> VerificationReport:
    """Verify a bundle directory; raise only when ``root`` is not a bundle at all.

    ``UsageError``: not a bundle, or a bad ``trusted`` item; ``BundleFormatError``: a file
    of the bundle cannot be read (I/O). Everything else is a finding in the report.
    """
    context = _read_bundle(root)
    signature, fingerprint = _check_signature(context)
    identity = _check_identity(fingerprint, trust if trust is not None else load_trusted(trusted))
    checks = [signature, identity]
    manifest = context.manifest
    if manifest is None:
        reason = context.manifest_problem or "manifest unreadable"
        checks.append(Check(name="manifest", status="FAIL", detail=reason,
                            problems=[Problem(message=reason, file=MANIFEST_PATH)]))
        for name in ("files", "records", "resources"):
            checks.append(Check(name=name, status="SKIP", detail="manifest unreadable"))
    else:
        if context.noncanonical:
            reason = "manifest bytes are not RFC 8785 canonical JSON"
            checks.append(Check(name="manifest", status="FAIL", detail=reason,
                                problems=[Problem(message=reason, file=MANIFEST_PATH)]))
        scans: dict[str, ScanResult] = {}
        unchecked: list[str] = []
        for entry in manifest.files:
            path = entry.path
            if not path.endswith(".warc.gz") or path in scans or path in unchecked:
                continue
            if _is_safe_relative(path) and _kind(context.root, path) == "file":
                scans[path] = _scan(context.root, path)
            else:
                unchecked.append(path)
        checks.append(_check_files(context, manifest, scans))
        checks.append(_check_records(scans, unchecked))
        checks.append(_check_resources(manifest, scans))
    stamp_check, tokens = _check_timestamps(context, tsa_roots)
    if stamp_check is not None:
        checks.append(stamp_check)
    # A timestamp nobody could check (no trusted TSA root) is reported, not counted against
    # the bundle: the signature and content checks stand on their own.
    blocking = [c.status for c in checks if not (c.name == "timestamps" and c.status == "SKIP")]
    verdict: Verdict = "FAILED" if "FAIL" in blocking else (
        "UNTRUSTED" if "UNTRUSTED" in blocking or "SKIP" in blocking else "VERIFIED")
    return VerificationReport(
        bundle=str(root), capture_id=manifest.capture_id if manifest else None,
        signer=fingerprint, verdict=verdict, checks=checks, timestamps=tokens)
