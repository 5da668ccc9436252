"""The RFC 3161 time-stamps a bundle holds, as a citation names them: TSA and genTime.

Each ``provenance/timestamp-<n>.tsr`` is read with :func:`provenance.timestamps.verify_timestamp`
and no trusted roots: that parses the token and checks that its imprint covers this bundle's
signature (and answers the stored request), without judging the TSA's certificate chain, which
is ``provenance verify --tsa-root``'s job. A token that fails those checks is not cited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provenance.storage import SIGNATURE_PATH
from provenance.timestamps import list_tokens, verify_timestamp

#: a detached signature is a few hundred bytes; anything far larger is not ours to hash
_MAX_SIGNATURE_BYTES = 1 << 20
_MAX_TOKEN_BYTES = 1 << 20


@dataclass(frozen=True)
class TimeStamp:
    tsa: str | None
    gen_time: datetime


def _read(path: Path, limit: int) -> bytes | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def bundle_timestamps(bundle: Path) -> tuple[TimeStamp, ...]:
    """The sound time-stamps over the bundle's signature, earliest first."""
    signature = _read(bundle / SIGNATURE_PATH, _MAX_SIGNATURE_BYTES)
    if signature is None:
        return ()
    found: list[TimeStamp] = []
    for response_path, request_path in list_tokens(bundle):
        response = _read(response_path, _MAX_TOKEN_BYTES)
        if response is None:
            continue
        request = _read(request_path, _MAX_TOKEN_BYTES) if request_path else None
        check = verify_timestamp(request, response, signature, ())
        if check.status != "FAIL" and check.gen_time is not None:
            found.append(TimeStamp(tsa=check.tsa_name, gen_time=check.gen_time))
    return tuple(sorted(found, key=lambda stamp: stamp.gen_time))
