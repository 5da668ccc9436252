"""Authenticated captures: credentials are sent where they belong and never stored.

The servers record the headers they receive, so each test can tell what was *sent* (the login
must work) from what was *stored* (the bundle must not carry it). The WARC files are read as a
whole, decompressed, so a secret hiding in any record, warcinfo included, is found.
"""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from helpers import make_signer, run_cli, tool
from provenance.capture.options import CaptureSettings
from provenance.capture.pipeline import CaptureResult, capture
from provenance.capture.secrets import REDACTED, redact_head
from provenance.verify import verify_bundle
from servers import RawRoute, raw, serve

TOKEN = "Bearer TOPSECRET-7f3a"
API_KEY = "KEYSECRET-19c2"
COOKIE = "COOKIESECRET-a41d"
SERVER_COOKIE = "SERVERSECRET-5be0"
SECRETS = (TOKEN, API_KEY, COOKIE, SERVER_COOKIE)


@dataclass
class Site:
    article_url: str
    article_headers: list[dict[str, str]]
    other_headers: list[dict[str, str]]


def _recording(body: str, seen: list[dict[str, str]]) -> RawRoute:
    payload = body.encode()

    def route(handler: BaseHTTPRequestHandler) -> None:
        seen.append({name.lower(): value for name, value in handler.headers.items()})
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            + f"Set-Cookie: sid={SERVER_COOKIE}; HttpOnly; Path=/\r\n".encode()
            + b"Set-Cookie: theme=dark\r\n"
            + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload)
        handler.close_connection = True
    return route


@pytest.fixture
def site() -> Iterator[Site]:
    article_seen: list[dict[str, str]] = []
    other_seen: list[dict[str, str]] = []
    with ExitStack() as stack:
        other = stack.enter_context(serve(
            {"/public": _recording("<p>a public source</p>", other_seen)}, host="127.0.0.2"))
        text = ("Members of the council received the report in advance, which the minutes "
                "of the meeting confirm in some detail. ")
        article = (f"<html><head><title>Members only</title></head><body><article>"
                   f"<h1>Members only</h1><p>{text * 3}</p><p>See <a href=\"/members\">the "
                   f"members' page</a> and <a href=\"{other.base_url}/public\">a public "
                   f"source</a>.</p><p>{text * 2}</p></article></body></html>")
        routes = {"/": _recording(article, article_seen),
                  "/members": _recording("<p>for members</p>", article_seen)}
        server = stack.enter_context(serve(routes))
        yield Site(article_url=f"{server.base_url}/", article_headers=article_seen,
                   other_headers=other_seen)


def _cookie_file(directory: Path) -> Path:
    path = directory / "cookies.txt"
    # Netscape format: domain, include-subdomains, path, secure, expiry (0 = session), name,
    # value. One cookie for the article's host, one for an unrelated host.
    path.write_text("# Netscape HTTP Cookie File\n"
                    f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{COOKIE}\n"
                    "127.0.0.9\tFALSE\t/\tFALSE\t0\telsewhere\tnot-for-these-hosts\n")
    return path


def _authenticated(tmp_path: Path, **extra: object) -> CaptureSettings:
    return CaptureSettings(
        extra_headers=(("Authorization", TOKEN), ("X-Api-Key", API_KEY),
                       ("Accept-Language", "de")),
        cookie_file=_cookie_file(tmp_path), allow_private=True, **extra)  # type: ignore[arg-type]


def _warc_text(result: CaptureResult) -> bytes:
    (warc,) = (result.bundle / "archive").glob("*.warc.gz")
    return gzip.decompress(warc.read_bytes())


def test_credentials_are_sent_to_their_host_and_redacted_everywhere(
        site: Site, tmp_path: Path) -> None:
    signer, _ = make_signer()
    result = capture(site.article_url, store=tmp_path / "store", signer=signer,
                     settings=_authenticated(tmp_path))

    # Sent: the article's host got the header credentials and its cookie ...
    assert len(site.article_headers) == 2
    for seen in site.article_headers:
        assert seen["authorization"] == TOKEN and seen["x-api-key"] == API_KEY
        assert seen["cookie"] == f"session={COOKIE}"
    # ... the other host got neither the --header fields nor a cookie that is not its own.
    (other,) = site.other_headers
    assert "authorization" not in other and "x-api-key" not in other
    assert "cookie" not in other

    # Stored: no secret in any record, the manifest, or the signature files.
    warc = _warc_text(result)
    for secret in SECRETS:
        assert secret.encode() not in warc, secret
        for path in (result.bundle / "provenance").iterdir():
            assert secret.encode() not in path.read_bytes(), (secret, path)
    assert b"Accept-Language: de" in warc  # content negotiation is evidence, not a secret
    assert b"Set-Cookie: theme=dark" not in warc
    assert warc.count(b"Authorization: " + REDACTED) == 2
    assert b"Provenance-Redacted: Authorization, X-Api-Key, Cookie\r\n" in warc
    assert b"Provenance-Redacted: Set-Cookie\r\n" in warc

    manifest = result.manifest
    article = next(r for r in manifest.resources if r.role == "article")
    assert article.redacted_request_headers == ["Authorization", "X-Api-Key", "Cookie"]
    assert article.redacted_response_headers == ["Set-Cookie", "Set-Cookie"]
    public = next(r for r in manifest.resources if r.url.endswith("/public"))
    assert public.redacted_request_headers is None  # nothing secret was sent there
    assert public.redacted_response_headers == ["Set-Cookie", "Set-Cookie"]
    assert manifest.options.request_headers == ["Authorization", "X-Api-Key",
                                                "Accept-Language"]
    assert manifest.options.cookie_file is True and manifest.options.keep_secrets is False

    # Redacted records are still well-formed, digest-correct records.
    assert verify_bundle(result.bundle, trusted=(signer.fingerprint,)).verdict == "VERIFIED"
    (warc_path,) = (result.bundle / "archive").glob("*.warc.gz")
    checked = subprocess.run([tool("warcio"), "check", str(warc_path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_keep_secrets_keeps_them(site: Site, tmp_path: Path) -> None:
    result = capture(site.article_url, store=tmp_path / "store",
                     settings=_authenticated(tmp_path, keep_secrets=True))
    warc = _warc_text(result)
    for secret in SECRETS:
        assert secret.encode() in warc, secret
    assert b"Provenance-Redacted" not in warc
    assert result.manifest.options.keep_secrets is True
    # Even then, values never go into the manifest: it names the headers only.
    assert TOKEN.encode() not in result.manifest_bytes


def test_anonymous_captures_keep_set_cookie(site: Site, tmp_path: Path) -> None:
    result = capture(site.article_url, store=tmp_path / "store",
                     settings=CaptureSettings(allow_private=True))
    warc = _warc_text(result)
    assert SERVER_COOKIE.encode() in warc  # our own anonymous session: evidence, not a secret
    assert b"Provenance-Redacted" not in warc
    assert "cookie" not in site.article_headers[0]


def test_cli_options_and_bad_input(site: Site, tmp_path: Path) -> None:
    env = {"PROVENANCE_CONFIG_DIR": str(tmp_path / "config")}
    store = tmp_path / "store"
    done = run_cli("capture", site.article_url, "--archive-dir", str(store), "--quiet",
                   "--header", f"Authorization: {TOKEN}", "--cookie-file",
                   str(_cookie_file(tmp_path)), "--links", "none", env=env)
    assert done.returncode == 0, done.stderr
    assert site.article_headers[-1]["authorization"] == TOKEN
    bundle = Path(done.stdout.strip())
    (warc,) = (bundle / "archive").glob("*.warc.gz")
    assert TOKEN.encode() not in gzip.decompress(warc.read_bytes())

    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\x00\x01 not cookies\n")
    for args, expected in (
        (("--header", "no colon here"), "expected 'Name: value'"),
        (("--header", "X-Evil: a\r\nInjected: yes"), "printable ASCII"),
        (("--header", "Host: elsewhere"), "cannot be overridden"),
        (("--cookie-file", str(garbage)), "not a Netscape cookies.txt"),
    ):
        done = run_cli("capture", site.article_url, "--archive-dir", str(tmp_path / "bad"),
                       *args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "bad").exists()


def test_redact_head_keeps_everything_but_the_values() -> None:
    head = (b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Folded: x\r\nSET-COOKIE: b=2;\r\n"
            b" folded=continuation\r\nContent-Length: 0\r\n\r\n")
    stored, names = redact_head(head, frozenset({"set-cookie"}))
    assert names == ("Set-Cookie", "SET-COOKIE")
    assert stored == (b"HTTP/1.1 200 OK\r\nSet-Cookie: [redacted]\r\nX-Folded: x\r\n"
                      b"SET-COOKIE: [redacted]\r\nContent-Length: 0\r\n\r\n")
    assert redact_head(head, frozenset()) == (head, ())


@pytest.mark.parametrize("shape", ["bare-lf", "early-hints", "trailer"])
def test_set_cookie_is_redacted_in_every_place_a_server_can_put_it(
        shape: str, tmp_path: Path) -> None:
    """Bare-LF heads, a 103 Early Hints head before the real one, a chunked trailer."""
    body = b"<p>the page</p>"
    secret = f"sid={SERVER_COOKIE}".encode()
    if shape == "bare-lf":
        response = (b"HTTP/1.1 200 OK\nContent-Type: text/html\nSet-Cookie: " + secret +
                    b"\nContent-Length: " + str(len(body)).encode() + b"\n\n" + body)
    elif shape == "early-hints":
        response = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                    b"Set-Cookie: early=" + secret + b"\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: " + secret +
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    else:
        response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    b"Transfer-Encoding: chunked\r\nTrailer: Set-Cookie\r\n\r\n"
                    + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n"
                    b"Set-Cookie: " + secret + b"\r\nX-Trailer-Note: kept\r\n\r\n")
    signer, _ = make_signer()
    with serve({"/": raw(response)}) as server:
        result = capture(f"{server.base_url}/", store=tmp_path / "store", signer=signer,
                         settings=CaptureSettings(extra_headers=(("Authorization", TOKEN),),
                                                  links="none", requisites=False))
    warc = _warc_text(result)
    assert SERVER_COOKIE.encode() not in warc
    assert b"Provenance-Redacted: Set-Cookie" in warc
    article = result.manifest.resources[0]
    assert article.redacted_response_headers and "Set-Cookie" in article.redacted_response_headers
    # The entity is still described right: 15 bytes of body, whatever came before or after.
    assert (article.status, article.bytes) == (200, len(body))
    if shape == "trailer":
        assert b"X-Trailer-Note: kept" in warc
    assert verify_bundle(result.bundle, trusted=(signer.fingerprint,)).verdict == "VERIFIED"
    (warc_path,) = (result.bundle / "archive").glob("*.warc.gz")
    checked = subprocess.run([tool("warcio"), "check", str(warc_path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_header_credentials_stay_on_the_articles_origin(tmp_path: Path) -> None:
    """Same host, other port: another origin (RFC 6454), so no --header fields go there."""
    other_seen: list[dict[str, str]] = []
    article_seen: list[dict[str, str]] = []
    with serve({"/x": _recording("<p>other port</p>", other_seen)}) as other:
        text = "The minutes confirm the vote in detail, line by line, with every amendment. "
        page = (f"<html><body><article><h1>Origins</h1><p>{text * 4}</p><p>See "
                f"<a href=\"{other.base_url}/x\">the other port</a>.</p></article></body></html>")
        with serve({"/": _recording(page, article_seen)}) as server:
            capture(f"{server.base_url}/", store=tmp_path / "store",
                    settings=CaptureSettings(extra_headers=(("Authorization", TOKEN),),
                                             requisites=False))
    assert article_seen[0]["authorization"] == TOKEN
    (seen,) = other_seen
    assert "authorization" not in seen


def test_credentials_in_urls_are_refused_and_never_stored(tmp_path: Path) -> None:
    done = run_cli("capture", "http://alice:URLSECRET@127.0.0.1:9/x", "--archive-dir",
                   str(tmp_path / "refused"))
    assert done.returncode == 2
    assert "credentials in a URL" in done.stderr and "URLSECRET" not in done.stderr
    assert not (tmp_path / "refused").exists()

    text = "The minutes confirm the vote in detail, line by line, with every amendment. "
    page = (f"<html><body><article><h1>Userinfo</h1><p>{text * 4}</p><p>See <a href="
            f"\"http://bob:LINKSECRET@127.0.0.1:9/private\">a private page</a>.</p></article>"
            f"</body></html>")
    with serve({"/": _recording(page, [])}) as server:
        result = capture(f"{server.base_url}/", store=tmp_path / "store",
                         settings=CaptureSettings(requisites=False))
    (link,) = result.manifest.links
    assert link.outcome == "skipped" and "credentials in a URL" in (link.reason or "")
    # The link is listed as the page wrote it (that is evidence, the page holds it too), but
    # it was never fetched, and the reason does not repeat the password.
    assert "LINKSECRET" not in (link.reason or "")
    assert len(result.manifest.resources) == 1


def test_a_cookie_http_cannot_carry_fails_its_fetch_before_anything_is_sent(
        site: Site, tmp_path: Path) -> None:
    """A cookies.txt value outside visible ASCII: one clear reason, and no request at all."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsesión-ñ\n", encoding="utf-8")
    result = capture(site.article_url, store=tmp_path / "store",
                     settings=CaptureSettings(cookie_file=cookies, requisites=False))
    (article,) = [r for r in result.manifest.resources if r.role == "article"]
    assert article.outcome == "failed"
    assert article.reason == ("cannot send the request: its 'Cookie' header field is not valid "
                              "HTTP (only visible ASCII, no line breaks, no space at either end)")
    assert result.manifest.state == "FAILED"
    assert site.article_headers == []  # the server never saw a request
