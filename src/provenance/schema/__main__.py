"""Write ``manifest.schema.json`` next to this module from the pydantic models."""

from __future__ import annotations

from pathlib import Path

from provenance.schema import SCHEMA_FILE, render

if __name__ == "__main__":
    target = Path(__file__).with_name(SCHEMA_FILE)
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
