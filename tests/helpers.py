"""Test helpers: a throwaway signer, running the real CLI, reading records back."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

from provenance import signing
from provenance.capture.pipeline import SigningIdentity
from provenance.models import WarcLocation

BIN = Path(sys.executable).parent


def make_signer() -> tuple[SigningIdentity, signing.PrivateKey]:
    key = signing.generate_private_key()
    return SigningIdentity.from_key(key), key


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m provenance`` exactly as a user would (no TTY)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "provenance", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)


def tool(name: str) -> str:
    """A console script installed next to this interpreter (warcio, ...)."""
    return str(BIN / name)


def read_record(bundle: Path, location: WarcLocation) -> tuple[bytes, bytes]:
    """Return (WARC headers, block) of the record a manifest location points at."""
    with (bundle / location.file).open("rb") as stream:
        stream.seek(location.offset)
        member = stream.read(location.length)
    data = gzip.GzipFile(fileobj=io.BytesIO(member)).read()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head, rest[:length]
