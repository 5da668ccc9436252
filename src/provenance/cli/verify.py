"""``provenance verify`` and ``provenance timestamp``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provenance.cli.app import (
    EXIT_OK,
    EXIT_OPERATIONAL,
    EXIT_VERIFY_FAILED,
    TsaOption,
    app,
    configured_tsa_urls,
)
from provenance.cli.capture import report_stamps
from provenance.errors import UsageError
from provenance.storage import SIGNATURE_PATH


@app.command("timestamp")
def timestamp_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to stamp.")],
    tsa: TsaOption = None,
    ca_bundle: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Extra trusted roots for an HTTPS TSA.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 3 if any TSA fails.")] = False,
) -> None:
    """Add RFC 3161 tokens over a bundle's signature (e.g. one captured offline)."""
    from provenance.capture.options import DEFAULT_USER_AGENT
    from provenance.timestamps import stamp_bundle

    urls = configured_tsa_urls(tsa)
    if not urls:
        raise UsageError("no TSA given", remedy="pass --tsa URL or set 'tsa' in config.toml")
    if not (bundle / SIGNATURE_PATH).is_file():
        raise UsageError(f"{bundle}: not a signed provenance bundle (no {SIGNATURE_PATH})")
    stamps = stamp_bundle(bundle, urls, user_agent=DEFAULT_USER_AGENT, ca_bundle=ca_bundle)
    report_stamps(stamps, quiet=False)
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
    from provenance.config import load_config
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
