"""The CLI as a user meets it: exit codes, one-line errors, --json, --quiet, keys, demo."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from helpers import run_cli
from provenance.demo.site import SampleSite
from servers import raw, serve


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error:"), stderr


def test_bad_urls_are_usage_errors(tmp_path: Path) -> None:
    for url in ("not a url", "ftp://example.org/file", "javascript:alert(1)", "http://"):
        result = run_cli("capture", url, "--archive-dir", str(tmp_path))
        assert result.returncode == 2, (url, result.stderr)
        _one_line_error(result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written for bad input


def test_refused_connection_is_operational(tmp_path: Path) -> None:
    result = run_cli("capture", f"http://127.0.0.1:{_closed_port()}/x",
                     "--archive-dir", str(tmp_path))
    assert result.returncode == 3
    assert "connection refused" in result.stderr
    _one_line_error(result.stderr.splitlines()[-1])


def test_bad_option_values(tmp_path: Path) -> None:
    for args in (("--links", "all"), ("--bogus",), ()):
        result = run_cli("capture", *(("http://127.0.0.1/", *args) if args else ()))
        assert result.returncode == 2
        _one_line_error(result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert run_cli("capture", "http://127.0.0.1/", "--max-bytes", "lots").returncode == 2
    assert run_cli("capture", "http://127.0.0.1/", "--concurrency", "0").returncode == 2


def test_out_of_range_numbers_are_usage_errors(tmp_path: Path) -> None:
    """inf, nan and integers no JSON reader holds exactly never reach the manifest."""
    for args in (("--read-timeout", "inf"), ("--total-timeout", "nan"),
                 ("--connect-timeout", "1e300"), ("--max-links", str(2**53)),
                 ("--max-bytes", str(10**20)), ("--max-bytes", "inf"), ("--max-bytes", "1e400"),
                 ("--max-decoded", "inf")):
        result = run_cli("capture", f"http://127.0.0.1:{_closed_port()}/x", *args,
                         "--archive-dir", str(tmp_path))
        assert result.returncode == 2, (args, result.stderr)
        _one_line_error(result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_json_summary_and_strict(sample_site: SampleSite, tmp_path: Path) -> None:
    result = run_cli("capture", sample_site.article_url, "--archive-dir", str(tmp_path),
                     "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "PARTIAL"
    assert Path(summary["bundle"]).is_dir()
    assert summary["signer"].startswith("SHA256:")
    outcomes = {row["outcome"] for row in summary["resources"]}
    assert {"captured", "failed", "skipped"} <= outcomes
    for row in summary["resources"]:
        if row["outcome"] == "captured":
            assert row["sha256"].startswith("sha256:") and row["bytes"] is not None

    strict = run_cli("capture", sample_site.article_url, "--archive-dir", str(tmp_path),
                     "--strict", "--quiet")
    assert strict.returncode == 3
    assert "PARTIAL" in strict.stderr


def test_plain_output_when_not_a_terminal(sample_site: SampleSite, tmp_path: Path) -> None:
    result = run_cli("capture", sample_site.article_url, "--archive-dir", str(tmp_path))
    assert result.returncode == 0
    assert "\x1b[" not in result.stdout + result.stderr  # no colour codes in pipes
    progress = result.stderr.splitlines()
    assert any("article" in line and "200" in line for line in progress)
    assert "capture id:" in result.stdout and "bundle:" in result.stdout


def test_quiet_prints_only_the_bundle(sample_site: SampleSite, tmp_path: Path) -> None:
    result = run_cli("capture", sample_site.article_url, "--archive-dir", str(tmp_path),
                     "--quiet", "--links", "none")
    assert result.returncode == 0
    assert Path(result.stdout.strip()).is_dir()


def test_archive_dir_from_environment(sample_site: SampleSite, tmp_path: Path) -> None:
    store = tmp_path / "from-env"
    result = run_cli("capture", sample_site.article_url, "--links", "none", "--quiet",
                     env={"PROVENANCE_ARCHIVE_DIR": str(store)})
    assert result.returncode == 0
    assert Path(result.stdout.strip()).parent == store


def test_garbage_served_as_html_is_captured(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 64
    route = raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                + str(len(junk)).encode() + b"\r\n\r\n" + junk)
    with serve({"/junk": route}) as server:
        result = run_cli("capture", f"{server.base_url}/junk", "--archive-dir", str(tmp_path),
                         "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "COMPLETE"


def test_keys_generate_matches_ssh_keygen(tmp_path: Path) -> None:
    generated = run_cli("keys", "generate", "--name", "reporter")
    assert generated.returncode == 0, generated.stderr
    fingerprint = generated.stdout.strip()
    assert fingerprint.startswith("SHA256:")
    shown = run_cli("keys", "show", "reporter")
    public_line = next(line.split(":", 1)[1].strip() for line in shown.stdout.splitlines()
                       if line.startswith("public key:"))
    pub = tmp_path / "reporter.pub"
    pub.write_text(public_line + "\n")
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True,
                            text=True, check=True)
    assert listed.stdout.split()[1] == fingerprint
    again = run_cli("keys", "generate", "--name", "reporter")
    assert again.returncode == 2  # never overwrite a key silently
    _one_line_error(again.stderr)


def test_missing_key_file_is_one_line(sample_site: SampleSite, tmp_path: Path) -> None:
    result = run_cli("capture", sample_site.article_url, "--key", str(tmp_path / "nope"),
                     "--archive-dir", str(tmp_path))
    assert result.returncode == 3
    _one_line_error(result.stderr)


def test_demo_runs_offline_and_verifies(tmp_path: Path) -> None:
    result = run_cli("demo", "--archive-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "verify:     VERIFIED" in result.stdout
    assert "state:      PARTIAL" in result.stdout


def test_live_progress_on_a_terminal(sample_site: SampleSite, tmp_path: Path) -> None:
    """On a TTY every resource gets its own line as it completes, then the summary table."""
    import os
    import pty
    import sys

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "provenance", "capture", sample_site.article_url,
         "--archive-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(terminal)
    output = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    text = output.decode("utf-8", "replace")
    assert "\x1b[" in text  # styled for a terminal
    for path in ("/docs/leaked-budget-memo.pdf", "/static/css/site.css", "/gone/deleted-statement"):
        assert path in text
    assert "HTTP 404 error" in text
    assert "capture id:" in text


def test_non_ascii_user_agent_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("capture", "http://127.0.0.1:9/", "--user-agent", "Zoë bot",
                     "--archive-dir", str(tmp_path))
    assert result.returncode == 2
    assert "printable ASCII" in result.stderr
    _one_line_error(result.stderr)


def test_ctrl_c_at_a_prompt_is_exit_130_with_one_line(tmp_path: Path) -> None:
    """Outside a capture too: Click would print 'Aborted!' and exit 1 (a failed check)."""
    import os
    import pty
    import signal
    import sys

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "provenance", "keys", "generate", "--passphrase", "--name", "p"],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "PROVENANCE_KEY_PASSPHRASE"})
    os.close(terminal)
    output = bytearray()
    while b"passphrase" not in output.lower():  # the hidden prompt is waiting for us
        chunk = os.read(controller, 4096)
        assert chunk, output
        output += chunk
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    text = output.decode("utf-8", "replace")
    assert "interrupted" in text and "Traceback" not in text and "Aborted" not in text


def test_ctrl_c_in_the_middle_of_a_command_is_exit_130_with_one_line(tmp_path: Path) -> None:
    """Typer turns a Ctrl-C that escapes a command into a silent exit 130: we say why."""
    import signal
    import sys

    bundle = tmp_path / "bundle"
    (bundle / "provenance").mkdir(parents=True)
    (bundle / "provenance" / "manifest.json.sig").write_bytes(b"a signature to stamp")
    with socket.socket() as tsa:  # a TSA that takes the request and never answers
        tsa.bind(("127.0.0.1", 0))
        tsa.listen()
        process = subprocess.Popen(
            [sys.executable, "-m", "provenance", "timestamp", str(bundle), "--tsa",
             f"http://127.0.0.1:{tsa.getsockname()[1]}/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        connection, _ = tsa.accept()  # the request is on its way: the command is at work
        with connection:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert err.strip() == "interrupted; nothing half-written was kept"
    assert out == ""
    assert sorted(path.name for path in (bundle / "provenance").iterdir()) == [
        "manifest.json.sig"]


def test_decode_cap_is_an_option_and_is_recorded(sample_site: SampleSite, tmp_path: Path) -> None:
    from provenance.manifest import load_manifest

    done = run_cli("capture", sample_site.article_url, "--archive-dir", str(tmp_path),
                   "--links", "none", "--no-requisites", "--max-decoded", "2K", "--json")
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    manifest = load_manifest(bundle / "provenance" / "manifest.json").manifest
    assert manifest.options.max_decoded_bytes == 2048
    assert [hit.limit for hit in manifest.limits_hit] == ["max_decoded_bytes"]


def test_an_archive_store_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "archives"
    not_a_directory.write_text("a file, not a store")
    for args in (("list",), ("capture", "http://127.0.0.1:9/"), ("reindex",)):
        result = run_cli(*args, "--archive-dir", str(not_a_directory))
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == f"error: archive store {not_a_directory} is not a directory"
    assert not_a_directory.read_text() == "a file, not a store"
