"""``provenance cite``: print a ready-to-paste citation of a capture, optionally with a quote."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from provenance.cite import CitationFormat
from provenance.cli.app import ArchiveDirOption, app
from provenance.storage import archive_dir

#: styles whose snapshot link readers follow, so a local path there deserves a warning
_LINKING_STYLES = frozenset({CitationFormat.WIKIPEDIA, CitationFormat.ROBUST_HTML})


@app.command("cite")
def cite_command(
    capture: Annotated[str, typer.Argument(
        metavar="ID", help="Capture id, unique id prefix, or bundle directory.")],
    style: Annotated[CitationFormat, typer.Option(
        "--format", "-f", help="Citation style.", case_sensitive=False)] = CitationFormat.TEXT,
    source: Annotated[str | None, typer.Option(
        "--source", metavar="URL",
        help="Cite this linked source of the capture (its URL as linked, or its final URL).",
    )] = None,
    quote: Annotated[str | None, typer.Option(
        "--quote", metavar="TEXT",
        help="Check that this passage is in the archived text (exit 1 if not) and cite it "
             "with a link to it.")] = None,
    archive_url: Annotated[str | None, typer.Option(
        "--archive-url", metavar="BASE",
        help="Where the archive is published: the snapshot is cited as BASE/<capture id>.",
    )] = None,
    dead: Annotated[bool, typer.Option(
        "--dead", help="The original URL is gone (Wikipedia url-status=dead).")] = False,
    archive_dir_option: ArchiveDirOption = None,
) -> None:
    """Print a citation of a signed capture: text, Markdown, BibTeX, BibLaTeX, CSL-JSON, ..."""
    from provenance.catalog import resolve_capture
    from provenance.cite import CiteOptions, build_context, render
    from provenance.snapshot import open_snapshot

    bundle = resolve_capture(archive_dir(archive_dir_option), capture)
    context = build_context(open_snapshot(bundle), CiteOptions(
        source=source, quote=quote, archive_url=archive_url, dead=dead))
    typer.echo(render(context, style))
    notes = Console(stderr=True, highlight=False, soft_wrap=True)
    if context.quote is not None:
        notes.print(f"[green]quote verified[/] in the archived text of {escape(context.url)}")
    if style in _LINKING_STYLES and not context.location_is_public:
        notes.print("note: the snapshot is cited by its local path; pass --archive-url BASE "
                    "to cite a public copy")
