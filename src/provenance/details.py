"""One committed capture described for ``provenance show`` (read back, never verified).

Everything here comes from the bundle itself: the manifest (parsed, not checked against its
signature: that is ``provenance verify``) and the timestamp tokens beside it, whose time and
authority name are read without judging the token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from provenance.models import Manifest, Resource
from provenance.snapshot import Snapshot, open_snapshot
from provenance.timestamps import read_stored_tokens
from provenance.timeutil import rfc3339


@dataclass(frozen=True)
class ResourceLine:
    id: str
    role: str
    url: str
    status: int | None
    bytes: int | None
    sha256: str | None
    media_type: str | None
    outcome: str
    reason: str | None


@dataclass(frozen=True)
class LinkLine:
    url: str
    text: str
    outcome: str
    reason: str | None
    final_url: str | None
    status: int | None
    sha256: str | None


@dataclass(frozen=True)
class TimestampLine:
    file: str
    gen_time: str | None
    tsa_name: str | None
    #: why the token could not even be read, or what reading it showed to be wrong
    problem: str | None


@dataclass(frozen=True)
class CaptureDetails:
    bundle: Path
    manifest: Manifest
    manifest_sha256: str
    resources: tuple[ResourceLine, ...]
    links: tuple[LinkLine, ...]
    timestamps: tuple[TimestampLine, ...]

    def as_dict(self) -> dict[str, object]:
        manifest = self.manifest
        return {
            "capture_id": manifest.capture_id,
            "bundle": str(self.bundle),
            "requested_url": manifest.requested_url,
            "final_url": manifest.final_url,
            "started_at": manifest.started_at,
            "finished_at": manifest.finished_at,
            "state": manifest.state,
            "state_reason": manifest.state_reason,
            "article_kind": manifest.article_kind,
            "page": manifest.page.model_dump(),
            "article_text": ({"bytes": manifest.article_text.bytes,
                              "sha256": manifest.article_text.sha256}
                             if manifest.article_text else None),
            "signer": manifest.signer.fingerprint if manifest.signer else None,
            "manifest_sha256": self.manifest_sha256,
            "previous": manifest.previous.model_dump() if manifest.previous else None,
            "resources": [asdict(line) for line in self.resources],
            "links": [asdict(line) for line in self.links],
            "timestamps": [asdict(line) for line in self.timestamps],
        }


def read_timestamps(bundle: Path) -> list[TimestampLine]:
    """Each ``provenance/timestamp-<n>.tsr``: its genTime and TSA name, if they can be read.

    The token is parsed and its imprint compared with the signature, but no TSA root is
    consulted: ``provenance verify --tsa-root`` is what says whether to believe it.
    """
    lines = []
    for tsr, check in read_stored_tokens(bundle):
        name = f"{tsr.parent.name}/{tsr.name}"
        if check is None:
            lines.append(TimestampLine(name, None, None, "unreadable or too large"))
            continue
        lines.append(TimestampLine(
            file=name,
            gen_time=rfc3339(check.gen_time, micros=False) if check.gen_time else None,
            tsa_name=check.tsa_name,
            problem=check.detail if check.status == "FAIL" else None))
    return lines


def _resource_line(resource: Resource) -> ResourceLine:
    return ResourceLine(id=resource.id, role=resource.role, url=resource.url,
                        status=resource.status, bytes=resource.bytes, sha256=resource.sha256,
                        media_type=resource.media_type, outcome=resource.outcome,
                        reason=resource.reason)


def describe(snapshot: Snapshot) -> CaptureDetails:
    manifest = snapshot.manifest
    by_id = {resource.id: resource for resource in manifest.resources}
    links = []
    for link in manifest.links:
        final = by_id.get(link.resource) if link.resource else None
        links.append(LinkLine(url=link.url, text=link.text, outcome=link.outcome,
                              reason=link.reason, final_url=link.final_url,
                              status=final.status if final else None,
                              sha256=final.sha256 if final and link.outcome == "captured"
                              else None))
    return CaptureDetails(
        bundle=snapshot.path, manifest=manifest, manifest_sha256=snapshot.manifest_sha256,
        resources=tuple(_resource_line(r) for r in manifest.resources), links=tuple(links),
        timestamps=tuple(read_timestamps(snapshot.path)))


def capture_details(bundle: Path) -> CaptureDetails:
    return describe(open_snapshot(bundle))
