"""The address guard: links and redirects to non-global addresses on other hosts are skipped.

127.0.0.2 and 127.0.0.3 stand in for "another private host" (the whole 127/8 block is loopback
on Linux); the article is served on 127.0.0.1. Each test asserts on the servers' accepted
connections, so "not fetched" means no TCP connection was ever made, not merely no request.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import make_signer, run_cli
from provenance.capture.fetch import static_resolver
from provenance.capture.guard import AddressGuard, address_kind
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import capture
from servers import Server, html, raw, serve


@dataclass
class Hosts:
    article: Server
    same_host: Server
    other: Server  # 127.0.0.2
    third: Server  # 127.0.0.3


def _article(links: list[str], image: str) -> str:
    anchors = " ".join(f'<a href="{url}">source {n}</a>' for n, url in enumerate(links))
    paragraph = ("The council's vote was documented in several places, which this piece "
                 "cites so that readers can check each claim for themselves. ")
    return (f"<html><head><title>Guarded</title></head><body><article><h1>Guarded</h1>"
            f"<p>{paragraph * 3}</p><p>Sources: {anchors}.</p>"
            f'<p>{paragraph * 2}<img src="{image}" alt="chart"></p></article></body></html>')


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    secret = {"/secret": html("<p>router admin page</p>"), "/chart.png": raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 4\r\n"
        b"Connection: close\r\n\r\n\x89PNG")}
    with ExitStack() as stack:
        same = stack.enter_context(serve({"/ok": html("<p>same host, other port</p>")}))
        other = stack.enter_context(serve(dict(secret), host="127.0.0.2"))
        third = stack.enter_context(serve(dict(secret), host="127.0.0.3"))
        routes = {
            "/go": raw(f"HTTP/1.1 302 Found\r\nLocation: {other.base_url}/secret\r\n"
                       f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode()),
        }
        article = stack.enter_context(serve(routes))
        links = [f"{other.base_url}/secret", f"{third.base_url}/secret",
                 f"http://rebind.test:{other.port}/secret", f"{same.base_url}/ok",
                 f"{article.base_url}/go", f"http://localhost:{article.port}/go"]
        routes["/"] = html(_article(links, f"{third.base_url}/chart.png"))
        yield Hosts(article=article, same_host=same, other=other, third=third)


def test_links_redirects_and_requisites_to_other_private_hosts_are_never_connected(
        hosts: Hosts, tmp_path: Path) -> None:
    signer, _ = make_signer()
    # rebind.test answers with a private address: the check is on the address, not the name.
    resolver = static_resolver({"rebind.test": ["127.0.0.2"], "localhost": ["127.0.0.1"]})
    result = capture(f"{hosts.article.base_url}/", store=tmp_path, signer=signer,
                     resolver=resolver)

    assert hosts.other.connections == []
    assert hosts.third.connections == []
    manifest = result.manifest
    by_url = {link.url: link for link in manifest.links}
    for blocked in (f"{hosts.other.base_url}/secret", f"{hosts.third.base_url}/secret",
                    f"http://rebind.test:{hosts.other.port}/secret",
                    f"http://localhost:{hosts.article.port}/go"):
        link = by_url[blocked]
        assert link.outcome == "skipped", link
        assert link.reason is not None and "loopback address" in link.reason
        assert "--allow-private" in link.reason
    # The redirect hop on the article's own host was fetched; its private target was not.
    via_redirect = by_url[f"{hosts.article.base_url}/go"]
    assert via_redirect.outcome == "skipped"
    assert via_redirect.reason is not None and "127.0.0.2" in via_redirect.reason
    assert len(via_redirect.chain) == 2
    assert "/go" in hosts.article.requests
    # Same host, other port: the article's host is trusted as the user's choice.
    assert by_url[f"{hosts.same_host.base_url}/ok"].outcome == "captured"
    chart = next(r for r in manifest.resources if r.url.endswith("/chart.png"))
    assert chart.outcome == "skipped" and chart.role == "requisite"
    assert chart.response is None and chart.request is None
    # Skips by policy are not failures of the sources.
    assert manifest.state == "COMPLETE", manifest.state_reason
    assert manifest.options.allow_private is False


def test_allow_private_fetches_them(hosts: Hosts, tmp_path: Path) -> None:
    settings = CaptureSettings(allow_private=True)
    resolver = static_resolver({"rebind.test": ["127.0.0.2"], "localhost": ["127.0.0.1"]})
    result = capture(f"{hosts.article.base_url}/", store=tmp_path, settings=settings,
                     resolver=resolver)
    assert hosts.other.connections and hosts.third.connections
    outcomes = {link.url: link.outcome for link in result.manifest.links}
    assert outcomes[f"{hosts.other.base_url}/secret"] == "captured"
    assert outcomes[f"{hosts.article.base_url}/go"] == "captured"
    assert result.manifest.options.allow_private is True


def test_the_url_the_user_gave_is_always_allowed(tmp_path: Path) -> None:
    with serve({"/": html(_article([], "/chart.png")),
                "/chart.png": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n")}, host="127.0.0.3") as site:
        result = capture(f"{site.base_url}/", store=tmp_path)
    assert result.manifest.state == "COMPLETE"
    assert "/chart.png" in site.requests  # same host as the article: allowed too


def test_cli_reports_the_skip_and_allow_private_lifts_it(hosts: Hosts, tmp_path: Path) -> None:
    env = {"PROVENANCE_CONFIG_DIR": str(tmp_path / "config")}
    url = f"{hosts.article.base_url}/"
    done = run_cli("capture", url, "--archive-dir", str(tmp_path / "a"), "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["url"]: row for row in json.loads(done.stdout)["resources"]}
    row = rows[f"{hosts.other.base_url}/secret"]
    assert row["outcome"] == "skipped" and "loopback" in row["reason"]
    assert hosts.other.connections == []

    done = run_cli("capture", url, "--archive-dir", str(tmp_path / "b"), "--json",
                   "--allow-private", env=env)
    assert done.returncode == 0, done.stderr
    secret = f"{hosts.other.base_url}/secret"
    rows_list = json.loads(done.stdout)["resources"]
    assert any(row["final_url"] == secret and row["outcome"] == "captured" for row in rows_list)
    assert hosts.other.connections


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.2", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address it reaches
    ("10.1.2.3", "private"),
    ("192.168.0.1", "private"),
    ("172.16.5.4", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata endpoints live here
    ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "non-global"),  # carrier-grade NAT (RFC 6598)
    ("93.184.215.14", None),
    ("2606:4700::6810:85e5", None),
])
def test_address_kinds(address: str, kind: str | None) -> None:
    # Pure classification: nothing is contacted.
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_guard_compares_hosts_case_and_trailing_dot_insensitively() -> None:
    guard = AddressGuard.for_article("News.Example.")
    assert guard("news.example", "127.0.0.1") is None
    refusal = guard("evil.example", "10.0.0.1")
    assert refusal is not None and "private address 10.0.0.1" in refusal
    assert guard("cdn.example", "93.184.215.14") is None


def test_the_article_host_cannot_rebind_inside_after_a_public_answer() -> None:
    # Pure policy calls, as the recorder makes them before each connection: nothing contacted.
    guard = AddressGuard.for_article("news.example")
    assert guard("news.example", "93.184.215.14", True) is None  # the user's URL: public
    refusal = guard("news.example", "127.0.0.1", False)  # same name, now pointing inside
    assert refusal is not None and "DNS rebinding" in refusal
    assert guard("news.example", "93.184.215.15", False) is None

    intranet = AddressGuard.for_article("wiki.internal")
    assert intranet("wiki.internal", "10.0.0.7", True) is None  # the user chose a local page
    assert intranet("wiki.internal", "10.0.0.8", False) is None  # so its host stays usable
    assert intranet("elsewhere.internal", "10.0.0.9", False) is not None


@pytest.mark.parametrize(("address", "kind"), [
    ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 wrapping 192.168.1.1
    ("fec0::1", "site-local"),
])
def test_ipv6_forms_that_wrap_or_hide_a_local_address(address: str, kind: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind
