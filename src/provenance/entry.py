"""The console script's entry point: a Ctrl-C while the CLI is still loading gets one line too.

Loading the CLI (typer, rich, every command's signature) takes ~0.2 s; ``cli.main`` turns a
Ctrl-C into one line and exit 130 only once it runs, so the import happens in here, under the
same promise (README, "Exit codes").
"""

from __future__ import annotations

import sys

from provenance.errors import INTERRUPTED_MESSAGE, UserInterruptError


def main() -> None:
    try:
        from provenance.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write(f"{INTERRUPTED_MESSAGE}\n")
        sys.exit(UserInterruptError.exit_code)
    cli_main()
