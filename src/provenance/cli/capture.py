"""``provenance capture`` and ``provenance demo``: progress, summary, signing identity."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provenance.capture.events import Event, Notice, PhaseStarted, ResourceDone
from provenance.capture.options import DEFAULT_USER_AGENT, CaptureSettings
from provenance.capture.urls import parse_fetchable
from provenance.cli.app import (
    EXIT_OPERATIONAL,
    EXIT_VERIFY_FAILED,
    ArchiveDirOption,
    TsaOption,
    app,
    configured_tsa_urls,
    fail,
    parse_size,
    prompt_passphrase,
)
from provenance.errors import ProvenanceError, UserInterruptError
from provenance.storage import archive_dir

if TYPE_CHECKING:
    # The pipeline (trafilatura, lxml, the HTTP client) is imported by the commands that
    # capture, not by every command: see tests/test_startup.py.
    from provenance.capture.pipeline import CaptureResult, SigningIdentity
    from provenance.keys import LoadedKey
    from provenance.summary import SummaryRow
    from provenance.timestamps import StampOutcome


class _Progress:
    """Draws capture events: a line per finished resource, live on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.status: Any = None

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, PhaseStarted):
            if self.status is not None:
                self.status.update(f"{event.name}: {escape(event.detail)}")
            return
        if isinstance(event, ResourceDone):
            self.console.print(_event_line(event, self.console.is_terminal))
        elif isinstance(event, Notice):
            self.console.print(f"[yellow]note:[/] {escape(event.message)}")

    def live(self) -> Any:
        if self.quiet or not self.console.is_terminal:
            return nullcontext()
        self.status = self.console.status("capturing…")
        return self.status


def _event_line(event: ResourceDone, styled: bool) -> str:
    status = str(event.status) if event.status is not None else "---"
    size = f"{event.size:,} B" if event.size is not None else ""
    outcome = event.outcome if not event.reason else f"{event.outcome}: {event.reason}"
    http_error = event.status is not None and event.status >= 400
    if http_error:
        # Recorded faithfully, but the server said no: say so, as the summary will.
        outcome = f"recorded, HTTP {event.status} error"
    if not styled:
        return f"{event.role:<13} {status:>3} {size:>12}  {event.url}  ({outcome})"
    colour = "red" if http_error else {"captured": "green", "truncated": "yellow"}.get(
        event.outcome, "red")
    return (f"[dim]{event.role:<13}[/] {status:>3} {size:>12}  {escape(event.url)}  "
            f"[{colour}]{escape(outcome)}[/]")


def _settings(**values: Any) -> CaptureSettings:
    return CaptureSettings(**values)


def _render_summary(result: CaptureResult, rows: list[SummaryRow]) -> None:
    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    if console.is_terminal:
        table = Table(show_lines=False, pad_edge=False, box=None)
        table.add_column("role", no_wrap=True)
        table.add_column("status", no_wrap=True, justify="right")
        table.add_column("bytes", no_wrap=True, justify="right")
        table.add_column("sha256", no_wrap=True)
        table.add_column("url → final url · outcome", overflow="fold", ratio=1)
        colours = {"captured": "green", "skipped": "dim"}
        for row in rows:
            final = row.final_url if row.final_url and row.final_url != row.url else ""
            colour = colours.get(row.outcome, "red")
            cell = escape(row.url) + (f"\n→ {escape(final)}" if final else "")
            cell += f"\n[{colour}]{escape(row.outcome_text)}[/]"
            table.add_row(row.role.replace("_", " "), str(row.status or "-"),
                          f"{row.bytes:,}" if row.bytes is not None else "-",
                          (row.sha256 or "-")[7:19], cell)
        console.print(table)
    else:
        for row in rows:
            final = row.final_url or "-"
            console.print(f"{row.role}\t{row.url}\t{final}\t{row.status or '-'}\t"
                          f"{row.bytes if row.bytes is not None else '-'}\t{row.sha256 or '-'}\t"
                          f"{row.outcome_text}", markup=False)
    manifest = result.manifest
    console.print(f"state:      {manifest.state}" +
                  (f" ({manifest.state_reason})" if manifest.state_reason else ""), markup=False)
    for hit in manifest.limits_hit:
        console.print(f"limit:      {hit.limit} ({hit.url}): {hit.detail}", markup=False)
    console.print(f"capture id: {result.capture_id}", markup=False)
    console.print(f"bundle:     {result.bundle}", markup=False)
    if manifest.signer:
        console.print(f"signed by:  {manifest.signer.fingerprint}", markup=False)
    if manifest.state != "FAILED":
        from provenance.cite import cite
        from provenance.snapshot import Snapshot

        # A ready-to-paste citation of what was just captured (DESIGN.md section 1); other
        # styles: provenance cite ID --format ...
        snapshot = Snapshot(path=result.bundle, manifest_bytes=result.manifest_bytes,
                            manifest=manifest)
        try:
            console.print(f"cite as:    {cite(snapshot)}", markup=False)
        except ProvenanceError as error:  # the capture is done; a citation is a convenience
            console.print(f"cite as:    (unavailable: {error})", markup=False)


def _summary_json(result: CaptureResult, rows: list[SummaryRow]) -> str:
    manifest = result.manifest
    return json.dumps({
        "capture_id": result.capture_id,
        "bundle": str(result.bundle),
        "state": manifest.state,
        "state_reason": manifest.state_reason,
        "requested_url": manifest.requested_url,
        "final_url": manifest.final_url,
        "title": manifest.page.title,
        "signer": manifest.signer.fingerprint if manifest.signer else None,
        "timestamps": [asdict(stamp) for stamp in result.timestamps],
        "resources": [row.as_dict() for row in rows],
    }, indent=2)


def _identity(loaded: LoadedKey) -> SigningIdentity:
    from provenance.capture.pipeline import SigningIdentity

    return SigningIdentity.from_key(loaded.private_key)


def _signing_identity(key_file: Path | None, quiet: bool) -> SigningIdentity:
    """The key named by --key, else the default key, created (and trusted) on first use."""
    from provenance import keys as keystore

    def ask() -> bytes | None:
        return prompt_passphrase("Passphrase for the signing key")

    if key_file is not None:
        loaded = keystore.load_signing_key(key_file, ask)
        return _identity(loaded)
    # An existing (maybe encrypted) default key may prompt; a new one is created unencrypted
    # unless PROVENANCE_KEY_PASSPHRASE is set, so a first capture never stops to ask.
    exists = keystore.default_key_path().exists()
    loaded, created = keystore.ensure_default_key(ask if exists else keystore.passphrase_from_env)
    if created:
        keystore.trust_key(loaded.public_key, loaded.info.name)
        if not quiet:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"created signing key {loaded.info.private_path} "
                f"({loaded.fingerprint}); your captures are signed with it")
    return _identity(loaded)


def report_stamps(stamps: Sequence[StampOutcome], *, quiet: bool) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for stamp in stamps:
        if stamp.error:
            console.print(f"[yellow]timestamp failed:[/] {escape(stamp.error)}")
        elif not quiet:
            console.print(f"timestamp:  {stamp.token_file} from {escape(stamp.tsa_url)} "
                          f"at {stamp.gen_time}")


def run_capture(url: str, store: Path, settings: CaptureSettings, *, as_json: bool,
                quiet: bool, strict: bool, key_file: Path | None = None,
                tsa_urls: Sequence[str] = ()) -> CaptureResult:
    from provenance.capture.pipeline import capture
    from provenance.summary import summarize

    # Bad URLs (the article's or a TSA's) are reported before any key is created or loaded.
    for checked in (url, *tsa_urls):
        parse_fetchable(checked)
    signer = _signing_identity(key_file, quiet or as_json)
    progress = _Progress(quiet or as_json)
    try:
        with progress.live():
            result = capture(url, store=store, settings=settings, observer=progress,
                             signer=signer, tsa_urls=tsa_urls)
    except KeyboardInterrupt:
        raise UserInterruptError("interrupted; the unfinished capture was discarded") from None
    rows = summarize(result.manifest)
    if as_json:
        typer.echo(_summary_json(result, rows))
    elif not quiet:
        _render_summary(result, rows)
    else:
        typer.echo(str(result.bundle))
    report_stamps(result.timestamps, quiet=quiet or as_json)
    manifest = result.manifest
    if manifest.state == "FAILED":
        raise fail(f"{manifest.state_reason} (the attempt is recorded in {result.bundle})",
                    EXIT_OPERATIONAL)
    if manifest.state == "PARTIAL" and strict:
        raise fail(f"capture is PARTIAL: {manifest.state_reason} (--strict)", EXIT_OPERATIONAL)
    failed_stamps = [s for s in result.timestamps if s.error]
    if failed_stamps and strict:
        raise fail(f"{len(failed_stamps)} timestamp request(s) failed (--strict); the signed "
                    f"bundle is kept: {result.bundle}", EXIT_OPERATIONAL)
    return result


@app.command("capture")
def capture_command(
    url: Annotated[str, typer.Argument(help="The article to capture (http or https).")],
    archive: ArchiveDirOption = None,
    links: Annotated[str, typer.Option(
        "--links", help="Which links to follow: 'body' (links inside the article body) "
        "or 'none' (the page alone).")] = "body",
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Follow only links whose URL matches this shell-style pattern "
        "(repeatable), e.g. 'https://*.example.org/*'.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Do not follow links whose URL matches this pattern (repeatable).")]
        = None,
    requisites: Annotated[bool, typer.Option(
        "--requisites/--no-requisites", help="Also capture the page's stylesheets, images, "
        "scripts and favicon.")] = True,
    concurrency: Annotated[int, typer.Option(
        min=1, max=256, help="Requests in flight at once, overall (at most --per-host "
        "of them to one host).")] = 64,
    per_host: Annotated[int, typer.Option(
        "--per-host", min=1, max=64, help="Requests in flight at once to one host.")] = 8,
    connect_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds to wait for a connection.")] = 10.0,
    read_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds to wait for the next bytes of a response.")] = 30.0,
    total_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds one resource may take in all (slow-drip servers).")] = 120.0,
    max_redirects: Annotated[int, typer.Option(min=0, max=100)] = 10,
    max_bytes: Annotated[str, typer.Option(
        help="Response size cap; the prefix is kept and marked truncated.")] = "100M",
    max_decoded: Annotated[str, typer.Option(
        help="Most bytes of a page inflated and parsed for text and links (gzip bombs stop "
        "here; the record keeps the response whole).")] = "32M",
    max_links: Annotated[int, typer.Option(
        min=0, help="Most linked sources to fetch; the rest are recorded as skipped.")] = 200,
    allow_private: Annotated[bool, typer.Option(
        "--allow-private", help="Let links and redirects reach loopback, private, link-local "
        "and other non-global addresses on hosts other than the article's.")] = False,
    user_agent: Annotated[str, typer.Option(help="User-Agent header.")] = DEFAULT_USER_AGENT,
    ca_bundle: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True,
        help="PEM file of extra trusted roots (private CAs).")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", help="Send 'Name: value' to the article's host (repeatable), e.g. "
        "an Authorization header. Credential values are redacted from the records.")] = None,
    cookie_file: Annotated[Path | None, typer.Option(
        "--cookie-file", exists=True, dir_okay=False, readable=True,
        help="Netscape cookies.txt to log in with; cookies go where their domain rules say. "
        "Their values are redacted from the records.")] = None,
    keep_secrets: Annotated[bool, typer.Option(
        "--keep-secrets", help="Keep Cookie, Authorization and Set-Cookie values in the "
        "records (only for archives that never leave your hands).")] = False,
    key: Annotated[Path | None, typer.Option(
        "--key", dir_okay=False, help="OpenSSH Ed25519 private key to sign with (default: "
        "your provenance key, created on first use).")] = None,
    tsa: TsaOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a machine-readable summary on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the bundle path.")]
        = False,
    strict: Annotated[bool, typer.Option(
        help="Exit 3 when the capture is PARTIAL.")] = False,
) -> None:
    """Capture an article, its page requisites and the sources its body links to."""
    from provenance.capture.secrets import parse_header_option

    if links not in ("body", "none"):
        raise typer.BadParameter("must be 'body' or 'none'", param_hint="--links")
    mode: Literal["body", "none"] = "body" if links == "body" else "none"
    settings = _settings(
        links=mode, include=tuple(include or ()), exclude=tuple(exclude or ()),
        requisites=requisites, concurrency=concurrency, per_host=per_host,
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        total_timeout=total_timeout, max_redirects=max_redirects,
        max_bytes=parse_size(max_bytes), max_decoded_bytes=parse_size(max_decoded),
        max_links=max_links, allow_private=allow_private,
        user_agent=user_agent,
        extra_headers=tuple(parse_header_option(text) for text in header or ()),
        cookie_file=cookie_file, keep_secrets=keep_secrets,
        ca_bundle=ca_bundle)
    tsa_urls = configured_tsa_urls(tsa)
    run_capture(url, archive_dir(archive), settings, as_json=as_json, quiet=quiet,
                strict=strict, key_file=key, tsa_urls=tsa_urls)


@app.command("demo")
def demo_command(
    archive: ArchiveDirOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Serve the bundled sample site on 127.0.0.1 and capture its article (offline)."""
    from provenance.demo.site import serve_sample_site
    from provenance.verify import verify_bundle

    with serve_sample_site() as site:
        if not (quiet or as_json):
            typer.echo(f"sample site serving on {site.base_url}", err=True)
        result = run_capture(site.article_url, archive_dir(archive), CaptureSettings(),
                             as_json=as_json, quiet=quiet, strict=False)
    report = verify_bundle(result.bundle)
    if not (quiet or as_json):
        typer.echo(f"verify:     {report.verdict} "
                   f"({', '.join(f'{c.name} {c.status}' for c in report.checks)})")
        typer.echo(f"next:       provenance verify {result.bundle}")
    if not report.ok:
        raise typer.Exit(EXIT_VERIFY_FAILED)
