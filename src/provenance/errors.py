"""The error tree: every failure the library raises is a ``ProvenanceError``.

The CLI maps each class to one documented exit code and prints ``str(error)`` plus the
remedy from ``diagnostics()`` on one line; nothing below this root needs a traceback.
"""

from __future__ import annotations

from pathlib import Path


class ProvenanceError(Exception):
    """Root of every error provenance raises on purpose."""

    #: process exit code the CLI uses for this class (README, "Exit codes")
    exit_code: int = 3
    remedy: str = ""

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        if remedy is not None:
            self.remedy = remedy

    def diagnostics(self) -> str:
        """One line for people: what went wrong and, when known, what to do."""
        message = str(self)
        return f"{message} ({self.remedy})" if self.remedy else message


class UsageError(ProvenanceError):
    """The request itself is wrong: a bad URL, an unsupported scheme, a bad option."""

    exit_code = 2


class OperationalError(ProvenanceError):
    """The environment failed us: network, disk, permissions."""

    exit_code = 3


class CaptureFailedError(OperationalError):
    """The article itself could not be captured (the bundle still records why)."""


class SigningKeyError(OperationalError):
    """A signing key is missing, unreadable, badly protected or of the wrong type."""


class VerificationError(ProvenanceError):
    """A bundle failed verification."""

    exit_code = 1


class BundleFormatError(OperationalError):
    """A path is not a bundle, or a bundle file cannot be read as what it claims to be."""


class SignatureFormatError(BundleFormatError):
    """A detached signature is not a well-formed armored SSHSIG (PROTOCOL.sshsig)."""


class SignatureInvalidError(VerificationError):
    """A well-formed signature does not verify: wrong key, altered message or namespace."""


class KeyExistsError(UsageError):
    """Generating a key would overwrite an existing key file; overwriting must be explicit."""


class TimestampError(OperationalError):
    """Talking to an RFC 3161 time-stamping authority failed, or its answer was unusable."""


#: What a Ctrl-C that stopped a command says, wherever it is caught.
INTERRUPTED_MESSAGE = "interrupted; nothing half-written was kept"


class UserInterruptError(ProvenanceError):
    """Ctrl-C (SIGINT) stopped the work; what was half-written has been discarded."""

    exit_code = 130  # 128 + SIGINT, as shells report a process killed by it


class InterruptedAfterCommitError(UserInterruptError):
    """Ctrl-C came once the bundle was committed, while its catalog row was written.

    The bundle is whole and stays; the catalog indexes it when it is next opened.
    """

    def __init__(self, bundle: Path) -> None:
        super().__init__(f"interrupted after the capture was committed: {bundle} is whole and "
                         "kept (the catalog lists it once it is next opened)")
        self.bundle = bundle
