"""Credentials for authenticated captures, and keeping them out of the archive.

With ``--header`` or ``--cookie-file`` a capture logs in as the user. A bundle is made to be
handed to others, so the credentials it was made with must not travel in it: request records
keep ``Cookie``/``Authorization`` header names but not their values, and response records drop
``Set-Cookie`` values (a fresh session cookie is as good as a password). Each redacted record
says so in a ``Provenance-Redacted`` header, and the manifest lists the redactions per resource.
``--keep-secrets`` opts out, for an archive that never leaves the user's hands.

Redaction rewrites only the header values; everything else keeps its bytes. The record's block
digest is over the bytes stored, so a redacted record still verifies, and it cannot be mistaken
for what crossed the wire because it says it was redacted.
"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from provenance.errors import UsageError

#: Request headers that carry credentials (RFC 9110 section 11.6.2, 11.7.2; RFC 6265 5.4).
SECRET_REQUEST_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: Response headers that hand out credentials (RFC 6265 section 4.1; 2965's Set-Cookie2).
SECRET_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
#: What a redacted value is replaced with (visible ASCII, a valid field value).
REDACTED = b"[redacted]"
#: The WARC header naming the fields redacted in a record. Not a WARC-* name: WARC 1.1 section
#: 5 reserves those for the standard; other named fields are allowed (section 4).
REDACTION_HEADER = "Provenance-Redacted"

#: ``--header`` fields that negotiate content rather than identify the user: kept in records.
#: Every other ``--header`` value is treated as a credential and redacted.
PUBLIC_REQUEST_HEADERS = frozenset({"accept", "accept-language", "user-agent", "referer",
                                    "dnt", "save-data", "cache-control", "pragma"})

_LINE_ENDING = re.compile(rb"(\r?\n)")
#: A field name: a token (RFC 9110 sections 5.1 and 5.6.2); use with ``fullmatch``.
FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: A field value we send (RFC 9110 section 5.5): visible characters, spaces and tabs only
#: between them. Only ASCII (obs-text is obsolete), and never CR, LF or NUL, which would split
#: the request. Use with ``fullmatch``; the recorder and ``--header`` hold to the same rule.
FIELD_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")


def parse_header_option(text: str) -> tuple[str, str]:
    """``"Name: value"`` from ``--header`` as a (name, value) pair, or a UsageError."""
    name, separator, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not separator or not FIELD_NAME.fullmatch(name):
        raise UsageError(f"--header {text!r}: expected 'Name: value'")
    return name, value  # the field itself is checked by CaptureSettings (check_header_field)


def check_header_field(name: str, value: str) -> None:
    """Refuse (UsageError) a ``--header`` field the recorder cannot or will not send."""
    if not FIELD_NAME.fullmatch(name):
        raise UsageError(f"--header {name!r}: not a valid field name")
    if not FIELD_VALUE.fullmatch(value):
        # which of the two ways it fails: characters outside visible ASCII (CR, LF or NUL
        # would inject headers), or a space or tab at either end (not part of the value)
        if not all(32 <= ord(ch) < 127 or ch == "\t" for ch in value):
            raise UsageError(f"--header {name}: the value must be printable ASCII")
        raise UsageError(f"--header {name}: the value must not start or end with a space")
    if name.lower() in ("host", "connection", "content-length", "transfer-encoding"):
        raise UsageError(f"--header {name}: set by the recorder itself; cannot be overridden")


def load_cookie_file(path: Path) -> http.cookiejar.MozillaCookieJar:
    """Read a Netscape ``cookies.txt`` (as browser exports, curl and wget write it)."""
    jar = http.cookiejar.MozillaCookieJar(str(path))
    try:
        # curl and browser exports write 0 as the expiry of a session cookie, which the
        # stdlib would read as "expired in 1970": load everything, then drop what has expired.
        jar.load(ignore_discard=True, ignore_expires=True)
    except (http.cookiejar.LoadError, UnicodeDecodeError) as error:
        raise UsageError(f"--cookie-file {path}: not a Netscape cookies.txt file ({error})") \
            from None
    except OSError as error:
        raise UsageError(f"--cookie-file {path}: {error.strerror}") from None
    now = time.time()
    for cookie in list(jar):
        if cookie.expires == 0:
            cookie.expires = None
            cookie.discard = True
        elif cookie.expires is not None and cookie.expires < now:
            jar.clear(cookie.domain, cookie.path, cookie.name)
    return jar


def cookie_header(jar: http.cookiejar.CookieJar, url: str) -> str | None:
    """The ``Cookie`` value the jar's domain/path/secure rules (RFC 6265 5.4) give ``url``."""
    # Never opened: the Request object is only what CookieJar's matching API takes.
    request = urllib.request.Request(url)  # noqa: S310
    jar.add_cookie_header(request)
    return request.get_header("Cookie")


def redact_head(head: bytes, secret_names: frozenset[str]) -> tuple[bytes, tuple[str, ...]]:
    """Replace the values of ``secret_names`` fields in an HTTP message head.

    Returns the new head and the names redacted, in order, as spelled in the message. Lines
    are split on CRLF as HTTP/1.1 frames them (RFC 9112 section 2.1); an obsolete folded
    continuation line (section 5.2) of a redacted field is redacted with it.
    """
    if not secret_names:
        return head, ()
    # Keep each line's own ending: servers send bare LF too (RFC 9112 section 2.2 lets a
    # recipient accept it), and everything but the secret values must keep its bytes.
    pieces = _LINE_ENDING.split(head)
    lines, endings = pieces[0::2], [*pieces[1::2], b""]
    redacted: list[str] = []
    out = [lines[0] + endings[0]]
    in_secret = False
    for line, ending in zip(lines[1:], endings[1:], strict=True):
        if line[:1] in (b" ", b"\t") and in_secret:
            continue  # the folded remainder of a secret value
        name, colon, _value = line.partition(b":")
        in_secret = bool(colon) and name.strip().lower().decode("latin-1") in secret_names
        if in_secret:
            redacted.append(name.strip().decode("latin-1"))
            out.append(name + b": " + REDACTED + ending)
        else:
            out.append(line + ending)
    if not redacted:
        return head, ()
    return b"".join(out), tuple(redacted)


def request_secrets(extra_headers: Sequence[tuple[str, str]]) -> frozenset[str]:
    """Header names to redact from request records when these ``--header`` fields are sent."""
    given = {name.lower() for name, _ in extra_headers}
    return SECRET_REQUEST_HEADERS | (given - PUBLIC_REQUEST_HEADERS)


def redaction_fields(names: Sequence[str]) -> list[tuple[str, str]]:
    """The WARC header that tells a reader which fields of a record were redacted."""
    return [(REDACTION_HEADER, ", ".join(dict.fromkeys(names)))] if names else []
