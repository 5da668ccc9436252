"""The C-encoder path of ``provenance.jcs`` against the reference RFC 8785 implementation.

Whatever ``canonical_json`` returns must be exactly what ``rfc8785`` returns (or it must raise
where rfc8785 raises), and the fast path must really be taken for manifests, or the speed-up
silently does nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from provenance.jcs import _fast, canonical_json
from provenance.schema import committed
from servers import html, serve

_EXAMPLES = int(os.environ.get("PROVENANCE_FUZZ_EXAMPLES", "") or 400)

# Every Unicode category, lone surrogates (Cs) included; plus the characters that decide
# the key order question (astral vs U+E000..U+FFFF) and every escape JSON knows.
ANY_CHARACTER = st.characters(codec=None, categories=None)
SPECIAL = st.sampled_from(["\U0001f600", "\ue000", "\uffff", "\ufffd", "\ud800", "\udfff",
                           "\x00", "\x1f", "\x7f", "\u2028", "\u2029", '"', "\\", "\b", "\f",
                           "\n", "\r", "\t", "/", "é", "𝄞"])
TEXT = st.lists(st.one_of(ANY_CHARACTER, SPECIAL), max_size=8).map("".join)
NUMBERS = st.one_of(
    st.integers(-(2**60), 2**60),
    st.sampled_from([0, -1, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 10**15 - 1, 10**15,
                     10**16]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0, -0.0, 0.5, 1e21, 1e-7, 123456789.125]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(TEXT, children, max_size=5)),
    max_leaves=25)


def _assert_same_as_rfc8785(value: Any, *, exact_integers: bool = False) -> None:
    """``canonical_json`` gives rfc8785's bytes, or raises what rfc8785 raises."""
    try:
        expected = bytes(rfc8785.dumps(value))
    except ValueError as error:  # CanonicalizationError, or UnicodeEncodeError for a key
        with pytest.raises(type(error)):
            canonical_json(value, exact_integers=exact_integers)
        return
    assert canonical_json(value, exact_integers=exact_integers) == expected


BUDGET = settings(max_examples=_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])


@BUDGET
@given(VALUES)
def test_same_bytes_as_rfc8785(value: Any) -> None:
    _assert_same_as_rfc8785(value)


@pytest.mark.parametrize("value", [
    {"\U0001f600": 1, "\ue000": 2},  # UTF-16 order puts the astral key (D83D...) first
    {"a": 1.0},  # JCS prints 1
    {"n": 2**53},  # beyond the exact doubles: rfc8785 refuses it
    {"n": 9007199254740991},  # 16 digits, exact: still handed to rfc8785
    {"s": "lone \ud800 surrogate"},
    float("nan"),
])
def test_values_the_fast_path_hands_over(value: Any) -> None:
    assert _fast(value) is None
    _assert_same_as_rfc8785(value)


def test_key_order_where_code_points_and_utf16_differ() -> None:
    value = {"\ue000": 2, "\U0001f600": 1}
    # By code point U+E000 < U+1F600; by UTF-16 code unit 0xD83D < 0xE000 (RFC 8785 3.2.3).
    assert canonical_json(value) == '{"\U0001f600":1,"\ue000":2}'.encode()


def test_a_real_manifest_takes_the_fast_path(store: Path) -> None:
    page = ("<html lang='fr'><head><title>L’été — « citation » 𝄞</title></head><body><article>"
            "<p>Un texte assez long pour un article, avec une <a href='/source'>source citée"
            "</a> et des guillemets “typographiques”.</p></article></body></html>")
    with serve({"/article": html(page), "/source": html("<p>source</p>")}) as server:
        result = capture(f"{server.base_url}/article", store=store,
                         settings=CaptureSettings(requisites=False))
    data = result.manifest.model_dump(mode="json", exclude_none=True)
    fast = _fast(data)
    assert fast is not None
    assert fast == bytes(rfc8785.dumps(data)) == result.manifest_bytes


EXACT_INTEGERS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(TEXT, children, max_size=5)),
    max_leaves=25)


@BUDGET
@given(EXACT_INTEGERS)
def test_exact_integers_mode_same_bytes(value: Any) -> None:
    """The mode manifests use: no number scan, still rfc8785's bytes (or its exception)."""
    _assert_same_as_rfc8785(value, exact_integers=True)


def _schema_numbers(node: Any, where: str = "$") -> list[str]:
    """Every place in a JSON Schema where a number could be other than an exact integer."""
    problems = []
    if isinstance(node, dict):
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "number" in kinds:
            problems.append(f"{where}: a float-typed field")
        if "integer" in kinds:
            low, high = node.get("minimum"), node.get("maximum")
            if "const" not in node and (low is None or high is None
                                        or low < -(2**53 - 1) or high > 2**53 - 1):
                problems.append(f"{where}: an integer not bounded to the exact doubles")
        for key, child in node.items():
            problems += _schema_numbers(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            problems += _schema_numbers(child, f"{where}[{index}]")
    return problems


def test_manifest_schema_holds_only_exact_integers() -> None:
    """What lets canonical_bytes skip the number scan: no float, every integer bounded."""
    schema = json.loads(committed())
    assert _schema_numbers(schema) == []
    assert _schema_numbers({"properties": {"n": {"type": "integer"}}}) != []  # the check bites
