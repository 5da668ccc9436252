"""Shared fixtures: an isolated config directory, an archive store, the sample site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys and trust files go to a temporary directory, never the real home."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("PROVENANCE_CONFIG_DIR", str(config))
    monkeypatch.delenv("PROVENANCE_ARCHIVE_DIR", raising=False)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    return config


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "archives"
    path.mkdir()
    return path


@pytest.fixture
def sample_site() -> Iterator[object]:
    from provenance.demo.site import serve_sample_site

    with serve_sample_site(slow_delay=0.3) as site:
        yield site
