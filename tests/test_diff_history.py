"""diff and history on a local site whose article changes between captures (real captures)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import make_signer, run_cli
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import CaptureResult, SigningIdentity, capture
from provenance.catalog import capture_history, history, previous_capture, record_capture
from provenance.diff import diff_captures
from provenance.manifest import canonical_bytes, load_manifest
from provenance.models import PreviousCapture
from provenance.storage import MANIFEST_PATH
from servers import RawRoute, Server, html, serve

SETTINGS = CaptureSettings(requisites=False, allow_private=True, connect_timeout=2,
                           read_timeout=5, total_timeout=10)

FIRST_TEXT = ("The harbour board approved the dredging contract on Tuesday after a short "
              "debate, with seven members in favour and two against the proposal.")
SECOND_TEXT = ("The harbour board approved the dredging contract on Tuesday after a long "
               "debate, with six members in favour and three against the proposal.")
STEADY_TEXT = ("Engineers expect the work to take eleven weeks, during which the eastern quay "
               "will stay closed to pleasure craft and the ferry will use the western berth.")


def _article(title: str, lead: str, links: list[tuple[str, str]]) -> RawRoute:
    anchors = " ".join(f'Read <a href="{href}">{text}</a> for the details.'
                       for href, text in links)
    return html(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="author" content="Ada Quill"></head>
<body><main><article><h1>{title}</h1>
<p>{lead}</p>
<p>{STEADY_TEXT}</p>
<p>Sources. {anchors}</p>
<p>The board will publish the full minutes of the meeting next week, together with the
engineering survey that the contractor submitted in the spring, and residents can comment on
both until the end of the month.</p>
</article></main></body></html>""")


def _page(text: str, status: str = "200 OK") -> RawRoute:
    return html(f"<html><body><p>{text}</p></body></html>", status=status)


@dataclass
class ChangingSite:
    server: Server
    routes: dict[str, RawRoute]
    other: ExitStack  # a second server, stopped between the captures
    other_url: str

    @property
    def article_url(self) -> str:
        return f"{self.server.base_url}/news/harbour"


def _first_version(site: ChangingSite) -> None:
    base = site.server.base_url
    site.routes.update({
        "/news/harbour": _article("Harbour board approves dredging", FIRST_TEXT, [
            (f"{base}/src/stable", "the stable source"),
            (f"{base}/src/edited", "the edited source"),
            (f"{base}/src/dropped", "the dropped source"),
            (f"{base}/src/gone", "the source that goes"),
            (f"{base}/src/broken", "the source that breaks"),
            (site.other_url, "the source whose server stops"),
            (f"{base}/src/back", "the source that comes back"),
        ]),
        "/src/stable": _page("stable"),
        "/src/edited": _page("edited, first version"),
        "/src/dropped": _page("dropped"),
        "/src/gone": _page("here today"),
        "/src/broken": _page("working"),
        "/src/new": _page("new source"),
    })


def _second_version(site: ChangingSite) -> None:
    base = site.server.base_url
    site.routes.update({
        "/news/harbour": _article("Harbour board approves dredging after long debate",
                                  SECOND_TEXT, [
            (f"{base}/src/stable", "the stable source"),
            (f"{base}/src/edited", "the edited source"),
            (f"{base}/src/new", "the new source"),
            (f"{base}/src/gone", "the source that goes"),
            (f"{base}/src/broken", "the source that breaks"),
            (site.other_url, "the source whose server stops"),
            (f"{base}/src/back", "the source that comes back"),
        ]),
        "/src/edited": _page("edited, second version"),
        "/src/back": _page("back again"),
        "/src/broken": _page("internal error", status="500 Internal Server Error"),
    })
    del site.routes["/src/gone"]  # the test server answers 404 for unknown paths
    site.other.close()  # its port now refuses connections


@pytest.fixture
def changing_site() -> Iterator[ChangingSite]:
    routes: dict[str, RawRoute] = {}
    with serve(routes) as server, ExitStack() as other:
        second = other.enter_context(serve({"/doc": _page("on another server")}))
        site = ChangingSite(server=server, routes=routes, other=other,
                            other_url=f"{second.base_url}/doc")
        _first_version(site)
        yield site


def _capture(site: ChangingSite, store: Path, signer: SigningIdentity) -> CaptureResult:
    result = capture(site.article_url, store=store, settings=SETTINGS, signer=signer)
    record_capture(store, result.bundle)
    return result


@pytest.fixture
def two_captures(changing_site: ChangingSite, store: Path
                 ) -> tuple[ChangingSite, CaptureResult, CaptureResult]:
    signer, _key = make_signer()
    first = _capture(changing_site, store, signer)
    _second_version(changing_site)
    second = _capture(changing_site, store, signer)
    return changing_site, first, second


def test_diff_reports_text_metadata_and_sources(
        two_captures: tuple[ChangingSite, CaptureResult, CaptureResult]) -> None:
    site, first, second = two_captures
    base = site.server.base_url
    result = diff_captures(first.bundle, second.bundle)
    assert not result.identical
    assert result.old.capture_id == first.capture_id
    assert result.new.capture_id == second.capture_id

    # The article text, as a unified diff labelled with both captures.
    lines = result.text_diff
    assert lines[0].startswith(f"--- {first.capture_id}\t{first.manifest.started_at}")
    assert lines[1].startswith(f"+++ {second.capture_id}\t{second.manifest.started_at}")
    removed = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert any("seven members in favour" in line for line in removed)
    assert any("six members in favour" in line for line in added)
    assert not any(STEADY_TEXT[:40] in line for line in removed + added)  # unchanged text

    fields = {change.field: change for change in result.metadata}
    assert fields["title"].old == "Harbour board approves dredging"
    assert fields["title"].new == "Harbour board approves dredging after long debate"
    assert fields["article_sha256"].old == first.manifest.resources[0].sha256
    assert "article_text_sha256" in fields
    assert "authors" not in fields and "requested_url" not in fields

    changes = {change.url.removeprefix(base): change for change in result.links}
    assert changes["/src/new"].change == "added"
    assert changes["/src/dropped"].change == "removed"
    edited = changes["/src/edited"]
    assert edited.change == "changed"
    assert edited.old and edited.new and edited.old.sha256 != edited.new.sha256
    assert changes["/src/gone"].change == "unreachable"
    assert changes["/src/gone"].new and changes["/src/gone"].new.reason == "HTTP 404"
    assert changes["/src/broken"].change == "unreachable"
    assert changes["/src/broken"].new and changes["/src/broken"].new.reason == "HTTP 500"
    stopped = changes[site.other_url]
    assert stopped.change == "unreachable"
    assert stopped.new and stopped.new.reason and "refused" in stopped.new.reason
    assert changes["/src/back"].change == "restored"
    assert "/src/stable" not in changes  # same bytes both times: not a change


def test_diff_of_a_capture_with_itself_is_empty(
        two_captures: tuple[ChangingSite, CaptureResult, CaptureResult]) -> None:
    _site, first, _second = two_captures
    same = diff_captures(first.bundle, first.bundle)
    assert same.identical and same.text_diff == () and same.links == ()


def test_diff_cli(two_captures: tuple[ChangingSite, CaptureResult, CaptureResult],
                  store: Path) -> None:
    site, first, second = two_captures
    # Shortest unique prefixes work as ids; both captures started within the same minute or
    # so, so give the whole id of one and a prefix of the other.
    plain = run_cli("diff", first.capture_id, second.capture_id, "--archive-dir", str(store))
    assert plain.returncode == 0, plain.stderr
    out = plain.stdout
    assert "\x1b[" not in out
    assert f"--- {first.capture_id}" in out and f"+++ {second.capture_id}" in out
    assert "-The harbour board approved the dredging contract on Tuesday after a short" in out
    assert "+The harbour board approved the dredging contract on Tuesday after a long" in out
    assert 'title: "Harbour board approves dredging" -> ' in out
    assert f"+ added        {site.server.base_url}/src/new" in out
    assert f"- removed      {site.server.base_url}/src/dropped" in out
    assert f"~ changed      {site.server.base_url}/src/edited" in out
    assert f"! unreachable  {site.server.base_url}/src/gone  (failed: HTTP 404" in out
    assert f"+ restored     {site.server.base_url}/src/back" in out

    as_json = run_cli("diff", first.capture_id, second.capture_id, "--archive-dir", str(store),
                      "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["identical"] is False
    assert data["old"]["capture_id"] == first.capture_id
    kinds = {item["url"].removeprefix(site.server.base_url): item["change"]
             for item in data["links"]}
    assert kinds["/src/edited"] == "changed" and kinds["/src/broken"] == "unreachable"
    assert "+The harbour board" in data["text_diff"]

    strict = run_cli("diff", first.capture_id, second.capture_id, "--archive-dir", str(store),
                     "--exit-code")
    assert strict.returncode == 1
    same = run_cli("diff", first.capture_id, str(first.bundle), "--archive-dir", str(store),
                   "--exit-code")
    assert same.returncode == 0 and "no differences" in same.stdout
    unknown = run_cli("diff", first.capture_id, "nosuchid", "--archive-dir", str(store))
    assert unknown.returncode == 2 and "no capture 'nosuchid'" in unknown.stderr


# ---------------------------------------------------------------------------------------------
# history


def _linked(result: CaptureResult, store: Path, expected: PreviousCapture | None) -> None:
    """Check (or, before the pipeline records it, write) the link to the previous capture.

    The pipeline asks ``previous_capture`` before the capture and records the answer in the
    signed manifest. Where that is not wired in yet, the same link is written into the
    manifest on disk here (unsigned; history does not verify signatures).
    """
    loaded = load_manifest(result.bundle / MANIFEST_PATH)
    if loaded.manifest.previous is not None or expected is None:
        assert loaded.manifest.previous == expected
        return
    linked = loaded.manifest.model_copy(update={"previous": expected})
    (result.bundle / MANIFEST_PATH).write_bytes(canonical_bytes(linked))
    record_capture(store, result.bundle)


def _three_captures(site: ChangingSite, store: Path) -> list[CaptureResult]:
    signer, _key = make_signer()
    results: list[CaptureResult] = []
    for index in range(3):
        expected = previous_capture(store, site.article_url)
        if index == 0:
            assert expected is None
        else:
            assert expected is not None and expected.capture_id == results[-1].capture_id
        result = _capture(site, store, signer)
        _linked(result, store, expected)
        results.append(result)
        if index == 0:
            _second_version(site)
    return results


def test_history_links_three_captures(changing_site: ChangingSite, store: Path) -> None:
    results = _three_captures(changing_site, store)
    # The same URL spelled differently (host case, default port, fragment) is the same history.
    spelled = changing_site.article_url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "#top"
    found = history(store, spelled)
    assert [item.entry.capture_id for item in found.entries] == [r.capture_id for r in results]
    assert [item.link for item in found.entries] == ["first", "ok", "ok"]
    assert not found.broken
    digests = [item.manifest_sha256 for item in found.entries]
    for item, predecessor_digest in zip(found.entries[1:], digests, strict=False):
        assert item.previous is not None
        assert item.previous.manifest_sha256 == predecessor_digest
    # Named by one of its captures: the history of the URL that capture requested.
    by_capture = capture_history(store, results[1].capture_id)
    assert by_capture.url == changing_site.article_url
    assert by_capture.entries == found.entries

    cli = run_cli("history", changing_site.article_url, "--archive-dir", str(store), "--json")
    assert cli.returncode == 0, cli.stderr
    data = json.loads(cli.stdout)
    assert [c["link"] for c in data["captures"]] == ["first", "ok", "ok"]
    assert data["broken"] == 0
    plain = run_cli("history", results[1].capture_id[:18], "--archive-dir", str(store))
    assert plain.returncode == 0, plain.stderr
    assert [line.split("\t")[0] for line in plain.stdout.splitlines()] == [
        r.capture_id for r in results]


def test_history_flags_an_altered_or_deleted_predecessor(changing_site: ChangingSite,
                                                        store: Path) -> None:
    first, second, third = _three_captures(changing_site, store)
    # Alter the first capture's manifest on disk (still valid JSON, still parses).
    path = first.bundle / MANIFEST_PATH
    data = json.loads(path.read_bytes())
    data["page"]["title"] = "A quietly edited title"
    path.write_bytes(json.dumps(data).encode())
    found = history(store, changing_site.article_url)
    assert [item.link for item in found.entries] == ["first", "altered", "ok"]
    assert [item.entry.capture_id for item in found.broken] == [second.capture_id]
    assert first.capture_id in found.broken[0].detail
    # The broken capture named by id: its manifest is read once and gives the same verdict.
    assert capture_history(store, second.capture_id).entries == found.entries

    cli = run_cli("history", changing_site.article_url, "--archive-dir", str(store))
    assert cli.returncode == 1
    assert "broken link" in cli.stderr and second.capture_id in cli.stderr
    assert "altered" in cli.stdout

    # Deleting the middle capture breaks the third capture's link: its predecessor is gone.
    shutil.rmtree(second.bundle)
    found = history(store, changing_site.article_url)
    assert [item.entry.capture_id for item in found.entries] == [first.capture_id,
                                                                 third.capture_id]
    assert [item.link for item in found.entries] == ["first", "missing"]
    as_json = run_cli("history", changing_site.article_url, "--archive-dir", str(store),
                      "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["broken"] == 1
