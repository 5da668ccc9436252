"""RFC 3161 timestamps: requests, stored tokens and verification against two loopback TSAs."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc3161_client
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provenance import timestamps
from provenance.errors import (
    BundleFormatError,
    OperationalError,
    TimestampError,
    UsageError,
)
from provenance.timestamps import (
    NO_ROOT_DETAIL,
    TimestampToken,
    list_tokens,
    load_roots,
    next_token_paths,
    request_timestamp,
    verify_timestamp,
    write_token,
)
from tsa import (
    TEST_POLICY,
    BuiltinTSA,
    LoopbackPKI,
    Mode,
    OpenSSLTSA,
    build_response,
    make_pki,
    serve_builtin_tsa,
    serve_openssl_tsa,
    status_only_response,
)

UA = "provenance-tests/0"
SIGNATURE = (b"-----BEGIN SSH SIGNATURE-----\n"
             b"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgdGVzdCBrZXkgZm9yIHRpbWVzdGFtcHMh\n"
             b"-----END SSH SIGNATURE-----\n")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: never route a test request through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki() -> LoopbackPKI:
    return make_pki()


@pytest.fixture(scope="module")
def other_pki() -> LoopbackPKI:
    return make_pki(root_name="someone else's root", tsa_name="someone else's TSA")


@pytest.fixture
def builtin_tsa(pki: LoopbackPKI) -> Iterator[BuiltinTSA]:
    with serve_builtin_tsa(pki) as tsa:
        yield tsa
    assert not tsa.errors


@pytest.fixture
def openssl_tsa(tmp_path: Path) -> Iterator[OpenSSLTSA]:
    with serve_openssl_tsa(tmp_path / "openssl-tsa") as tsa:
        yield tsa
    assert not tsa.errors


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "provenance").mkdir(parents=True)
    (root / "archive").mkdir()
    (root / "provenance" / "manifest.json").write_bytes(b'{"_type":"test"}')
    (root / "provenance" / "manifest.json.sig").write_bytes(SIGNATURE)
    return root


def stamp(url: str, data: bytes = SIGNATURE, *, timeout: float = 15,
          ca_bundle: Path | None = None) -> TimestampToken:
    return request_timestamp(data, url, timeout=timeout, ca_bundle=ca_bundle, user_agent=UA)


def stored(bundle: Path, n: int) -> tuple[bytes, bytes]:
    directory = bundle / "provenance"
    return ((directory / f"timestamp-{n}.tsq").read_bytes(),
            (directory / f"timestamp-{n}.tsr").read_bytes())


def subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


# ---------------------------------------------------------------------------------------------
# Round trips with the built-in TSA


def test_builtin_round_trip_passes_with_the_right_root(builtin_tsa: BuiltinTSA, pki: LoopbackPKI,
                                                       bundle: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = stamp(builtin_tsa.url)
    assert token.response_der == builtin_tsa.responses[0]
    assert token.request_der == builtin_tsa.requests[0]
    headers = builtin_tsa.request_headers[0]
    assert headers["Content-Type"] == "application/timestamp-query"
    assert headers["User-Agent"] == UA
    assert token.tsa_url == builtin_tsa.url
    assert token.gen_time.tzinfo is not None and token.gen_time >= before - timedelta(seconds=1)
    assert token.policy == TEST_POLICY
    assert token.tsa_name == subject(pki.tsa_cert)  # no TSTInfo.tsa: the signer's subject
    assert not token.der_repaired
    request = rfc3161_client.decode_timestamp_response(token.response_der)
    assert token.nonce == request.tst_info.nonce and token.serial == request.tst_info.serial_number

    assert write_token(bundle, token) == ("provenance/timestamp-1.tsr",
                                          "provenance/timestamp-1.tsq")
    tsq, tsr = stored(bundle, 1)
    assert (tsq, tsr) == (token.request_der, token.response_der)
    check = verify_timestamp(tsq, tsr, (bundle / timestamps.STAMPED_PATH).read_bytes(),
                             [pki.root_pem])
    assert check.status == "PASS", check.detail
    assert check.gen_time == token.gen_time
    assert check.tsa_name == token.tsa_name
    assert check.embedded_chain_subjects == (subject(pki.tsa_cert), subject(pki.root_cert))
    assert "chain verified" in check.detail


def test_without_roots_a_sound_token_is_skipped_never_passed(builtin_tsa: BuiltinTSA) -> None:
    token = stamp(builtin_tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE, [])
    assert check.status == "SKIP"
    assert check.detail == NO_ROOT_DETAIL
    assert check.gen_time == token.gen_time


def test_an_unrelated_root_cannot_judge_the_token(
        builtin_tsa: BuiltinTSA, pki: LoopbackPKI, other_pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [other_pki.root_pem])
    # Another TSA's root says nothing about this token: SKIP, never PASS.
    assert check.status == "SKIP"
    assert "none of the configured TSA roots issued" in check.detail
    # The embedded root is reported, and never used as a trust anchor.
    assert subject(pki.root_cert) in check.embedded_chain_subjects


def test_a_root_impostor_fails_even_though_the_token_embeds_its_own(
        builtin_tsa: BuiltinTSA, pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    impostor = make_pki()  # same names as the real root, another key
    assert impostor.root_cert.subject == pki.root_cert.subject
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [impostor.root_pem])
    assert check.status == "FAIL"
    assert check.detail.endswith("configured TSA root(s): "
                                 "self-signed certificate in certificate chain")


@pytest.mark.parametrize("roots", ["none", "right"])
def test_altered_signature_bytes_fail(builtin_tsa: BuiltinTSA, pki: LoopbackPKI,
                                      roots: str) -> None:
    token = stamp(builtin_tsa.url)
    altered = SIGNATURE.replace(b"dGVzdC", b"dGVzdD")
    check = verify_timestamp(token.request_der, token.response_der, altered,
                             [pki.root_pem] if roots == "right" else [])
    assert check.status == "FAIL"
    assert "imprint does not match" in check.detail


def test_a_nonce_mismatch_between_stored_request_and_token_fails(builtin_tsa: BuiltinTSA,
                                                                  pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    other_request = (rfc3161_client.TimestampRequestBuilder().data(SIGNATURE)
                     .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256).build())
    assert other_request.nonce != token.nonce
    for roots in ([], [pki.root_pem]):
        check = verify_timestamp(other_request.as_bytes(), token.response_der, SIGNATURE, roots)
        assert check.status == "FAIL"
        assert check.detail.startswith("nonce mismatch")


def test_a_stored_request_for_other_data_fails(builtin_tsa: BuiltinTSA) -> None:
    token = stamp(builtin_tsa.url)
    other = stamp(builtin_tsa.url, b"other bytes")
    check = verify_timestamp(other.request_der, token.response_der, SIGNATURE, [])
    assert check.status == "FAIL"
    assert "differs from the stored request" in check.detail


def test_without_a_stored_request_the_nonce_is_not_checked(builtin_tsa: BuiltinTSA,
                                                           pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    check = verify_timestamp(None, token.response_der, SIGNATURE, [pki.root_cert])
    assert check.status == "PASS"
    assert "nonce not checked" in check.detail


@pytest.mark.parametrize("response", [b"", b"\x30\x00", b"not DER at all", b"\x30\x82\xff"])
def test_malformed_tokens_fail(response: bytes, pki: LoopbackPKI) -> None:
    check = verify_timestamp(None, response, SIGNATURE, [pki.root_pem])
    assert check.status == "FAIL"
    assert check.detail.startswith("timestamp token is not a valid TimeStampResp")


def test_a_flipped_byte_inside_the_signed_content_fails(builtin_tsa: BuiltinTSA,
                                                        pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    der = bytearray(token.response_der)
    # Flip a byte of the serial number inside TSTInfo: still parses, signature breaks.
    serial = token.serial.to_bytes((token.serial.bit_length() + 8) // 8, "big")
    at = bytes(der).index(serial) + len(serial) - 1
    der[at] ^= 0x01
    check = verify_timestamp(token.request_der, bytes(der), SIGNATURE, [pki.root_pem])
    assert check.status == "FAIL"


def test_a_malformed_stored_request_fails(builtin_tsa: BuiltinTSA) -> None:
    token = stamp(builtin_tsa.url)
    check = verify_timestamp(b"\x30\x03abc", token.response_der, SIGNATURE, [])
    assert check.status == "FAIL"
    assert check.detail.startswith("stored timestamp request is not a valid TimeStampReq")


def test_a_stored_rejection_fails(pki: LoopbackPKI) -> None:
    rejection = status_only_response("rejection", "unsupported policy", {"unaccepted_policy"})
    check = verify_timestamp(None, rejection, SIGNATURE, [pki.root_pem])
    assert check.status == "FAIL"
    assert check.detail == ("timestamp response was not granted: status rejection "
                            "(unsupported policy; failInfo unacceptedPolicy)")


def test_an_intermediate_embedded_in_the_token_is_used_untrusted(tmp_path: Path) -> None:
    chained = make_pki(with_intermediate=True)
    with serve_builtin_tsa(chained) as tsa:
        token = stamp(tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [chained.root_pem])
    assert check.status == "PASS", check.detail
    assert len(check.embedded_chain_subjects) == 3

    # Without the intermediate in the token, the root alone cannot be reached: not checkable.
    with serve_builtin_tsa(chained, embed_chain=False) as tsa:
        token = stamp(tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [chained.root_pem])
    assert check.status == "SKIP"


def test_a_tsa_certificate_without_critical_eku_fails() -> None:
    sloppy = make_pki(eku_critical=False)
    with serve_builtin_tsa(sloppy) as tsa:
        token = stamp(tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [sloppy.root_pem])
    assert check.status == "FAIL"
    assert check.detail.endswith("root(s): unsuitable certificate purpose")


def test_the_chain_is_checked_at_gen_time_not_now() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    expired = make_pki(not_before=now - timedelta(days=400), not_after=now - timedelta(days=30))
    with serve_builtin_tsa(expired, gen_time=now - timedelta(days=100)) as tsa:
        token = stamp(tsa.url)
    assert token.gen_time == now - timedelta(days=100)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [expired.root_pem])
    assert check.status == "PASS", check.detail

    # A genTime outside the TSA certificate's validity is refused.
    with serve_builtin_tsa(expired, gen_time=now) as tsa:
        token = stamp(tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [expired.root_pem])
    assert check.status == "FAIL"


def test_tsa_field_names_the_tsa(pki: LoopbackPKI) -> None:
    with serve_builtin_tsa(pki, tsa_name_field=True) as tsa:
        token = stamp(tsa.url)
    assert token.tsa_name == subject(pki.tsa_cert)


def test_rsa_tsa_round_trip() -> None:
    rsa_pki = make_pki(key_type="rsa")
    with serve_builtin_tsa(rsa_pki) as tsa:
        token = stamp(tsa.url)
    check = verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                             [rsa_pki.root_pem])
    assert check.status == "PASS", check.detail


def test_roots_accept_certificates_and_several_pems(builtin_tsa: BuiltinTSA, pki: LoopbackPKI,
                                                    other_pki: LoopbackPKI) -> None:
    token = stamp(builtin_tsa.url)
    both = other_pki.root_pem + pki.root_pem
    choices: list[list[x509.Certificate | bytes]] = [
        [both], [pki.root_cert, pki.root_pem], [other_pki.root_cert, pki.root_cert]]
    for roots in choices:
        check = verify_timestamp(token.request_der, token.response_der, SIGNATURE, roots)
        assert check.status == "PASS", check.detail
    with pytest.raises(UsageError):
        verify_timestamp(token.request_der, token.response_der, SIGNATURE, [b"not a cert"])


# ---------------------------------------------------------------------------------------------
# The openssl-backed TSA: an unsorted SET OF certificates


def test_openssl_tsa_unsorted_set_is_accepted_and_stored_unchanged(
        openssl_tsa: OpenSSLTSA, other_pki: LoopbackPKI, bundle: Path) -> None:
    token = stamp(openssl_tsa.url)
    sent = openssl_tsa.responses[0]
    # The precondition this test exists for: the strict parser rejects what OpenSSL sent.
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        rfc3161_client.decode_timestamp_response(sent)
    assert token.der_repaired
    assert token.response_der == sent
    assert token.policy == TEST_POLICY
    # openssl's "tsa_name = yes" fills TSTInfo.tsa with the signer's subject.
    assert token.tsa_name == subject(openssl_tsa.pki.tsa_cert)

    write_token(bundle, token)
    tsq, tsr = stored(bundle, 1)
    assert tsr == sent  # byte-identical on disk
    check = verify_timestamp(tsq, tsr, SIGNATURE, [openssl_tsa.pki.root_pem])
    assert check.status == "PASS", check.detail
    assert check.der_repaired
    assert verify_timestamp(tsq, tsr, SIGNATURE, []).status == "SKIP"
    assert verify_timestamp(tsq, tsr, SIGNATURE, [other_pki.root_pem]).status == "SKIP"
    assert verify_timestamp(tsq, tsr, SIGNATURE + b"\n",
                            [openssl_tsa.pki.root_pem]).status == "FAIL"
    other = stamp(openssl_tsa.url)
    check = verify_timestamp(other.request_der, tsr, SIGNATURE, [openssl_tsa.pki.root_pem])
    assert check.status == "FAIL" and check.detail.startswith("nonce mismatch")


# ---------------------------------------------------------------------------------------------
# An independent verifier: openssl ts -verify


def openssl_verify(data: Path, tsr: Path, root: Path,
                   *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(data), "-in", str(tsr), "-CAfile", str(root),
         *extra], capture_output=True, text=True, timeout=60, check=False)


def test_openssl_ts_verify_accepts_a_builtin_token(builtin_tsa: BuiltinTSA, pki: LoopbackPKI,
                                                   bundle: Path, tmp_path: Path) -> None:
    token = stamp(builtin_tsa.url, (bundle / timestamps.STAMPED_PATH).read_bytes())
    tsr_rel, tsq_rel = write_token(bundle, token)
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root_pem)
    signature = bundle / timestamps.STAMPED_PATH

    ok = openssl_verify(signature, bundle / tsr_rel, root)
    assert ok.returncode == 0, ok.stderr
    assert "Verification: OK" in ok.stdout
    # The stored request lets openssl check the nonce as well.
    with_query = subprocess.run(
        ["openssl", "ts", "-verify", "-queryfile", str(bundle / tsq_rel),
         "-in", str(bundle / tsr_rel), "-CAfile", str(root)],
        capture_output=True, text=True, timeout=60, check=False)
    assert with_query.returncode == 0, with_query.stderr

    altered = tmp_path / "altered.sig"
    altered.write_bytes(signature.read_bytes() + b" ")
    bad = openssl_verify(altered, bundle / tsr_rel, root)
    assert bad.returncode != 0
    assert "Verification: FAILED" in bad.stdout


# ---------------------------------------------------------------------------------------------
# Misbehaving TSAs


MISBEHAVIOURS: list[tuple[Mode, str]] = [
    ("http500", r"^TSA http://127\.0\.0\.1:\d+/tsr answered HTTP 500"),
    ("garbage", r"response is not a valid TimeStampResp: "),
    ("html", r"answered with Content-Type text/html, not application/timestamp-reply$"),
    ("wrong_imprint", r"response imprint does not match the data sent$"),
    ("wrong_nonce", r"response nonce mismatch: sent \d+, got \d+$"),
    ("no_nonce", r"response nonce mismatch: sent \d+, got None$"),
    ("rejection",
     r"refused: status rejection \(unsupported policy; failInfo unacceptedPolicy\)$"),
    ("waiting", r"refused: status waiting$"),
    ("slow", r"did not answer within 0\.3 s$"),
    ("redirect", r"answered HTTP 302 \(redirect to http://127\.0\.0\.1:9/elsewhere\); "
                 r"redirects are not followed"),
    ("oversize", r"response is larger than 1048576 bytes$"),
    ("no_certs", r"response carries no certificates although certReq was set$"),
]


@pytest.mark.parametrize(("mode", "message"), MISBEHAVIOURS, ids=[m for m, _ in MISBEHAVIOURS])
def test_each_misbehaviour_is_a_clear_timestamp_error(builtin_tsa: BuiltinTSA, mode: Mode,
                                                      message: str) -> None:
    builtin_tsa.mode = mode
    with pytest.raises(TimestampError) as caught:
        stamp(builtin_tsa.url, timeout=0.3)
    text = str(caught.value)
    assert re.search(message, text), text
    assert "\n" not in text
    assert text.startswith(f"TSA {builtin_tsa.url} ")
    assert isinstance(caught.value, OperationalError) and caught.value.exit_code == 3


def test_https_tsa_with_a_ca_bundle(tmp_path: Path, pki: LoopbackPKI) -> None:
    with serve_builtin_tsa(pki, tls_dir=tmp_path / "tls") as tsa:
        assert tsa.url.startswith("https://127.0.0.1:")
        assert tsa.tls_ca is not None
        token = stamp(tsa.url, ca_bundle=tsa.tls_ca)
        assert verify_timestamp(token.request_der, token.response_der, SIGNATURE,
                                [pki.root_pem]).status == "PASS"
        with pytest.raises(TimestampError, match=r"unreachable: TLS certificate not trusted"):
            stamp(tsa.url)  # the system CAs do not know the loopback server's CA
    with pytest.raises(UsageError, match="cannot use CA bundle"):
        stamp("https://127.0.0.1:9/tsr", ca_bundle=tmp_path / "missing.pem")


def test_an_unreachable_tsa_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tsr"
    with pytest.raises(TimestampError, match=rf"^TSA {re.escape(url)} unreachable: "
                                             "connection refused$"):
        stamp(url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/tsr", "file:///etc/passwd", "127.0.0.1:80",
                                 "http://user:secret@127.0.0.1/tsr", "http://127.0.0.1:99999/"])
def test_unusable_tsa_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        stamp(url)
    assert "secret" not in str(caught.value)


def test_a_token_built_for_other_data_is_not_accepted(pki: LoopbackPKI) -> None:
    request = (rfc3161_client.TimestampRequestBuilder().data(b"other")
               .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256).build())
    response = build_response(request.as_bytes(), pki)
    assert verify_timestamp(None, response, SIGNATURE, [pki.root_pem]).status == "FAIL"


# ---------------------------------------------------------------------------------------------
# Storage


def test_write_token_never_overwrites(builtin_tsa: BuiltinTSA, bundle: Path) -> None:
    manifest = (bundle / "provenance" / "manifest.json").read_bytes()
    first, second = stamp(builtin_tsa.url), stamp(builtin_tsa.url)
    assert write_token(bundle, first)[0] == "provenance/timestamp-1.tsr"
    assert write_token(bundle, second)[0] == "provenance/timestamp-2.tsr"
    assert stored(bundle, 1) == (first.request_der, first.response_der)
    assert stored(bundle, 2) == (second.request_der, second.response_der)
    assert (bundle / "provenance" / "manifest.json").read_bytes() == manifest
    assert (bundle / timestamps.STAMPED_PATH).read_bytes() == SIGNATURE
    assert list_tokens(bundle) == [
        (bundle / "provenance" / "timestamp-1.tsr", bundle / "provenance" / "timestamp-1.tsq"),
        (bundle / "provenance" / "timestamp-2.tsr", bundle / "provenance" / "timestamp-2.tsq"),
    ]
    assert not list((bundle / "provenance").glob(".timestamp-*"))


def test_write_token_skips_a_number_taken_meanwhile(builtin_tsa: BuiltinTSA, bundle: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    token = stamp(builtin_tsa.url)
    directory = bundle / "provenance"
    (directory / "timestamp-5.tsr").write_bytes(b"someone else's token")
    real = timestamps.next_token_paths
    calls: list[int] = []

    def racing(path: Path) -> tuple[Path, Path]:
        calls.append(1)
        if len(calls) == 1:  # as if another writer took 5 after we looked
            return directory / "timestamp-5.tsr", directory / "timestamp-5.tsq"
        return real(path)

    monkeypatch.setattr(timestamps, "next_token_paths", racing)
    assert write_token(bundle, token) == ("provenance/timestamp-6.tsr",
                                          "provenance/timestamp-6.tsq")
    assert (directory / "timestamp-5.tsr").read_bytes() == b"someone else's token"
    assert not (directory / "timestamp-5.tsq").exists()  # our half-written pair was undone
    assert not list(directory.glob(".timestamp-*"))


def test_next_token_paths_counts_orphans_and_gaps(bundle: Path) -> None:
    directory = bundle / "provenance"
    assert next_token_paths(bundle) == (directory / "timestamp-1.tsr",
                                        directory / "timestamp-1.tsq")
    (directory / "timestamp-1.tsr").write_bytes(b"x")
    (directory / "timestamp-3.tsq").write_bytes(b"x")  # a request whose response never came
    assert next_token_paths(bundle)[0] == directory / "timestamp-4.tsr"


def test_list_tokens_sorts_by_number_and_lists_odd_names_last(bundle: Path) -> None:
    directory = bundle / "provenance"
    for name in ("timestamp-10.tsr", "timestamp-2.tsr", "timestamp-2.tsq", "timestamp-1.tsr",
                 "timestamp-extra.tsr", "timestamp-01.tsr", "notes.tsr"):
        (directory / name).write_bytes(b"x")
    (directory / "timestamp-7.tsr").symlink_to(directory / "timestamp-1.tsr")
    assert list_tokens(bundle) == [
        (directory / "timestamp-1.tsr", None),
        (directory / "timestamp-2.tsr", directory / "timestamp-2.tsq"),
        (directory / "timestamp-10.tsr", None),
        (directory / "timestamp-01.tsr", None),
        (directory / "timestamp-extra.tsr", None),
    ]


def test_a_directory_that_is_not_a_bundle(tmp_path: Path, builtin_tsa: BuiltinTSA) -> None:
    assert list_tokens(tmp_path) == []
    with pytest.raises(BundleFormatError):
        next_token_paths(tmp_path)
    with pytest.raises(BundleFormatError):
        write_token(tmp_path, stamp(builtin_tsa.url))


# ---------------------------------------------------------------------------------------------
# Roots from files


def test_load_roots_reads_one_or_more_pem_certificates(tmp_path: Path, pki: LoopbackPKI,
                                                       other_pki: LoopbackPKI) -> None:
    one = tmp_path / "one.pem"
    one.write_bytes(pki.root_pem)
    two = tmp_path / "two.pem"
    two.write_bytes(b"a comment line\n" + other_pki.root_pem + pki.root_pem)
    roots = load_roots([one, two])
    assert {subject(c) for c in roots} == {subject(pki.root_cert), subject(other_pki.root_cert)}
    assert len(roots) == 2  # duplicates collapse


def test_load_roots_rejects_unreadable_and_non_pem_files(tmp_path: Path, pki: LoopbackPKI) -> None:
    with pytest.raises(UsageError, match="cannot read TSA root"):
        load_roots([tmp_path / "missing.pem"])
    der = tmp_path / "root.der"
    der.write_bytes(pki.root_cert.public_bytes(serialization.Encoding.DER))
    with pytest.raises(UsageError, match="contains no PEM certificate"):
        load_roots([der])
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(UsageError, match="is not a valid PEM certificate"):
        load_roots([broken])
    with pytest.raises(UsageError, match="cannot read TSA root"):
        load_roots([tmp_path])
