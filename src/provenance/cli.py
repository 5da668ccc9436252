"""The command line: parse, call the library, render, map errors to exit codes.

Exit codes (README, "Exit codes"): 0 success; 1 verification failed; 2 usage error;
3 operational error (network, disk, keys, or a capture that failed or, with --strict, is
PARTIAL); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provenance import __version__, signing
from provenance import keys as keystore
from provenance.capture.events import Event, PhaseStarted, ResourceDone
from provenance.capture.options import DEFAULT_USER_AGENT, CaptureSettings
from provenance.capture.pipeline import (
    CaptureResult,
    SigningIdentity,
    StampOutcome,
    capture,
    stamp_bundle,
)
from provenance.capture.urls import parse_fetchable
from provenance.config import load_config
from provenance.errors import ProvenanceError, SigningKeyError, UsageError
from provenance.storage import SIGNATURE_PATH, archive_dir
from provenance.summary import SummaryRow, summarize

app = typer.Typer(
    name="provenance",
    help="Capture web evidence into signed, verifiable WARC bundles, and cite it.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold key material; never print them (DESIGN.md section 4, habit 2).
    pretty_exceptions_show_locals=False,
)

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_OPERATIONAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

ArchiveDirOption = Annotated[
    Path | None,
    typer.Option("--archive-dir", help="Archive store (default $PROVENANCE_ARCHIVE_DIR or "
                 "./archives).", show_default=False),
]


TsaOption = Annotated[
    list[str] | None,
    typer.Option("--tsa", help="RFC 3161 time-stamp authority URL to stamp the signature with "
                 "(repeatable; default: 'tsa' in config.toml or $PROVENANCE_TSA)."),
]


def _tsa_urls(given: list[str] | None) -> tuple[str, ...]:
    """``--tsa`` values, else the configured defaults."""
    return tuple(given) if given else load_config().tsa


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _parse_size(text: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = value[-1:] if value[-1:] in units else ""
    number = value[: len(value) - len(unit)] if unit else value
    try:
        size = int(float(number) * units[unit])
    except ValueError:
        raise typer.BadParameter(f"not a size: {text!r} (try 100M, 2G or 5000000)") from None
    if size <= 0:
        raise typer.BadParameter("must be positive")
    return size


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
    console.print(f"capture id: {result.capture_id}", markup=False)
    console.print(f"bundle:     {result.bundle}", markup=False)
    if manifest.signer:
        console.print(f"signed by:  {manifest.signer.fingerprint}", markup=False)


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


def _prompt_passphrase(purpose: str, *, confirm: bool = False) -> bytes | None:
    from_env = keystore.passphrase_from_env()
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        if confirm:
            return None
        raise SigningKeyError(
            f"no passphrase available ({purpose.lower()})",
            remedy="set PROVENANCE_KEY_PASSPHRASE or run on a terminal")
    text: str = typer.prompt(purpose, hide_input=True, confirmation_prompt=confirm,
                             default="" if confirm else None, show_default=False, err=True)
    return text.encode("utf-8") or None


def _identity(loaded: keystore.LoadedKey) -> SigningIdentity:
    return SigningIdentity.from_key(loaded.private_key)


def _signing_identity(key_file: Path | None, quiet: bool) -> SigningIdentity:
    """The key named by --key, else the default key, created (and trusted) on first use."""
    def ask() -> bytes | None:
        return _prompt_passphrase("Passphrase for the signing key")

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


def _report_stamps(stamps: Sequence[StampOutcome], *, quiet: bool) -> None:
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
        # Click would turn this into "Aborted!" and exit 1; we promise 130 (128 + SIGINT).
        raise _fail("interrupted; the unfinished capture was discarded", EXIT_INTERRUPTED) \
            from None
    rows = summarize(result.manifest)
    if as_json:
        typer.echo(_summary_json(result, rows))
    elif not quiet:
        _render_summary(result, rows)
    else:
        typer.echo(str(result.bundle))
    _report_stamps(result.timestamps, quiet=quiet or as_json)
    manifest = result.manifest
    if manifest.state == "FAILED":
        raise _fail(f"{manifest.state_reason} (the attempt is recorded in {result.bundle})",
                    EXIT_OPERATIONAL)
    if manifest.state == "PARTIAL" and strict:
        raise _fail(f"capture is PARTIAL: {manifest.state_reason} (--strict)", EXIT_OPERATIONAL)
    failed_stamps = [s for s in result.timestamps if s.error]
    if failed_stamps and strict:
        raise _fail(f"{len(failed_stamps)} timestamp request(s) failed (--strict); the signed "
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
        min=1, max=256, help="Requests in flight at once, overall.")] = 16,
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
    max_links: Annotated[int, typer.Option(
        min=0, help="Most linked sources to fetch; the rest are recorded as skipped.")] = 200,
    user_agent: Annotated[str, typer.Option(help="User-Agent header.")] = DEFAULT_USER_AGENT,
    ca_bundle: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True,
        help="PEM file of extra trusted roots (private CAs).")] = None,
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
    if links not in ("body", "none"):
        raise typer.BadParameter("must be 'body' or 'none'", param_hint="--links")
    mode: Literal["body", "none"] = "body" if links == "body" else "none"
    settings = _settings(
        links=mode, include=tuple(include or ()), exclude=tuple(exclude or ()),
        requisites=requisites, concurrency=concurrency, per_host=per_host,
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        total_timeout=total_timeout, max_redirects=max_redirects,
        max_bytes=_parse_size(max_bytes), max_links=max_links, user_agent=user_agent,
        ca_bundle=ca_bundle)
    tsa_urls = _tsa_urls(tsa)
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


@app.command("timestamp")
def timestamp_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to stamp.")],
    tsa: TsaOption = None,
    ca_bundle: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Extra trusted roots for an HTTPS TSA.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 3 if any TSA fails.")] = False,
) -> None:
    """Add RFC 3161 tokens over a bundle's signature (e.g. one captured offline)."""
    urls = _tsa_urls(tsa)
    if not urls:
        raise UsageError("no TSA given", remedy="pass --tsa URL or set 'tsa' in config.toml")
    if not (bundle / SIGNATURE_PATH).is_file():
        raise UsageError(f"{bundle}: not a signed provenance bundle (no {SIGNATURE_PATH})")
    stamps = stamp_bundle(bundle, urls, user_agent=DEFAULT_USER_AGENT, ca_bundle=ca_bundle)
    _report_stamps(stamps, quiet=False)
    failed = [s for s in stamps if s.error]
    if failed and (strict or len(failed) == len(stamps)):
        raise typer.Exit(EXIT_OPERATIONAL)


STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow", "UNTRUSTED": "yellow"}


@app.command("verify")
def verify_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to verify.")],
    trusted_key: Annotated[list[str] | None, typer.Option(
        "--trusted-key", help="Trust this signer for this run: a SHA256: fingerprint, or a "
        ".pub or allowed_signers file (repeatable).")] = None,
    tsa_root: Annotated[list[Path] | None, typer.Option(
        "--tsa-root", help="PEM root certificate(s) you trust for RFC 3161 tokens "
        "(repeatable; default 'tsa_roots' in config.toml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]
        = False,
) -> None:
    """Check a bundle offline: signature, signer, files, WARC records, references, timestamps."""
    from provenance.timestamps import load_roots
    from provenance.verify import verify_bundle

    roots = load_roots(tsa_root if tsa_root else load_config().tsa_roots)
    report = verify_bundle(bundle, trusted=tuple(trusted_key or ()), tsa_roots=roots)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        console = Console(highlight=False, soft_wrap=True)
        table = Table(box=None, pad_edge=False)
        for column in ("check", "result", "detail"):
            table.add_column(column, overflow="fold")
        for check in report.checks:
            style = STATUS_STYLE[check.status]
            table.add_row(check.name, f"[{style}]{check.status}[/]", escape(check.detail))
            for problem in check.problems[:20]:
                where = " ".join(part for part in (
                    problem.file or "",
                    f"record {problem.record_id}" if problem.record_id else "",
                    f"@{problem.offset}" if problem.offset is not None else "") if part)
                table.add_row("", "", f"  {escape(where)}: {escape(problem.message)}")
        for token in report.timestamps:
            chain = f"; chain in token (not trusted): {' < '.join(token.embedded_chain)}" \
                if token.embedded_chain else ""
            table_line = (f"  {token.file}: {token.status} {token.gen_time or ''} "
                          f"{token.tsa_name or ''}: {token.detail}{chain}")
            table.add_row("", "", escape(table_line))
        console.print(table)
        verdicts = {
            "VERIFIED": "[bold green]VERIFIED[/]: intact and signed by a trusted key",
            "UNTRUSTED": "[bold yellow]NOT FULLY VERIFIED[/]: intact, but the signer is not "
                         "trusted",
            "FAILED": "[bold red]FAILED[/]: this bundle is not what its signer captured",
        }
        console.print(verdicts[report.verdict])
    raise typer.Exit(EXIT_OK if report.ok else EXIT_VERIFY_FAILED)


keys_app = typer.Typer(help="Create, list and export signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Option(help="Key name (file name in the key directory).")]
        = "default",
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", dir_okay=False, help="Write the private key here instead.")] = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", help="Encrypt the key; the passphrase comes from a hidden prompt or "
        "PROVENANCE_KEY_PASSPHRASE.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing key of that name.")] = False,
) -> None:
    """Create an Ed25519 signing key (OpenSSH format, mode 0600) and print its fingerprint."""
    secret = _prompt_passphrase("New key passphrase", confirm=True) if passphrase else None
    if passphrase and not secret:
        raise UsageError("--passphrase given but the passphrase is empty")
    info = keystore.generate_key(name, passphrase=secret, key_file=key_file, overwrite=force)
    # Your own keys are trusted by your verifications; name them as the file is named.
    keystore.trust_key(info.public_key, key_file.name if key_file is not None else info.name)
    typer.echo(f"{info.fingerprint}")
    typer.echo(f"private key: {info.private_path}", err=True)
    typer.echo(f"public key:  {info.public_path}", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List your signing keys with their fingerprints."""
    found = keystore.list_keys()
    if not found:
        typer.echo(f"no keys in {keystore.keys_dir()} (run 'provenance keys generate')", err=True)
    for info in found:
        flag = "encrypted" if info.encrypted else "unencrypted"
        typer.echo(f"{info.name}\t{info.fingerprint}\t{flag}\t{info.private_path}")


@keys_app.command("show")
def keys_show(
    key: Annotated[str, typer.Argument(help="Key name or private key path.")] = "default",
) -> None:
    """Show one key: fingerprint, public key, files."""
    info = keystore.find_key(key)
    typer.echo(f"name:        {info.name}")
    typer.echo(f"fingerprint: {info.fingerprint}")
    typer.echo(f"public key:  {info.public_key_openssh}")
    typer.echo(f"private key: {info.private_path} "
               f"({'encrypted' if info.encrypted else 'unencrypted'})")


@keys_app.command("export")
def keys_export(
    key: Annotated[str, typer.Argument(help="Key name or private key path.")] = "default",
    fmt: Annotated[str, typer.Option(
        "--format", help="ssh | pem | raw | allowed-signers")] = "ssh",
    principal: Annotated[str | None, typer.Option(
        help="Principal for allowed-signers (default: the key name).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", dir_okay=False, help="Write here instead of stdout.")] = None,
) -> None:
    """Export the public key (never the private key)."""
    info = keystore.find_key(key)
    exported = keystore.export_key(info, fmt, principal=principal)
    data = exported if isinstance(exported, bytes) else (exported + "\n").encode()
    if output is not None:
        output.write_bytes(data)
    elif fmt == "raw" and sys.stdout.isatty():
        raise UsageError("raw key bytes are binary; use --output FILE")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@keys_app.command("trust")
def keys_trust(
    public_key: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="A .pub file (ssh-ed25519 line) to trust.")],
    principal: Annotated[str, typer.Option(help="Who this key belongs to.")],
) -> None:
    """Add a signer's public key to your trusted keys (allowed_signers)."""
    try:
        text = public_key.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{public_key}: not a public key file (binary data)") from None
    if "PRIVATE KEY" in text:
        raise UsageError(f"{public_key} is a private key; give its .pub file")
    try:
        pub = signing.public_key_from_openssh(text)
    except ProvenanceError as error:
        raise UsageError(f"{public_key}: {error}") from None
    line = keystore.trust_key(pub, principal)
    typer.echo(line)


@app.callback(invoke_without_command=True)
def _root(
    show_version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if show_version:
        typer.echo(f"provenance {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console-script entry point: one line and an exit code for every known failure.

    Click (inside typer) handles usage errors itself (exit 2); our own errors carry their
    exit code; an unexpected exception is reported in one line unless PROVENANCE_DEBUG is set.
    """
    try:
        app()
    except ProvenanceError as error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(error.diagnostics())}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; nothing half-written was kept")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as error:
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/] {escape(str(error.strerror or error))}"
            + (f": {escape(str(error.filename))}" if error.filename else ""))
        sys.exit(EXIT_OPERATIONAL)
    except Exception as error:
        if os.environ.get("PROVENANCE_DEBUG"):
            raise
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/] internal error ({type(error).__name__}: {escape(str(error))});"
            " set PROVENANCE_DEBUG=1 for a traceback and please report it")
        sys.exit(EXIT_OPERATIONAL)


__all__ = ["app", "main"]
