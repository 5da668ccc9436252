"""The RFC 3161 time-stamps a bundle holds, as a citation names them: TSA and genTime.

Tokens are read with :func:`provenance.timestamps.read_stored_tokens`, with no trusted roots:
that parses each token and checks that its imprint covers this bundle's signature (and answers
the stored request), without judging the TSA's certificate chain, which is ``provenance verify
--tsa-root``'s job. A token that fails those checks is not cited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provenance.timestamps import read_stored_tokens


@dataclass(frozen=True)
class TimeStamp:
    tsa: str | None
    gen_time: datetime


def bundle_timestamps(bundle: Path) -> tuple[TimeStamp, ...]:
    """The sound time-stamps over the bundle's signature, earliest first."""
    found = [TimeStamp(tsa=check.tsa_name, gen_time=check.gen_time)
             for _tsr, check in read_stored_tokens(bundle)
             if check is not None and check.status != "FAIL" and check.gen_time is not None]
    return tuple(sorted(found, key=lambda stamp: stamp.gen_time))
