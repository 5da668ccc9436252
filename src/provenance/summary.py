"""A capture's outcome as rows for people and scripts (pure: manifest in, rows out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from provenance.models import Manifest, Resource


@dataclass(frozen=True)
class SummaryRow:
    role: str
    url: str
    final_url: str | None
    status: int | None
    bytes: int | None
    sha256: str | None
    outcome: str
    reason: str | None

    @property
    def outcome_text(self) -> str:
        return f"{self.outcome}: {self.reason}" if self.reason else self.outcome

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _chains(manifest: Manifest) -> list[list[Resource]]:
    """Group resources into redirect chains: a hop's ``location`` names the next hop's URL."""
    by_url: dict[str, list[Resource]] = {}
    for resource in manifest.resources:
        by_url.setdefault(resource.url, []).append(resource)
    targets = {r.location for r in manifest.resources if r.location}
    chains = []
    for resource in manifest.resources:
        if resource.url in targets:
            continue  # reached through a redirect; part of an earlier chain
        chain = [resource]
        seen = {resource.url}
        while chain[-1].location and chain[-1].location in by_url:
            nxt = by_url[chain[-1].location][0]
            if nxt.url in seen:
                break
            seen.add(nxt.url)
            chain.append(nxt)
        chains.append(chain)
    return chains


def summarize(manifest: Manifest) -> list[SummaryRow]:
    rows = []
    link_roles = {link.chain[0]: link for link in manifest.links if link.chain}
    for chain in _chains(manifest):
        first, last = chain[0], chain[-1]
        link = link_roles.get(first.id)
        role = first.role if first.role != "redirect" else (
            "linked_source" if link else last.role)
        outcome: str = last.outcome
        reason = last.reason
        if link is not None:
            outcome, reason = link.outcome, link.reason
        elif last.status is not None and last.status >= 400:
            outcome, reason = "failed", f"HTTP {last.status}"
        rows.append(SummaryRow(role=role, url=first.url,
                               final_url=last.url if last.status is not None else None,
                               status=last.status, bytes=last.bytes, sha256=last.sha256,
                               outcome=outcome, reason=reason))
    for link in manifest.links:
        if link.outcome == "skipped":
            rows.append(SummaryRow(role="linked_source", url=link.url, final_url=None,
                                   status=None, bytes=None, sha256=None, outcome="skipped",
                                   reason=link.reason))
    return rows
