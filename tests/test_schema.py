"""The committed manifest JSON Schema matches the models, and real manifests validate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from provenance.capture.pipeline import capture
from provenance.demo.site import SampleSite
from provenance.manifest import parse_manifest
from provenance.schema import committed, render


def test_committed_schema_is_current() -> None:
    assert committed() == render(), "run: python -m provenance.schema"


def test_schema_describes_required_fields() -> None:
    schema = json.loads(committed())
    required = set(schema["required"])
    assert {"capture_id", "state", "resources", "links", "files", "tool"} <= required
    assert schema["additionalProperties"] is False


def test_manifest_round_trip(sample_site: SampleSite, store: Path) -> None:
    result = capture(sample_site.article_url, store=store)
    assert parse_manifest(result.manifest_bytes) == result.manifest
    data = json.loads(result.manifest_bytes)
    assert data["schema_version"] == 1
    assert "signer" not in data  # unsigned library capture: absent, not null
    jsonschema.validate(data, json.loads(committed()))
    data["state"] = "DONE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json.loads(committed()))
