"""Manifest bytes: built once as RFC 8785 canonical JSON, read back without re-serialising.

DESIGN.md section 2: sign exact bytes, canonicalise once. A verifier checks the signature over
the bytes on disk first and only then parses them (``load_manifest`` keeps both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from provenance.errors import BundleFormatError
from provenance.jcs import canonical_json
from provenance.models import Manifest
from provenance.printable import escape_controls

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_MAX_SHOWN = 80


def _shown(text: str) -> str:
    """Manifest-supplied text for a one-line error: controls and lone surrogates escaped."""
    # An object key is any JSON string: a newline or a lone surrogate (RFC 8259 section 8.2
    # allows "\ud800") in it must not reach a terminal through the error message.
    text = escape_controls(text)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def canonical_bytes(manifest: Manifest) -> bytes:
    """RFC 8785 (JCS) serialisation; ``None`` fields are left out to keep manifests lean."""
    # A validated Manifest holds no float and only integers below 2^53 (models.py).
    return canonical_json(manifest.model_dump(mode="json", exclude_none=True),
                          exact_integers=True)


@dataclass(frozen=True)
class LoadedManifest:
    raw: bytes
    manifest: Manifest


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleFormatError(f"manifest is not JSON: {error}") from None
    except ValueError:
        # Not a JSONDecodeError: CPython refuses to convert an integer literal longer than
        # sys.get_int_max_str_digits() (4300 by default) and json.loads lets that through as
        # a bare ValueError. A manifest's numbers are integers that fit an IEEE double
        # (RFC 8785 section 3.2.2.3): 16 digits at most.
        raise BundleFormatError("manifest holds a number too long to be a manifest's") from None
    except RecursionError:
        raise BundleFormatError("manifest is nested too deeply to be a manifest") from None
    try:
        # Strict: the JSON types are the published schema's (schema/manifest.schema.json), so
        # "5" is not an offset, true is not 1 and 1 is not true. Lax coercion would accept
        # signed bytes that every schema-based verifier rejects. Nested objects are still
        # read from JSON objects.
        return Manifest.model_validate(data, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        where = _shown(".".join(str(part) for part in first["loc"])) or "(root)"
        raise BundleFormatError(
            f"manifest does not match the schema at {where}: {first['msg']}") from None


def load_manifest(path: Path) -> LoadedManifest:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise BundleFormatError(f"{path}: manifest is implausibly large ({size} bytes)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleFormatError(f"{path}: no manifest here; is this a provenance bundle?") from None
    except OSError as error:
        raise BundleFormatError(f"{path}: cannot read manifest: {error.strerror}") from None
    return LoadedManifest(raw=raw, manifest=parse_manifest(raw))


def manifest_json_schema() -> dict[str, object]:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://provenance.invalid/schema/manifest-v1.json"
    return schema
