"""PDF to text and document information, with pypdf (the only pypdf importer).

pypdf is pure Python and bounds what it inflates per stream (its ``Configuration`` limits,
75 MB by default); on top of that we read at most ``MAX_PAGES`` pages and stop once the text
passes ``MAX_TEXT_CHARS``, so a hostile PDF costs bounded time and memory.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from provenance.errors import UsageError

MAX_PAGES = 2000
MAX_TEXT_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class PdfText:
    """What a citation needs from a PDF: its text and its document information."""

    text: str
    title: str | None
    author: str | None


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if isinstance(value, str) else ""
    return text or None


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Keep pypdf's complaints about a file (logged or warned) away from the user's terminal.

    They describe the PDF, not a failure of ours; the library never prints (DESIGN.md 3).
    """
    logger = logging.getLogger("pypdf")
    level = logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            logger.setLevel(level)


def pdf_text(data: bytes, url: str) -> PdfText:
    """Extract the text of every page (pages separated by a blank line) and the title/author.

    An encrypted PDF is opened with the empty user password, which is how readers open
    "protected" PDFs that only restrict printing or copying; anything else is a
    :class:`~provenance.errors.UsageError` naming ``url``.
    """
    with _quiet_pypdf():
        return _read(data, url)


def _read(data: bytes, url: str) -> PdfText:
    # Imported here, not with the module: every CLI command imports provenance.cite, and
    # pypdf costs each of them 40 to 60 ms of start-up that only PDF quotes need.
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UsageError(f"the PDF at {url} is encrypted; its text cannot be read")
        pages: list[str] = []
        size = 0
        for number, page in enumerate(reader.pages):
            if number >= MAX_PAGES or size > MAX_TEXT_CHARS:
                break
            text = page.extract_text() or ""
            pages.append(text)
            size += len(text)
        info = reader.metadata
        title = _clean(info.title) if info is not None else None
        author = _clean(info.author) if info is not None else None
    except FileNotDecryptedError:
        raise UsageError(f"the PDF at {url} is encrypted; its text cannot be read") from None
    except UsageError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, NotImplementedError) as error:
        # pypdf raises a variety of errors on malformed files; each means "not readable".
        raise UsageError(f"the PDF at {url} cannot be read: {error or type(error).__name__}",
                         ) from None
    return PdfText(text="\n\n".join(pages), title=title, author=author)
