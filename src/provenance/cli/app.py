"""The typer application, exit codes, and options and helpers shared by every command.

Exit codes (README, "Exit codes"): 0 success; 1 verification failed (or a quote not found);
2 usage error; 3 operational error (network, disk, keys, or a capture that failed or, with
--strict, is PARTIAL); 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from provenance.errors import SigningKeyError

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


def configured_tsa_urls(given: list[str] | None) -> tuple[str, ...]:
    """``--tsa`` values, else the configured defaults."""
    from provenance.config import load_config

    return tuple(given) if given else load_config().tsa


def fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def parse_size(text: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = value[-1:] if value[-1:] in units else ""
    number = value[: len(value) - len(unit)] if unit else value
    try:
        size = int(float(number) * units[unit])
    except (ValueError, OverflowError):  # "lots", or "inf" (int() of infinity overflows)
        raise typer.BadParameter(f"not a size: {text!r} (try 100M, 2G or 5000000)") from None
    if size <= 0:
        raise typer.BadParameter("must be positive")
    return size


def prompt_passphrase(purpose: str, *, confirm: bool = False) -> bytes | None:
    from provenance import keys as keystore

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
