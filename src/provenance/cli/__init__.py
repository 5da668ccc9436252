"""The command line: parse, call the library, render, map errors to exit codes.

The typer app lives in ``app.py``; each module here registers one group of commands on it.
The library underneath never prints; only these modules talk to the terminal.

Every command is registered on every run (typer builds them all), so these modules import at
their top only what the command signatures need; each command imports the library it calls
inside its function. ``provenance --help``, ``verify`` or ``keys`` thus never load the capture
pipeline (tests/test_startup.py). The errors stay imported here: ``main`` catches them.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from provenance import __version__
from provenance.cli import capture as _capture  # noqa: F401  (registers commands)
from provenance.cli import catalog as _catalog  # noqa: F401
from provenance.cli import cite as _cite  # noqa: F401
from provenance.cli import keys as _keys  # noqa: F401
from provenance.cli import verify as _verify  # noqa: F401
from provenance.cli.app import EXIT_INTERRUPTED, EXIT_OPERATIONAL, app
from provenance.errors import INTERRUPTED_MESSAGE, ProvenanceError


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
        # standalone_mode=False: Click hands Ctrl-C (as Abort) and usage errors back to us
        # instead of printing "Aborted!" and exiting 1, the code reserved for failed checks.
        code = app(standalone_mode=False)
        if code == EXIT_INTERRUPTED:
            # Typer turns a Ctrl-C that escapes a command into exit 130 and says nothing;
            # the commands report their own interruptions as UserInterruptError instead.
            Console(stderr=True, highlight=False).print(
                INTERRUPTED_MESSAGE)
    except typer.Abort:
        Console(stderr=True, highlight=False).print(
            INTERRUPTED_MESSAGE)
        sys.exit(EXIT_INTERRUPTED)
    except TyperException as error:  # usage errors (exit 2), or a bare command (its help)
        context = getattr(error, "ctx", None)
        show = getattr(error, "show", None)
        if type(error).__name__ == "NoArgsIsHelpError" and callable(show):
            show()
        else:
            where = f" (see '{context.command_path} --help')" if context is not None else ""
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"[bold red]error:[/] {escape(error.format_message())}{escape(where)}")
        sys.exit(error.exit_code)
    except ProvenanceError as error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(error.diagnostics())}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        Console(stderr=True).print(INTERRUPTED_MESSAGE)
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
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
