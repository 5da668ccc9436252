"""Start-up: the CLI, and every command that does not capture, never import the capture pipeline.

The pipeline (trafilatura, lxml, the HTTP client, the extraction) cost every command about half
a second of start-up when the CLI imported it eagerly. Each case runs in a fresh interpreter (a
real subprocess) and then looks in its ``sys.modules``. Nothing here is timed: the machine is
too noisy for that, and what matters is what gets imported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import make_signer
from provenance.capture.pipeline import capture
from provenance.demo.site import serve_sample_site

#: modules only a capture needs: the pipeline, its fetcher and extraction, their libraries
CAPTURE_ONLY = ("provenance.capture.pipeline", "provenance.capture.fetch",
                "provenance.capture.extract", "trafilatura", "lxml")

#: runs the CLI's own entry point (pyproject's console script) with argv[2:], then writes the
#: names in sys.modules to argv[1] and exits with the CLI's exit code
_RUN_CLI = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
from provenance.cli import main
sys.argv = ["provenance", *args]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(out, "w", encoding="utf-8") as file:
    json.dump(sorted(sys.modules), file)
sys.exit(code)
"""


def _capture_modules(modules: list[str]) -> list[str]:
    return [name for name in modules
            if any(name == wanted or name.startswith(wanted + ".") for wanted in CAPTURE_ONLY)]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = tmp_path / "modules.json"
    result = subprocess.run([sys.executable, "-c", _RUN_CLI, str(out), *args],
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    modules: list[str] = json.loads(out.read_text(encoding="utf-8"))
    return result, modules


@dataclass(frozen=True)
class Captured:
    store: Path
    bundle: Path
    capture_id: str
    fingerprint: str


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Captured]:
    store = tmp_path_factory.mktemp("startup") / "archives"
    store.mkdir()
    signer, _key = make_signer()
    with serve_sample_site(slow_delay=0.05) as site:
        result = capture(site.article_url, store=store, signer=signer)
    yield Captured(store=store, bundle=result.bundle, capture_id=result.capture_id,
                   fingerprint=signer.fingerprint)


def test_importing_the_cli_imports_no_capture_pipeline() -> None:
    for module in ("provenance.cli", "provenance.cli.app", "provenance.__main__"):
        result = subprocess.run(
            [sys.executable, "-c",
             f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"],
            capture_output=True, text=True, timeout=120, check=True)
        modules = json.loads(result.stdout)
        assert module in modules
        assert _capture_modules(modules) == [], module


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("verify", "--help"), ("keys", "--help"), ("list", "--help"),
    ("cite", "--help"), ("capture", "--help"), ("timestamp", "--help"), ("keys", "list"),
])
def test_help_and_light_commands_import_no_capture_pipeline(tmp_path: Path,
                                                           args: tuple[str, ...]) -> None:
    result, modules = _run(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "provenance.cli" in modules
    assert _capture_modules(modules) == []


def test_commands_that_read_a_capture_import_no_capture_pipeline(
        tmp_path: Path, captured: Captured) -> None:
    store = str(captured.store)
    bundle = str(captured.bundle)
    cases = {
        "verify": (("verify", bundle, "--trusted-key", captured.fingerprint), "VERIFIED"),
        "list": (("list", "--archive-dir", store), captured.capture_id),
        "show": (("show", captured.capture_id, "--archive-dir", store), captured.capture_id),
        "cite": (("cite", captured.capture_id, "--archive-dir", store), captured.capture_id),
    }
    for name, (args, expected) in cases.items():
        result, modules = _run(tmp_path, *args)
        assert result.returncode == 0, (name, result.stderr)
        assert expected in result.stdout, (name, result.stdout)
        assert _capture_modules(modules) == [], name



def test_timestamping_a_bundle_imports_no_capture_pipeline(
        tmp_path: Path, captured: Captured) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    result, modules = _run(tmp_path, "timestamp", str(captured.bundle), "--tsa", closed)
    assert result.returncode == 3, result.stderr  # every TSA failed: nothing was stamped
    assert closed in result.stdout + result.stderr
    assert _capture_modules(modules) == []
