"""The committed JSON Schema of the manifest (``manifest.schema.json``), generated from models.

Regenerate with ``python -m provenance.schema``; a test fails when the file is stale.
"""

from __future__ import annotations

import json
from importlib.resources import files

from provenance.manifest import manifest_json_schema

SCHEMA_FILE = "manifest.schema.json"


def render() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"


def committed() -> str:
    return files("provenance.schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
