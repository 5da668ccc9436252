"""``provenance list``, ``show``, ``history``, ``diff`` and ``reindex``: the store's catalog.

Every string shown here came from the web (titles, URLs, article text), so control
characters are escaped before they reach a terminal; plain output (not a terminal) is one
record per line with tab-separated fields, and ``--json`` is the same data for scripts.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provenance.cli.app import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    ArchiveDirOption,
    app,
    fail,
)
from provenance.printable import escape_controls
from provenance.storage import archive_dir

if TYPE_CHECKING:
    from provenance.catalog import CatalogEntry, History, Unindexed
    from provenance.details import CaptureDetails
    from provenance.diff import CaptureDiff, LinkChange

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _safe(value: object, *, keep_tabs: bool = False) -> str:
    """One field for one line: control characters (and lone surrogates) escaped."""
    if value is None:
        return "-"
    return escape_controls(str(value), keep_tabs=keep_tabs)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _warn_unindexed(unindexed: list[Unindexed]) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for item in unindexed:
        console.print(f"[yellow]warning:[/] {escape(_safe(item.name))} is not in the catalog: "
                      f"{escape(_safe(item.reason))}")


def _short_time(stamp: str) -> str:
    return stamp[:19].replace("T", " ")


def _short_sha(digest: str | None) -> str:
    return digest[7:19] if digest else "-"


# ---------------------------------------------------------------------------------------------
# list


def _list_table(entries: list[CatalogEntry]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("capture id", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("sources", no_wrap=True, justify="right")
    table.add_column("url · title", overflow="fold", ratio=1)
    colours = {"COMPLETE": "green", "PARTIAL": "yellow", "FAILED": "red"}
    for entry in entries:
        cell = escape(_safe(entry.requested_url))
        if entry.title:
            cell += f"\n[dim]{escape(_safe(entry.title))}[/]"
        table.add_row(entry.capture_id, _short_time(entry.started_at),
                      f"[{colours.get(entry.state, 'red')}]{entry.state}[/]",
                      f"{entry.links_captured}/{entry.links_captured + entry.links_failed}",
                      cell)
    return table


@app.command("list")
def list_command(
    archive: ArchiveDirOption = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Only captures of this URL (scheme and host case, default port and "
        "fragment do not matter).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only captures started at or after this date (YYYY-MM-DD, UTC) or "
        "RFC 3339 time.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the captures in the archive store, newest first."""
    from provenance.catalog import listing, parse_since

    store = archive_dir(archive)
    found = listing(store, url=url, since=parse_since(since) if since else None)
    entries = found.entries
    if as_json:
        typer.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
    elif sys.stdout.isatty():
        if entries:
            _out().print(_list_table(entries))
        else:
            typer.echo(f"no captures in {store}" + (" match --url/--since" if url or since
                                                    else ""), err=True)
    else:
        for entry in entries:
            typer.echo("\t".join(_safe(value) for value in (
                entry.capture_id, entry.started_at, entry.state, entry.requested_url,
                entry.title)))
    _warn_unindexed(found.unindexed)


# ---------------------------------------------------------------------------------------------
# show


def _show_text(details: CaptureDetails) -> None:
    manifest = details.manifest
    console = _out()
    terminal = console.is_terminal

    def line(label: str, value: object) -> None:
        console.print(f"{label + ':':<13} {_safe(value)}", markup=False)

    line("capture id", manifest.capture_id)
    line("bundle", details.bundle)
    line("url", manifest.requested_url)
    if manifest.final_url != manifest.requested_url:
        line("final url", manifest.final_url)
    line("title", manifest.page.title)
    line("captured", f"{manifest.started_at} to {manifest.finished_at}")
    line("state", manifest.state + (f" ({manifest.state_reason})" if manifest.state_reason
                                    else ""))
    line("signer", manifest.signer.fingerprint if manifest.signer else "unsigned")
    line("manifest", details.manifest_sha256)
    previous = manifest.previous
    line("previous", f"{previous.capture_id} ({previous.manifest_sha256})" if previous
         else "none")
    text = manifest.article_text
    line("article text", f"{text.bytes} bytes, {text.sha256}" if text else "none")
    if not details.timestamps:
        line("timestamps", "none")
    for stamp in details.timestamps:
        value = f"{stamp.file} {stamp.gen_time or '?'} {stamp.tsa_name or ''}".rstrip()
        value += f" (cannot be read: {stamp.problem})" if stamp.problem else \
            " (not verified here; see provenance verify)"
        line("timestamp", value)

    console.print("\nresources:", markup=False)
    if terminal:
        table = Table(box=None, pad_edge=False)
        for column in ("role", "status", "bytes", "sha256", "outcome"):
            table.add_column(column, no_wrap=True,
                             justify="right" if column in ("status", "bytes") else "left")
        table.add_column("url", overflow="fold", ratio=1)
        for resource in details.resources:
            outcome = resource.outcome + (f": {resource.reason}" if resource.reason else "")
            colour = {"captured": "green", "truncated": "yellow"}.get(resource.outcome, "red")
            if resource.status is not None and resource.status >= 400:
                outcome, colour = f"recorded, HTTP {resource.status} error", "red"
            table.add_row(resource.role.replace("_", " "), str(resource.status or "-"),
                          f"{resource.bytes:,}" if resource.bytes is not None else "-",
                          _short_sha(resource.sha256), f"[{colour}]{escape(_safe(outcome))}[/]",
                          escape(_safe(resource.url)))
        console.print(table)
    else:
        for resource in details.resources:
            outcome = resource.outcome + (f": {resource.reason}" if resource.reason else "")
            console.print("\t".join(_safe(v) for v in (
                resource.role, resource.status, resource.bytes, resource.sha256, resource.url,
                outcome)), markup=False)

    console.print("\nlinked sources:", markup=False)
    if not details.links:
        console.print("  none", markup=False)
    for link in details.links:
        outcome = link.outcome + (f": {link.reason}" if link.reason else "")
        final = f" -> {link.final_url}" if link.final_url and link.final_url != link.url else ""
        fields = (outcome, link.url + final, link.sha256)
        if terminal:
            colour = {"captured": "green", "skipped": "dim"}.get(link.outcome, "red")
            console.print(f"  [{colour}]{escape(_safe(outcome))}[/]  {escape(_safe(fields[1]))}"
                          + (f"  {_short_sha(link.sha256)}" if link.sha256 else ""))
        else:
            console.print("\t".join(_safe(v) for v in fields), markup=False)


@app.command("show")
def show_command(
    capture: Annotated[str, typer.Argument(
        help="Capture id (any unique prefix) or bundle directory.")],
    archive: ArchiveDirOption = None,
    text: Annotated[bool, typer.Option(
        "--text", help="Print only the archived article text.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Describe one capture: URL, time, state, signer, resources, linked sources, timestamps."""
    from provenance.catalog import resolve_capture
    from provenance.details import capture_details
    from provenance.snapshot import article_text, open_snapshot

    bundle = resolve_capture(archive_dir(archive), capture)
    if text:
        snapshot = open_snapshot(bundle)
        content = article_text(snapshot)
        if content is None:
            raise fail(f"capture {snapshot.manifest.capture_id} has no article text "
                       f"(article: {snapshot.manifest.article_kind}, "
                       f"state {snapshot.manifest.state})", EXIT_USAGE)
        if sys.stdout.isatty():
            content = "\n".join(_safe(line, keep_tabs=True) for line in content.split("\n"))
        sys.stdout.write(content if content.endswith("\n") or not content else content + "\n")
        return
    details = capture_details(bundle)
    if as_json:
        typer.echo(json.dumps(details.as_dict(), indent=2))
    else:
        _show_text(details)


# ---------------------------------------------------------------------------------------------
# history


def _history_output(found: History) -> None:
    console = _out()
    if console.is_terminal:
        console.print(f"history of {escape(_safe(found.url))}"
                      + (f" (as {escape(_safe(found.url_key))})"
                         if found.url_key != found.url else ""))
        table = Table(box=None, pad_edge=False)
        table.add_column("#", no_wrap=True, justify="right")
        table.add_column("capture id", no_wrap=True)
        table.add_column("started (UTC)", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("manifest", no_wrap=True)
        table.add_column("link to previous", overflow="fold", ratio=1)
        for number, item in enumerate(found.entries, 1):
            colour = "bold red" if item.broken else ("green" if item.link == "ok" else "dim")
            table.add_row(str(number), item.entry.capture_id,
                          _short_time(item.entry.started_at), item.entry.state,
                          _short_sha(item.manifest_sha256),
                          f"[{colour}]{'BROKEN: ' if item.broken else ''}{item.link}[/]"
                          f"\n{escape(_safe(item.detail))}")
        console.print(table)
    else:
        for item in found.entries:
            typer.echo("\t".join(_safe(v) for v in (
                item.entry.capture_id, item.entry.started_at, item.entry.state,
                item.manifest_sha256, item.link, item.detail)))


@app.command("history")
def history_command(
    url: Annotated[str, typer.Argument(
        help="The URL whose captures to list (or a capture id, for that capture's URL).")],
    archive: ArchiveDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List every capture of a URL, oldest first, checking each link to the one before.

    Exit 1 when a link is broken: a predecessor deleted, or altered since it was linked.
    """
    from provenance.catalog import capture_history
    from provenance.catalog import history as url_history

    store = archive_dir(archive)
    found = url_history(store, url) if "://" in url else capture_history(store, url)
    url = found.url  # a capture id given: the URL that capture requested
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    elif not found.entries:
        typer.echo(f"no captures of {_safe(url)} in {store}", err=True)
    else:
        _history_output(found)
    broken = found.broken
    if broken:
        if not as_json:
            first = broken[0]
            raise fail(f"{len(broken)} broken link(s) in the history of {_safe(url)}; first: "
                       f"{first.entry.capture_id}: {_safe(first.detail)}", EXIT_VERIFY_FAILED)
        raise typer.Exit(EXIT_VERIFY_FAILED)


# ---------------------------------------------------------------------------------------------
# diff

_LINK_MARK = {"added": "+", "removed": "-", "changed": "~", "moved": "~", "unreachable": "!",
              "restored": "+", "not-followed": "-", "followed": "+"}


def _link_line(change: LinkChange) -> str:
    old, new = change.old, change.new
    detail = ""
    if change.change == "changed" and old and new:
        detail = f"sha256 {_short_sha(old.sha256)} -> {_short_sha(new.sha256)}"
    elif change.change == "moved" and old and new:
        detail = f"now {new.final_url} (was {old.final_url})"
    elif new is not None and change.change != "removed":
        detail = new.outcome + (f": {new.reason}" if new.reason else "")
        if change.change == "unreachable" and old is not None and old.sha256:
            detail += f"; was captured, sha256 {_short_sha(old.sha256)}"
    elif old is not None:
        detail = f"was {old.outcome}" + (f": {old.reason}" if old.reason else "")
    return f"{_LINK_MARK[change.change]} {change.change:<12} {change.url}  ({detail})"


def _diff_output(result: CaptureDiff) -> None:
    console = _out()
    styled = console.is_terminal

    def say(text: str, style: str | None = None) -> None:
        safe = _safe(text, keep_tabs=True)
        console.print(f"[{style}]{escape(safe)}[/]" if style and styled else safe,
                      markup=bool(style and styled))

    say(f"old: {result.old.label}  {result.old.state}  {result.old.requested_url}")
    say(f"new: {result.new.label}  {result.new.state}  {result.new.requested_url}")
    if result.identical:
        say("no differences")
        return
    if result.metadata:
        say("")
        say("metadata:", "bold")
        for field in result.metadata:
            say(f"  {field.field}: {json.dumps(field.old)} -> {json.dumps(field.new)}")
    if result.links:
        say("")
        say("linked sources:", "bold")
        colours = {"+": "green", "-": "red", "!": "bold red", "~": "yellow"}
        for change in result.links:
            say("  " + _link_line(change), colours[_LINK_MARK[change.change]])
    if result.text_note:
        say("")
        say(f"article text: {result.text_note}", "bold")
    if result.text_diff:
        say("")
        say("article text:", "bold")
        for line in result.text_diff:
            style = None
            if line.startswith(("---", "+++")):
                style = "bold"
            elif line.startswith("@@"):
                style = "cyan"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            say(line, style)


@app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="The earlier capture (id, prefix or bundle).")],
    new: Annotated[str, typer.Argument(help="The later capture (id, prefix or bundle).")],
    archive: ArchiveDirOption = None,
    as_json: JsonOption = False,
    exit_code: Annotated[bool, typer.Option(
        "--exit-code", help="Exit 1 when the captures differ (as git diff --exit-code).")]
        = False,
) -> None:
    """Compare two captures: article text, metadata, and linked sources added, removed, changed."""
    from provenance.catalog import resolve_captures
    from provenance.diff import diff_captures

    old_bundle, new_bundle = resolve_captures(archive_dir(archive), [old, new])
    result = diff_captures(old_bundle, new_bundle)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _diff_output(result)
    raise typer.Exit(EXIT_VERIFY_FAILED if exit_code and not result.identical else EXIT_OK)


# ---------------------------------------------------------------------------------------------
# reindex


@app.command("reindex")
def reindex_command(
    archive: ArchiveDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the catalog from the bundles alone (they are the truth; the catalog an index)."""
    from provenance.catalog import reindex

    report = reindex(archive_dir(archive))
    if as_json:
        typer.echo(json.dumps({
            "catalog": str(report.catalog), "indexed": report.indexed,
            "unindexed": [{"name": u.name, "reason": u.reason} for u in report.unindexed],
        }, indent=2))
        return
    typer.echo(f"indexed {report.indexed} capture(s) into {report.catalog}")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for item in report.unindexed:
        console.print(f"[yellow]warning:[/] {escape(_safe(item.name))} not indexed: "
                      f"{escape(_safe(item.reason))}")
