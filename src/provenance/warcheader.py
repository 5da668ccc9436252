"""The named fields of a WARC record header, parsed one way for every reader of a bundle.

``verify`` (through :mod:`provenance.warcscan`) and the readers behind ``show``, ``cite``,
``diff`` and ``history`` (:func:`provenance.snapshot.read_record`) both parse record headers.
If they disagreed on what a header says, a record could pass verification under one reading
(its digests, its Content-Length, its id) and be cited under another, so both call
:func:`parse_header`.

Repeated fields (WARC 1.1 section 5.1): "WARC named fields of the same type shall not be
repeated in the same WARC record ..., except as noted (e.g., WARC-Concurrent-To)", which
section 5.7 allows to repeat. So every value of a field is kept, in order (``get_all``), and
where one value is wanted the *first* one counts (``header[name]``), as warcio's
``get_header`` has it, so that stock tools read our bundles as we do. A repeated field that
section 5 defines and does not allow to repeat is listed in ``repeated``, which the verifier
reports as a record problem: two Content-Length or WARC-Block-Digest fields make a record
mean different things to different readers. A repeated field of an extension is not listed:
section 5.1 has readers ignore fields they do not recognise, and an extension may define a
field that repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

WARC_MAGIC = b"WARC/"

#: The fields WARC 1.1 section 5 defines (lowercased), with their spelling there.
DEFINED_FIELDS = {name.lower(): name for name in (
    "WARC-Record-ID", "Content-Length", "WARC-Date", "WARC-Type", "Content-Type",
    "WARC-Concurrent-To", "WARC-Block-Digest", "WARC-Payload-Digest", "WARC-IP-Address",
    "WARC-Refers-To", "WARC-Refers-To-Target-URI", "WARC-Refers-To-Date", "WARC-Target-URI",
    "WARC-Truncated", "WARC-Warcinfo-ID", "WARC-Filename", "WARC-Profile",
    "WARC-Identified-Payload-Type", "WARC-Segment-Number", "WARC-Segment-Origin-ID",
    "WARC-Segment-Total-Length",
)}
#: Section 5.7: "it is allowed to repeat several WARC-Concurrent-To fields".
REPEATABLE_FIELDS = frozenset({"warc-concurrent-to"})

# WARC 1.1 section 5.3: Content-Length is 1*DIGIT. int() alone would also take "-5", "+5",
# "1_0" and non-ASCII digits, and a negative length would cut the block short.
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")


class WarcHeader(Mapping[str, str]):
    """A record header's named fields: ``header[name]`` is the first value of ``name``.

    Names are case-insensitive (WARC 1.1 section 4) and are looked up in lower case.
    """

    __slots__ = ("_repeats", "_values", "version")

    def __init__(self, version: str, values: dict[str, list[str]], repeats: bool) -> None:
        self.version = version
        self._values = values
        self._repeats = repeats  # whether any field occurs more than once

    def __getitem__(self, name: str) -> str:
        return self._values[name][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of ``name``, in header order (several only for WARC-Concurrent-To)."""
        return tuple(self._values.get(name, ()))

    @property
    def repeated(self) -> tuple[str, ...]:
        """Fields section 5 defines that occur more than once but may not (spelt as there)."""
        if not self._repeats:
            return ()
        return tuple(DEFINED_FIELDS[name] for name, values in self._values.items()
                     if len(values) > 1 and name in DEFINED_FIELDS
                     and name not in REPEATABLE_FIELDS)

    @property
    def content_length(self) -> int | None:
        """The block length, or None when the field is missing or not 1*DIGIT."""
        value = self.get("content-length", "")
        return int(value) if _CONTENT_LENGTH.fullmatch(value) else None


def parse_header(head: bytes | bytearray) -> WarcHeader | None:
    """Parse a record header (version line and named fields, with or without the blank line).

    None when ``head`` does not start with a ``WARC/`` version line. Values may be UTF-8
    (WARC 1.1 section 4); bytes that are not become U+FFFD rather than failing the record.
    """
    if not head.startswith(WARC_MAGIC):
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    values: dict[str, list[str]] = {}
    repeats = False
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            found = values.get(key)
            if found is None:
                values[key] = [value.strip()]
            else:
                found.append(value.strip())
                repeats = True
    return WarcHeader(lines[0], values, repeats)
