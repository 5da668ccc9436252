r"""RFC 8785 (JCS) bytes, by the C ``json`` encoder whenever that is provably the same output.

``rfc8785`` is the reference (``verify`` checks every manifest with it), but it is pure Python:
2.1 ms for the manifest of a 50-source capture, against 0.3 ms for ``json.dumps``, on the
capture's critical path. For JSON-mode data (``str`` keys; ``str``, ``int``, ``bool``, ``None``,
lists and dicts, as pydantic's ``model_dump(mode="json")`` gives) the two agree byte for byte
when:

- every number is an integer of magnitude below 2^53: such integers are exact doubles and
  print as their digits (section 3.2.2.3). rfc8785 refuses larger ones and prints floats the
  ECMAScript way (``1.0`` is ``1``); the scan below hands any float, and any integer of 16
  digits or more, to it;
- no string holds a lone surrogate: RFC 8785 needs valid Unicode (section 3.2.2.2) and
  rfc8785 raises, while ``json`` would print it (the UTF-8 encoding below refuses it);
- member names sort the same by code point (``sort_keys``) as by UTF-16 code unit (section
  3.2.3). The orders differ only between a character above U+FFFF and one in U+E000..U+FFFF
  at the same position, so text holding both kinds goes to rfc8785.

String escapes are already the same set in both (section 3.2.2.2, ECMAScript
``JSON.stringify``): ``\"``, ``\\``, ``\b \f \n \r \t``, ``\u00xx`` in lowercase for the
other controls, every other character as itself. The checks read the output text, where a
match inside a string is harmless: it only sends the value the slow way. Scanning for numbers
costs about as much as the encoding itself, so a caller whose data is known to hold only
exact integers (a validated manifest: models.py bounds every integer field and has no float)
says so and skips it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

# A number token sits between a start ("^", ":", ",", "[") and an end (",", "]", "}", "$"):
# compact separators leave no whitespace. A fraction or an exponent means a float; 16 digits
# may exceed 2^53 - 1 (9007199254740991). Digits inside strings rarely fit both ends (a
# digest is followed by a quote), and when they do the value only goes the slow way.
_NOT_PLAIN_NUMBER = re.compile(
    r"(?:^|[:,\[])-?(?:\d{16,}|\d+\.\d+|\d+(?:\.\d+)?[eE][+-]?\d+)(?=[,\]}]|$)")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_HIGH_BMP = re.compile("[\ue000-\uffff]")


def _fast(value: Any, *, exact_integers: bool = False) -> bytes | None:
    """The JCS bytes of ``value`` from the C encoder, or None when it cannot be trusted."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
    except (TypeError, ValueError):
        return None
    if not exact_integers and _NOT_PLAIN_NUMBER.search(text):
        return None
    if not text.isascii() and _ASTRAL.search(text) and _HIGH_BMP.search(text):
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None


def canonical_json(value: Any, *, exact_integers: bool = False) -> bytes:
    """RFC 8785 serialisation of JSON-mode data; raises ``rfc8785.CanonicalizationError``.

    ``value`` must be JSON-mode data: every object key a ``str``. ``json`` would turn an
    ``int`` key into a string where rfc8785 refuses it, and finding one would take a walk
    over the whole value, the cost this module exists to avoid.

    ``exact_integers``: the caller guarantees that every number in ``value`` is an integer of
    magnitude below 2^53 (no float at all), so the output need not be scanned for others.
    """
    fast = _fast(value, exact_integers=exact_integers)
    return fast if fast is not None else bytes(rfc8785.dumps(value))
