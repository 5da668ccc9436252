"""Decode an HTML body as browsers do (WHATWG, simplified): BOM, HTTP charset, meta, guess."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# WHATWG labels whose Python codec differs by name or by behaviour. The web treats latin-1 and
# ascii as windows-1252, gbk as gb18030, euc-kr and shift_jis as the Microsoft supersets.
_LABEL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cp1252", ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
                "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
                "iso_8859-1:1987", "l1", "latin1", "latin-1", "us-ascii", "windows-1252",
                "x-cp1252")),
    ("cp1254", ("cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599",
                "iso_8859-9", "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254")),
    ("cp874", ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874")),
    ("gb18030", ("chinese", "csgb2312", "csiso58gb231280", "gb18030", "gb2312", "gb_2312",
                 "gb_2312-80", "gbk", "iso-ir-58", "x-gbk")),
    ("big5hkscs", ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5")),
    ("cp949", ("cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987",
               "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949")),
    ("cp932", ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis",
               "windows-31j", "x-sjis")),
    ("utf-16-le", ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16",
                   "utf-16le")),
    ("utf-16-be", ("unicodefffe", "utf-16be")),
    ("utf-8", ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8",
               "x-unicode20utf8")),
    ("iso8859-8", ("csiso88598i", "iso-8859-8-i", "logical")),
    ("mac-roman", ("csmacintosh", "mac", "macintosh", "x-mac-roman")),
    ("mac-cyrillic", ("x-mac-cyrillic", "x-mac-ukrainian")),
    ("koi8-u", ("koi8-ru", "koi8-u")),
    ("cp866", ("866", "cp866", "csibm866", "ibm866")),
)
_LABEL_CODECS: dict[str, str] = {
    label: codec for codec, labels in _LABEL_GROUPS for label in labels
}

# Python codecs (by canonical name) that correspond to a WHATWG encoding; anything else Python
# knows (utf-7, utf-32, iso2022_kr, rot13, ...) is not a web encoding and is ignored.
_WEB_CODECS = frozenset(
    {codec for codec, _ in _LABEL_GROUPS}
    | {f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)}
    | {f"cp{n}" for n in range(1250, 1259)}
    | {"koi8-r", "euc_jp", "iso2022_jp"}
)

# one-byte-per-character web encodings: in these, text that happens to be valid UTF-8 with
# multi-byte sequences is mojibake ("cafÃ©"), so such bytes are UTF-8 whatever the label says
_SINGLE_BYTE_CODECS = frozenset(
    {"cp1252", "cp1254", "cp874", "iso8859-8", "mac-roman", "mac-cyrillic", "koi8-u", "koi8-r",
     "cp866"}
    | {f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)}
    | {f"cp{n}" for n in range(1250, 1259)}
)
# a well-formed multi-byte UTF-8 sequence (RFC 3629 section 4)
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)

_PRESCAN_BYTES = 1024
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_META_TAG = re.compile(r"<meta[\s/]([^>]*)", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_CHARSET_PARAM = re.compile(
    r"""charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.IGNORECASE
)

# windows-1252 leaves five bytes undefined; WHATWG decodes them to the C1 control of the same
# number, so the text round-trips instead of turning into U+FFFD.
_C1_ERRORS = "provenance-whatwg-c1"
# how much more "chaos" (charset_normalizer's mess score, 0 to 1) windows-1252 may show than
# the detector's favourite and still be preferred
_CHAOS_TOLERANCE = 0.05


def _c1_passthrough(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(chr(byte) for byte in error.object[error.start : error.end]), error.end


codecs.register_error(_C1_ERRORS, _c1_passthrough)


def _codec_for_label(label: str | None) -> str | None:
    """Return the Python codec for an encoding label, None when it names no web encoding."""
    if not label:
        return None
    key = label.strip(" \t\n\f\r\"'").lower()
    if key in _LABEL_CODECS:
        return _LABEL_CODECS[key]
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    name = _LABEL_CODECS.get(name, name)
    return name if name in _WEB_CODECS else None


def _charset_from_content_type(value: str) -> str | None:
    match = _CHARSET_PARAM.search(value)
    if match is None:
        return None
    return next((group for group in match.groups() if group is not None), None)


def _prescan_meta(body: bytes) -> str | None:
    """Find the encoding a ``<meta>`` in the first 1024 bytes declares (WHATWG prescan)."""
    head = _COMMENT.sub("", body[:_PRESCAN_BYTES].decode("latin-1"))
    for tag in _META_TAG.finditer(head):
        attributes: dict[str, str] = {}
        for match in _ATTRIBUTE.finditer(tag.group(1)):
            name = match.group(1).lower()
            attributes.setdefault(name, (match.group(2) or "").strip("\"'"))
        label = attributes.get("charset")
        if label is None and attributes.get("http-equiv", "").lower() == "content-type":
            label = _charset_from_content_type(attributes.get("content", ""))
        codec = _codec_for_label(label)
        if codec is not None:
            # a meta can only be read if the page is ASCII-compatible, so utf-16 here is a lie
            return "utf-8" if codec.startswith("utf-16") else codec
    return None


def _guess_codec(body: bytes) -> str | None:
    """Guess the encoding of undeclared, non-UTF-8 bytes, leaning towards windows-1252.

    windows-1252 is what browsers assume for such pages in most locales, and the detector's
    favourite for short Latin text is often a sibling (cp1257 reading "à" as "ą"); it still
    decides when the text is clearly another script.
    """
    matches = from_bytes(body)
    best = matches.best()
    if best is None:
        return None
    favourite = _codec_for_label(best.encoding) or best.encoding
    if favourite == "cp1252":
        return favourite
    for match in matches:
        plausible = match.chaos <= best.chaos + _CHAOS_TOLERANCE
        if plausible and _codec_for_label(match.encoding) == "cp1252":
            return "cp1252"
    if _decode(body, favourite) == _decode(body, "cp1252"):
        return "cp1252"
    return favourite


def _decode(data: bytes, codec: str) -> str:
    errors = _C1_ERRORS if codec == "cp1252" else "replace"
    try:
        return data.decode(codec, errors=errors)
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _believable(codec: str, body: bytes) -> str:
    """Return ``codec``, unless the bytes plainly contradict the label that named it.

    Browsers obey the label (WHATWG Encoding, "decode"), and show U+FFFD or mojibake where it
    lies; the text record is for reading and quoting, so two unambiguous lies are corrected:
    a UTF-8 label on bytes without a single well-formed multi-byte UTF-8 sequence (a server
    that stamps "charset=utf-8" on windows-1252 pages), and a one-byte label on bytes that
    are valid UTF-8 beyond ASCII (a page converted to UTF-8 that kept its old ``<meta>``).
    """
    if codec == "utf-8":
        if _is_utf8(body) or _UTF8_SEQUENCE.search(body) is not None:
            return codec  # valid, or mostly valid with a few bad bytes: the label holds
        return _guess_codec(body) or codec
    if codec in _SINGLE_BYTE_CODECS and not body.isascii() and _is_utf8(body):
        return "utf-8"
    return codec


def decode_html(body: bytes, declared_charset: str | None) -> str:
    """Decode an HTML body: BOM, then the HTTP charset, then ``<meta>``, then a guess.

    ``declared_charset`` is the HTTP ``charset`` parameter (a whole Content-Type value is
    accepted too). A declaration the bytes plainly contradict is overruled (``_believable``).
    Never raises: undecodable bytes become U+FFFD.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _decode(body[len(bom) :], codec)
    declared = declared_charset
    if declared and "=" in declared:
        declared = _charset_from_content_type(declared)
    chosen = _codec_for_label(declared) or _prescan_meta(body)
    if chosen is not None:
        return _decode(body, _believable(chosen, body))
    try:
        # valid UTF-8 beyond ASCII is almost never another encoding by accident
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode(body, _guess_codec(body) or "utf-8")
