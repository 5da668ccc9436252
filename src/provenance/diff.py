"""What changed between two captures: article text, metadata, and the sources it links to.

Pure reading: two bundles in, a ``CaptureDiff`` out (nothing is verified here). Linked
sources are matched by the link's URL as written in the article; a source has *changed* when
the sha256 of its final resource differs, became *unreachable* when it was captured in the
first and failed in the second, and *came back* (``restored``) the other way round.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from provenance.models import BodyLink, Manifest
from provenance.snapshot import Snapshot, article_resource, article_text, open_snapshot

LinkChangeKind = Literal["added", "removed", "changed", "moved", "unreachable", "restored",
                         "not-followed", "followed"]


@dataclass(frozen=True)
class Side:
    """One of the two captures, as the diff names it."""

    capture_id: str
    bundle: str
    requested_url: str
    started_at: str
    state: str
    manifest_sha256: str

    @property
    def label(self) -> str:
        return f"{self.capture_id} ({self.started_at})"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: object
    new: object


@dataclass(frozen=True)
class LinkState:
    """What became of one link in one capture."""

    outcome: str
    reason: str | None
    final_url: str | None
    status: int | None
    sha256: str | None


@dataclass(frozen=True)
class LinkChange:
    url: str
    change: LinkChangeKind
    old: LinkState | None
    new: LinkState | None


@dataclass(frozen=True)
class CaptureDiff:
    old: Side
    new: Side
    metadata: tuple[FieldChange, ...]
    links: tuple[LinkChange, ...]
    #: unified diff of the article texts, one line per item, without line ends
    text_diff: tuple[str, ...]
    #: when one side has no article text (a failed capture, a PDF), saying which
    text_note: str | None

    @property
    def identical(self) -> bool:
        return not (self.metadata or self.links or self.text_diff)

    def as_dict(self) -> dict[str, object]:
        return {
            "old": asdict(self.old),
            "new": asdict(self.new),
            "identical": self.identical,
            "metadata": [asdict(change) for change in self.metadata],
            "links": [asdict(change) for change in self.links],
            "text_diff": "".join(f"{line}\n" for line in self.text_diff),
            "text_note": self.text_note,
        }


def _side(snapshot: Snapshot) -> Side:
    manifest = snapshot.manifest
    return Side(capture_id=manifest.capture_id, bundle=str(snapshot.path),
                requested_url=manifest.requested_url, started_at=manifest.started_at,
                state=manifest.state, manifest_sha256=snapshot.manifest_sha256)


def _fields(manifest: Manifest) -> dict[str, object]:
    page = manifest.page
    article = article_resource(manifest)
    return {
        "requested_url": manifest.requested_url,
        "final_url": manifest.final_url,
        "redirect_chain": [hop.url for hop in manifest.redirect_chain],
        "state": manifest.state,
        "state_reason": manifest.state_reason,
        "article_kind": manifest.article_kind,
        "title": page.title,
        "authors": list(page.authors),
        "published": page.published,
        "canonical_url": page.canonical_url,
        "language": page.language,
        "site_name": page.site_name,
        "description": page.description,
        "article_status": article.status if article else None,
        "article_media_type": article.media_type if article else None,
        "article_sha256": article.sha256 if article else None,
        "article_bytes": article.bytes if article else None,
        "article_text_sha256": manifest.article_text.sha256 if manifest.article_text else None,
        "signer": manifest.signer.fingerprint if manifest.signer else None,
    }


def _link_states(manifest: Manifest) -> dict[str, LinkState]:
    """Per link URL, in document order: the followed occurrence, else the first skipped one."""
    by_id = {r.id: r for r in manifest.resources}
    states: dict[str, LinkState] = {}

    def state(link: BodyLink) -> LinkState:
        final = by_id.get(link.resource) if link.resource else None
        return LinkState(outcome=link.outcome, reason=link.reason, final_url=link.final_url,
                         status=final.status if final else None,
                         sha256=final.sha256 if final and link.outcome == "captured" else None)

    for link in manifest.links:
        seen = states.get(link.url)
        if seen is None or (seen.outcome == "skipped" and link.outcome != "skipped"):
            states[link.url] = state(link)
    return states


def _link_change(old: LinkState | None, new: LinkState | None) -> LinkChangeKind | None:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    before, after = old.outcome, new.outcome
    if before == "captured" and after == "captured":
        if old.sha256 != new.sha256:
            return "changed"
        return "moved" if old.final_url != new.final_url else None
    if before == "captured" and after == "failed":
        return "unreachable"
    if before == "failed" and after == "captured":
        return "restored"
    if after == "skipped" and before != "skipped":
        return "not-followed"
    if before == "skipped" and after == "captured":
        return "followed"
    if before == "skipped" and after == "failed":
        return "unreachable"
    return None  # failed both times, or skipped both times


def _links(old: Manifest, new: Manifest) -> list[LinkChange]:
    before, after = _link_states(old), _link_states(new)
    changes = []
    for url in [*after, *(u for u in before if u not in after)]:
        kind = _link_change(before.get(url), after.get(url))
        if kind is not None:
            changes.append(LinkChange(url=url, change=kind, old=before.get(url),
                                      new=after.get(url)))
    return changes


def diff_snapshots(old: Snapshot, new: Snapshot) -> CaptureDiff:
    old_side, new_side = _side(old), _side(new)
    before, after = _fields(old.manifest), _fields(new.manifest)
    metadata = tuple(FieldChange(field=name, old=before[name], new=after[name])
                     for name in before if before[name] != after[name])
    old_text, new_text = article_text(old), article_text(new)
    missing = [side.capture_id for side, text in ((old_side, old_text), (new_side, new_text))
               if text is None]
    note = (f"no article text in {' and '.join(missing)}" if missing else None)
    lines = tuple(difflib.unified_diff(
        (old_text or "").splitlines(), (new_text or "").splitlines(),
        fromfile=old_side.capture_id, tofile=new_side.capture_id,
        fromfiledate=old_side.started_at, tofiledate=new_side.started_at, lineterm=""))
    return CaptureDiff(old=old_side, new=new_side, metadata=metadata,
                       links=tuple(_links(old.manifest, new.manifest)), text_diff=lines,
                       text_note=note)


def diff_captures(old: Path, new: Path) -> CaptureDiff:
    """Compare two bundles (``old`` first, as in ``diff OLD NEW``)."""
    return diff_snapshots(open_snapshot(old), open_snapshot(new))
