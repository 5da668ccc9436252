"""Quote matching (typography-tolerant, otherwise exact) and text-fragment links.

Pure functions, no network: ``provenance.cite.quotes`` and ``provenance.cite.fragments``, plus
PDF text extraction edge cases (encrypted, owner-password-only, not a PDF).
"""

from __future__ import annotations

import io
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from provenance.cite.folding import _fold_nfc, _fold_units
from provenance.cite.fragments import (
    encode_value,
    text_directive,
    text_fragment_url,
    with_directive,
)
from provenance.cite.pdf import pdf_text
from provenance.cite.quotes import closest_start, find_quote, fold, fold_quote
from provenance.demo import site as demo
from provenance.errors import UsageError

ARCHIVED = (
    "Start with the official version. Our own newsroom’s report on the council’s approval "
    "describes a debate that ran past midnight\u00a0— with amendments from both sides.\n\n"
    "The memo, marked “not for circulation”, allocates the full amount… "
    "It was a “formality” staged for the cameras."
)


# ---------------------------------------------------------------------------------------------
# Folding


def test_fold_maps_typography_and_keeps_offsets() -> None:
    folded = fold("a\u2019b \u201cc\u201d\u2014d\u2026 \u00a0\n\te")
    assert folded.text == "a'b \"c\"-d... e"
    # the ellipsis is three folded characters that all stand for one original character
    dots = folded.text.index("...")
    assert [folded.original_span(i, i + 1) for i in range(dots, dots + 3)] == [(9, 10)] * 3
    # the whitespace run (space, NBSP, newline, tab) is one space standing for all four
    space = folded.text.rindex(" ")
    assert folded.original_span(space, space + 1) == (10, 14)


def test_fold_leaves_letters_case_and_compatibility_forms_alone() -> None:
    # NFKC would turn the ligature into "fi" and the superscript into "2": not a typographic
    # difference, so it must not match.
    assert fold("Ofﬁce x²").text == "Ofﬁce x²"
    assert find_quote("Office", "The Ofﬁce") is None
    assert find_quote("x2", "x²") is None


def test_fold_drops_invisible_characters() -> None:
    assert fold("bridge\u00adwork\u200b").text == "bridgework"


def test_fold_quote_strips_and_empty_quotes_find_nothing() -> None:
    assert fold_quote("  \n “x”\t") == '"x"'
    assert fold_quote(" \u00a0\n ") == ""
    assert find_quote("   ", ARCHIVED) is None
    assert find_quote("", ARCHIVED) is None


# ---------------------------------------------------------------------------------------------
# Matching: what must match


@pytest.mark.parametrize("quote", [
    # straight quotes and apostrophes for curly ones
    "Our own newsroom's report on the council's approval",
    'The memo, marked "not for circulation", allocates',
    # a hyphen (or a spaced double hyphen is NOT this: see the near misses) for an em dash
    "ran past midnight - with amendments",
    # three dots for an ellipsis
    "allocates the full amount... It was",
    # other whitespace and line breaks for a space and a non-breaking space
    "describes a debate\nthat ran   past\tmidnight — with",
    # across two paragraphs: the paragraph break is whitespace
    "with amendments from both sides. The memo, marked",
])
def test_typographic_variants_match(quote: str) -> None:
    match = find_quote(quote, ARCHIVED)
    assert match is not None
    assert ARCHIVED[match.start:match.end] == match.passage
    assert fold(match.passage).text == fold_quote(quote)


def test_the_reported_passage_is_the_original_text() -> None:
    match = find_quote('a "formality" staged', ARCHIVED)
    assert match is not None
    assert match.passage == "a “formality” staged"


def test_canonically_equivalent_forms_match() -> None:
    text = "Der Bürgermeister erläutert den Stand."
    decomposed = unicodedata.normalize("NFD", "Bürgermeister erläutert")
    assert decomposed != "Bürgermeister erläutert"
    match = find_quote(decomposed, text)
    assert match is not None and match.passage == "Bürgermeister erläutert"
    # and the other way round: decomposed archived text, composed quote
    match = find_quote("Bürgermeister", unicodedata.normalize("NFD", text))
    assert match is not None
    assert unicodedata.normalize("NFC", match.passage) == "Bürgermeister"


def test_the_first_occurrence_is_reported() -> None:
    text = "one two. one two."
    match = find_quote("one two", text)
    assert match is not None and (match.start, match.end) == (0, 7)


# ---------------------------------------------------------------------------------------------
# Matching: near misses that must fail


@pytest.mark.parametrize("quote", [
    "Our own newsroom's report on the council's approvel",  # one letter changed
    "Our own newsroom's story on the council's approval",  # one word changed
    "our own newsroom's report",  # case
    "Our own newsrooms report",  # punctuation dropped
    "ran past midnight -- with amendments",  # two hyphens are not one dash
    "ran past midnight with amendments",  # the dash left out
    "The memo marked",  # a comma left out
    "ur own newsroom's report",  # starts inside a word
    "Start with the official versio",  # ends inside a word
    "with amendments from both sides The memo",  # the full stop left out across paragraphs
    "allocates the full amount..",  # two of an ellipsis' three dots
    "Start with the official version. Our own newsroom’s report on the council’s approval "
    "describes a debate that ran past midnight — with amendments from both sides. Extra",
])
def test_near_misses_fail(quote: str) -> None:
    assert find_quote(quote, ARCHIVED) is None


def test_closest_start_quotes_the_archived_text_where_the_quote_goes_wrong() -> None:
    hint = closest_start("Our own newsroom's story on the council", ARCHIVED)
    # the longest start found ("Our own newsroom's"), then the next six words as archived
    assert hint == "Our own newsroom’s report on the council’s approval describes"
    assert closest_start("Nothing like this at all", ARCHIVED) is None


# ---------------------------------------------------------------------------------------------
# Property: matching is sound (what it reports folds to the quote) and finds word-aligned
# passages written with other typography.

_TYPOGRAPHY = {"'": "’", '"': "”", "-": "—"}
_alphabet = st.sampled_from([*"abc XY.,'\"-\n", "’", "“", "—", "…", "\u00a0"])


@settings(max_examples=200, deadline=None)
@given(text=st.text(_alphabet, max_size=60), data=st.data())
def test_matching_is_sound_and_complete_for_word_aligned_passages(
        text: str, data: st.DataObject) -> None:
    words = text.split()
    if not words:
        return
    first = data.draw(st.integers(0, len(words) - 1))
    last = data.draw(st.integers(first, len(words) - 1))
    quote = " ".join(words[first:last + 1])
    retyped = "".join(_TYPOGRAPHY.get(c, c) for c in quote)
    for candidate in (quote, retyped):
        match = find_quote(candidate, text)
        if match is not None:
            assert fold(match.passage).text == fold_quote(candidate)
    # whole words separated by whitespace are always on word boundaries
    assert find_quote(quote, text) is not None
    assert find_quote(retyped, text) is not None


_fold_alphabet = st.sampled_from([*"ab .,\n\t", "\u2019", "\u2014", "\u2026", "\u00a0",
                                  "\u00ad", "\u200b", "\u00e9", "\u0301", "\u2009"])


@settings(max_examples=200, deadline=None)
@given(text=st.text(_fold_alphabet, max_size=40))
def test_the_fast_fold_agrees_with_the_character_by_character_one(text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    fast, slow = _fold_nfc(nfc), _fold_units(nfc)
    assert fast.text == slow.text
    for index in range(len(fast.text)):
        low, high = fast.original_span(index, index + 1)
        assert 0 <= low < high <= len(nfc)
        # what a folded character stands for folds back to (a run containing) it
        assert fast.text[index] in fold(nfc[low:high]).text
        assert fast.folded_index(low) <= index


def test_a_large_text_folds_compactly() -> None:
    paragraph = "Lorem ipsum dolor sit amet, “consectetur” elit — sed do.\n\n"
    text = paragraph * 20_000  # 1.2 million characters
    folded = fold(text)
    assert len(folded._folded) <= 2 * 20_000 + 1  # a segment per paragraph break, not per char
    match = find_quote('elit - sed do. Lorem ipsum dolor sit amet, "consectetur"', text)
    assert match is not None and match.start == paragraph.index("elit")


# ---------------------------------------------------------------------------------------------
# Text fragments


def test_values_are_percent_encoded_including_the_directive_syntax() -> None:
    assert encode_value("well-known, widely used & cited") == \
        "well%2Dknown%2C%20widely%20used%20%26%20cited"
    assert encode_value("Ostermünde’s “x”") == \
        "Osterm%C3%BCnde%E2%80%99s%20%E2%80%9Cx%E2%80%9D"
    assert encode_value("a#b:~:c/d?e") == "a%23b%3A~%3Ac%2Fd%3Fe"


def test_a_short_passage_is_given_whole_as_text_start() -> None:
    match = find_quote("a debate that ran past midnight - with", ARCHIVED)
    assert match is not None
    directive = text_directive(ARCHIVED, match.start, match.end)
    # the no-break space is written as a space: rendered text is compared, where browsers
    # treat it as one
    assert directive == "text=a%20debate%20that%20ran%20past%20midnight%20%E2%80%94%20with"


def test_a_passage_across_paragraphs_is_given_as_start_and_end() -> None:
    match = find_quote("with amendments from both sides. The memo, marked", ARCHIVED)
    assert match is not None
    directive = text_directive(ARCHIVED, match.start, match.end)
    # each half stays inside its own block, so the browser can find it
    assert directive == "text=with%20amendments%20from%20both,The%20memo%2C%20marked"


def test_a_long_passage_is_given_as_start_and_end() -> None:
    text = " ".join(f"word{n}" for n in range(40))
    directive = text_directive(text, 0, len(text))
    assert directive == "text=word0%20word1%20word2%20word3,word36%20word37%20word38%20word39"


def test_start_and_end_are_lengthened_until_they_point_at_the_passage() -> None:
    filler = " ".join(f"w{n}" for n in range(30))
    # "the bridge was built" occurs before the passage: four words would match too early
    text = f"the bridge was built. Then: the bridge was built in 1961 and {filler} end of it all."
    start = text.index("the bridge was built in")
    directive = text_directive(text, start, len(text))
    head, tail = (unquote(part) for part in directive.removeprefix("text=").split(","))
    assert head == "the bridge was built in"
    assert tail == "end of it all."


def test_a_passage_cut_inside_words_is_widened_to_whole_words() -> None:
    text = "The outcome was reported as close."
    assert text_directive(text, 5, 13) == "text=outcome%20was"


def test_the_directive_follows_any_fragment_and_replaces_an_old_one() -> None:
    assert with_directive("https://a.example/p?q=1", "text=x") == \
        "https://a.example/p?q=1#:~:text=x"
    assert with_directive("https://a.example/p#sec", "text=x") == \
        "https://a.example/p#sec:~:text=x"
    assert with_directive("https://a.example/p#sec:~:text=old", "text=x") == \
        "https://a.example/p#sec:~:text=x"
    assert text_fragment_url("https://a.example/p", "Hello, world-wide.", 0, 5) == \
        "https://a.example/p#:~:text=Hello"


# ---------------------------------------------------------------------------------------------
# PDF text


def _memo_pdf() -> bytes:
    return demo._pdf(demo.PDF_TEXT_LINES)


def _encrypted(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_memo_pdf())))
    writer.encrypt(user_password=user_password, owner_password="owner-secret",
                   algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_text_and_information() -> None:
    result = pdf_text(_memo_pdf(), "http://127.0.0.1/memo.pdf")
    assert "Amount allocated: EUR 47,860,000." in result.text
    assert result.title == "Wendel Crossing replacement - capital allocation"
    assert result.author == "City of Halvern Finance Directorate"


def test_a_pdf_protected_only_by_an_owner_password_is_read() -> None:
    result = pdf_text(_encrypted(""), "http://127.0.0.1/memo.pdf")
    assert "Tender notice to be published: 1 August 2017." in result.text


def test_an_encrypted_pdf_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match=r"the PDF at http://127\.0\.0\.1/memo\.pdf is "
                                         r"encrypted"):
        pdf_text(_encrypted("reader-secret"), "http://127.0.0.1/memo.pdf")


@pytest.mark.parametrize("data", [b"%PDF-1.4\n%garbage", b"not a pdf at all", b""])
def test_a_broken_pdf_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        pdf_text(data, "http://127.0.0.1/broken.pdf")
