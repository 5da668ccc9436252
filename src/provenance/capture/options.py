"""What a capture is asked to do: the settings a user chooses, with documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provenance import __version__
from provenance.errors import UsageError

MAX_TIMEOUT_SECONDS = 10**6  # eleven days: longer is a mistake, not a patient capture
DEFAULT_USER_AGENT = (
    f"provenance/{__version__} (web evidence capture)"
)


@dataclass(frozen=True)
class CaptureSettings:
    links: Literal["body", "none"] = "body"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requisites: bool = True
    concurrency: int = 64
    per_host: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_redirects: int = 10
    max_bytes: int = 100 * 1024 * 1024
    max_links: int = 200
    max_decoded_bytes: int = 32 * 1024 * 1024
    allow_private: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    ca_bundle: Path | None = None
    #: ``--header`` fields, sent only to the article's host (credentials must not leak to
    #: the third-party sites an article links to)
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: Netscape cookies.txt whose cookies are sent by their own domain rules (RFC 6265)
    cookie_file: Path | None = None
    #: keep credential values in the records (default: redacted when authenticated)
    keep_secrets: bool = False

    @property
    def authenticated(self) -> bool:
        return bool(self.extra_headers) or self.cookie_file is not None

    def __post_init__(self) -> None:
        # Imported here, not with the module: every CLI command imports this one for the
        # defaults its --help shows, and only a capture needs the models, ssl and the cookie
        # reader.
        import ssl

        from provenance.capture.secrets import check_header_field, load_cookie_file
        from provenance.models import MAX_EXACT_INTEGER

        # RFC 9110 section 5.5: field values are visible ASCII (obs-text is obsolete), with no
        # space at either end, and the recorder sends exactly these bytes.
        agent = self.user_agent
        if not (agent.isascii() and agent.isprintable() and agent == agent.strip()):
            raise UsageError("the User-Agent must be printable ASCII, without spaces at either "
                             "end (RFC 9110 section 5.5)")
        for field_name, field_value in self.extra_headers:  # --header, or a library caller's
            check_header_field(field_name, field_value)
        for name, value in (("concurrency", self.concurrency), ("per-host", self.per_host)):
            if value < 1:
                raise UsageError(f"--{name} must be at least 1")
        timeouts = (self.connect_timeout, self.read_timeout, self.total_timeout)
        # "inf" and "nan" parse as floats; the manifest records whole milliseconds.
        if not all(0 < value <= MAX_TIMEOUT_SECONDS for value in timeouts):
            raise UsageError(f"timeouts must be positive and at most {MAX_TIMEOUT_SECONDS:,} s")
        if self.ca_bundle is not None:
            try:
                ssl.create_default_context().load_verify_locations(cafile=str(self.ca_bundle))
            except (OSError, ValueError) as error:
                raise UsageError(f"--ca-bundle {self.ca_bundle}: not a readable PEM "
                                 f"certificate file ({error})") from None
        if self.cookie_file is not None:
            load_cookie_file(self.cookie_file)  # a bad file is a usage error before any fetch
        counts = (self.concurrency, self.per_host, self.max_bytes, self.max_redirects,
                  self.max_links, self.max_decoded_bytes)
        if max(counts) > MAX_EXACT_INTEGER:
            # The manifest keeps numbers a JSON reader holds exactly (RFC 8785 3.2.2.3).
            raise UsageError(f"limits must be at most {MAX_EXACT_INTEGER:,}")
        if self.max_bytes < 1 or self.max_redirects < 0 or self.max_links < 0:
            raise UsageError("--max-bytes must be positive; --max-redirects and --max-links "
                             "must not be negative")
