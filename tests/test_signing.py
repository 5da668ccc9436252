"""SSHSIG signatures and key encodings, checked against the real ssh-keygen and openssl."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import signing
from provenance.errors import (
    BundleFormatError,
    SignatureFormatError,
    SignatureInvalidError,
    SigningKeyError,
    UsageError,
    VerificationError,
)
from provenance.signing import (
    SIGNATURE_NAMESPACE,
    allowed_signers_line,
    fingerprint,
    generate_private_key,
    load_private_key,
    parse_signature,
    private_key_to_openssh,
    public_key_from_openssh,
    public_key_openssh,
    public_key_pem,
    public_key_raw,
    raw_signature,
    sign_message,
    verify_message,
)

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None or shutil.which("openssl") is None,
    reason="needs the ssh-keygen and openssl binaries",
)

MESSAGE = b'{"manifest":"canonical bytes","n":1}'
PASSPHRASE = b"correct horse battery staple"


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, timeout=60, check=False
    )


def write_private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def ssh_sign(key_path: Path, message_path: Path, *extra: str) -> bytes:
    result = run(
        "ssh-keygen", "-Y", "sign", "-f", key_path, "-n", SIGNATURE_NAMESPACE, *extra, message_path
    )
    assert result.returncode == 0, result.stderr
    sig_path = message_path.with_name(message_path.name + ".sig")
    data = sig_path.read_bytes()
    sig_path.unlink()
    return data


def ssh_verify(tmp_path: Path, pub_line_principal: str, sig: bytes, message: bytes) -> int:
    signers = tmp_path / "allowed_signers"
    signers.write_text(pub_line_principal + "\n")
    sig_path = tmp_path / "verify.sig"
    sig_path.write_bytes(sig)
    result = run(
        "ssh-keygen",
        "-Y",
        "verify",
        "-f",
        signers,
        "-I",
        "alice@example.org",
        "-n",
        SIGNATURE_NAMESPACE,
        "-s",
        sig_path,
        stdin=message,
    )
    return result.returncode


# --------------------------------------------------------------------------- interop


def test_our_signature_verifies_with_ssh_keygen(tmp_path: Path) -> None:
    key = generate_private_key()
    line = allowed_signers_line(key.public_key(), "alice@example.org")
    sig = sign_message(key, MESSAGE)
    assert ssh_verify(tmp_path, line, sig, MESSAGE) == 0
    tampered = bytearray(MESSAGE)
    tampered[5] ^= 0x01
    assert ssh_verify(tmp_path, line, sig, bytes(tampered)) != 0


def test_ssh_keygen_refuses_our_signature_for_another_namespace(tmp_path: Path) -> None:
    key = generate_private_key()
    line = allowed_signers_line(key.public_key(), "alice@example.org")
    sig = sign_message(key, MESSAGE, namespace="file")
    assert ssh_verify(tmp_path, line, sig, MESSAGE) != 0


@pytest.mark.parametrize("message", [b"", b"x", MESSAGE, bytes(range(256)) * 4099])
def test_identical_to_ssh_keygen_and_cross_verifies(tmp_path: Path, message: bytes) -> None:
    key = generate_private_key()
    key_path = write_private(tmp_path / "id_ed25519", private_key_to_openssh(key, None))
    msg_path = tmp_path / "msg"
    msg_path.write_bytes(message)
    theirs = ssh_sign(key_path, msg_path)
    ours = sign_message(key, message)
    assert ours == theirs
    assert ours.startswith(b"-----BEGIN SSH SIGNATURE-----\n")
    assert ours.endswith(b"\n-----END SSH SIGNATURE-----\n")
    verified = verify_message(theirs, message)
    assert verified.fingerprint == fingerprint(key.public_key())
    assert verified.public_key_raw == public_key_raw(key.public_key())
    assert verified.namespace == SIGNATURE_NAMESPACE
    assert verified.hash_alg == "sha512"


def test_ssh_keygen_sha256_signature_verifies(tmp_path: Path) -> None:
    key = generate_private_key()
    key_path = write_private(tmp_path / "k", private_key_to_openssh(key, None))
    msg_path = tmp_path / "msg"
    msg_path.write_bytes(MESSAGE)
    sig = ssh_sign(key_path, msg_path, "-O", "hashalg=sha256")
    assert parse_signature(sig).hash_alg == "sha256"
    assert verify_message(sig, MESSAGE).fingerprint == fingerprint(key.public_key())
    with pytest.raises(SignatureInvalidError):
        verify_message(sig, MESSAGE + b" ")


def test_ssh_keygen_generated_keys_load(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    enc = tmp_path / "enc"
    for path, pw in ((plain, ""), (enc, PASSPHRASE.decode())):
        result = run("ssh-keygen", "-q", "-t", "ed25519", "-N", pw, "-C", "c", "-f", path)
        assert result.returncode == 0, result.stderr
    key = load_private_key(plain.read_bytes(), None)
    assert public_key_openssh(key.public_key()) + " c\n" == plain.with_suffix(".pub").read_text()
    key2 = load_private_key(enc.read_bytes(), PASSPHRASE)
    assert public_key_openssh(key2.public_key(), "c") + "\n" == (tmp_path / "enc.pub").read_text()
    # a passphrase offered for an unencrypted key is ignored, not an error
    assert load_private_key(plain.read_bytes(), b"unused") is not None


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    for _ in range(3):
        pub = generate_private_key().public_key()
        pub_path = tmp_path / "k.pub"
        pub_path.write_text(public_key_openssh(pub, "someone") + "\n")
        result = run("ssh-keygen", "-lf", pub_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().split()[1] == fingerprint(pub)
        assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint(pub))


def test_ssh_keygen_reads_our_encrypted_key(tmp_path: Path) -> None:
    key = generate_private_key()
    data = private_key_to_openssh(key, PASSPHRASE)
    assert PASSPHRASE not in data
    path = write_private(tmp_path / "k", data)
    result = run("ssh-keygen", "-y", "-f", path, "-P", PASSPHRASE.decode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split()[:2] == public_key_openssh(key.public_key()).split()
    wrong = run("ssh-keygen", "-y", "-f", path, "-P", "wrong")
    assert wrong.returncode != 0
    reloaded = load_private_key(data, PASSPHRASE)
    assert public_key_raw(reloaded.public_key()) == public_key_raw(key.public_key())


def test_raw_signature_verifies_with_openssl(tmp_path: Path) -> None:
    key = generate_private_key()
    (tmp_path / "pub.pem").write_bytes(public_key_pem(key.public_key()))
    (tmp_path / "msg").write_bytes(MESSAGE)
    sig = raw_signature(key, MESSAGE)
    assert len(sig) == 64
    (tmp_path / "sig.bin").write_bytes(sig)
    args = (
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        tmp_path / "pub.pem",
        "-rawin",
        "-in",
        tmp_path / "msg",
        "-sigfile",
        tmp_path / "sig.bin",
    )
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert b"Signature Verified Successfully" in result.stdout
    (tmp_path / "msg").write_bytes(MESSAGE + b"!")
    assert run(*args).returncode != 0


def test_pkcs8_keys_from_openssl_load(tmp_path: Path) -> None:
    plain, enc = tmp_path / "k.pem", tmp_path / "k.enc.pem"
    assert run("openssl", "genpkey", "-algorithm", "ed25519", "-out", plain).returncode == 0
    result = run(
        "openssl", "pkey", "-in", plain, "-aes256", "-passout", "pass:hunter22", "-out", enc
    )
    assert result.returncode == 0, result.stderr
    key = load_private_key(plain.read_bytes(), None)
    key2 = load_private_key(enc.read_bytes(), b"hunter22")
    assert public_key_raw(key.public_key()) == public_key_raw(key2.public_key())
    with pytest.raises(SigningKeyError) as info:
        load_private_key(enc.read_bytes(), b"hunter23")
    assert "hunter2" not in str(info.value)
    with pytest.raises(SigningKeyError, match="no passphrase"):
        load_private_key(enc.read_bytes(), None)


# --------------------------------------------------------------------------- key errors


def test_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    data = private_key_to_openssh(generate_private_key(), PASSPHRASE)
    with pytest.raises(SigningKeyError) as info:
        load_private_key(data, b"not the passphrase", source=str(tmp_path / "k"))
    text = info.value.diagnostics()
    assert "wrong passphrase" in text
    assert "not the passphrase" not in text
    assert PASSPHRASE.decode() not in text
    with pytest.raises(SigningKeyError, match="encrypted and no passphrase"):
        load_private_key(data, None)
    with pytest.raises(SigningKeyError, match="encrypted and no passphrase"):
        load_private_key(data, b"")


@pytest.mark.parametrize("extra", [[], ["-m", "PEM"], ["-N", "rsapass"]])
def test_rsa_key_is_refused(tmp_path: Path, extra: list[str]) -> None:
    path = tmp_path / "id_rsa"
    args = ["-N", ""] if "-N" not in extra else []
    result = run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", *args, *extra, "-f", path)
    assert result.returncode == 0, result.stderr
    with pytest.raises(SigningKeyError, match=r"RSA key, not Ed25519") as info:
        load_private_key(path.read_bytes(), b"rsapass", source=str(path))
    assert "\n" not in str(info.value)
    assert "rsapass" not in str(info.value)
    with pytest.raises(SigningKeyError, match="RSA"):
        public_key_from_openssh(path.with_suffix(".pub").read_text())


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not a private key"),
        (b"hello world\n", "not a private key"),
        (b"\x00\xff" * 40, "not a private key"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a private key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "public key"),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x\n", "public key"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "not a complete"),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\n!!\n-----END OPENSSH PRIVATE KEY-----\n",
            "damaged",
        ),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "damaged",
        ),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "damaged"),
    ],
)
def test_garbage_key_data(data: bytes, needle: str) -> None:
    with pytest.raises(SigningKeyError) as info:
        load_private_key(data, None)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_openssh_key() -> None:
    data = private_key_to_openssh(generate_private_key(), None)
    lines = data.splitlines()
    broken = b"\n".join([lines[0], lines[1][:40], lines[-1]]) + b"\n"
    with pytest.raises(SigningKeyError):
        load_private_key(broken, None)


def test_public_key_lines() -> None:
    pub = generate_private_key().public_key()
    line = public_key_openssh(pub, "me@host")
    assert line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
    assert line.endswith(" me@host")
    assert public_key_raw(public_key_from_openssh(line)) == public_key_raw(pub)
    assert signing.parse_public_key_line(line + "\n")[1] == "me@host"
    assert public_key_raw(public_key_from_openssh(public_key_openssh(pub))) == public_key_raw(pub)
    blob = signing.public_key_blob(pub)
    assert blob[-32:] == public_key_raw(pub)
    bad_blob = base64.b64encode(blob[:-1]).decode()
    for bad in ["", "ssh-ed25519", "ssh-ed25519 !!!", f"ssh-ed25519 {bad_blob}", "foo AAAA"]:
        with pytest.raises(SigningKeyError):
            public_key_from_openssh(bad)
    with pytest.raises(UsageError):
        public_key_openssh(pub, "two\nlines")


def test_allowed_signers_line() -> None:
    pub = generate_private_key().public_key()
    line = allowed_signers_line(pub, "alice@example.org")
    assert line == (
        f'alice@example.org namespaces="provenance-manifest-v1" {public_key_openssh(pub)}'
    )
    for bad in ["", "a b", 'a"b', "#a"]:
        with pytest.raises(UsageError):
            allowed_signers_line(pub, bad)


# --------------------------------------------------------------------------- verification


def _blob(sig: bytes) -> bytes:
    body = b"".join(sig.splitlines()[1:-1])
    return base64.b64decode(body)


def _armor(blob: bytes) -> bytes:
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return ("\n".join([signing.ARMOR_BEGIN, *lines, signing.ARMOR_END]) + "\n").encode()


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_verify_errors() -> None:
    key = generate_private_key()
    sig = sign_message(key, MESSAGE)
    parsed = parse_signature(sig)
    assert parsed.namespace == SIGNATURE_NAMESPACE
    assert parsed.fingerprint == fingerprint(key.public_key())
    assert len(parsed.signature) == 64
    with pytest.raises(SignatureInvalidError, match="does not match"):
        verify_message(sig, MESSAGE + b"x")
    with pytest.raises(SignatureInvalidError, match="namespace"):
        verify_message(sig, MESSAGE, namespace="file")
    other_ns = sign_message(key, MESSAGE, namespace="file")
    assert verify_message(other_ns, MESSAGE, namespace="file").namespace == "file"
    with pytest.raises(SignatureInvalidError, match="namespace"):
        verify_message(other_ns, MESSAGE)
    with pytest.raises(UsageError):
        sign_message(key, MESSAGE, namespace="")
    # a signature whose embedded key was swapped for another key fails the maths
    other = generate_private_key().public_key()
    blob = _blob(sig).replace(public_key_raw(key.public_key()), public_key_raw(other))
    with pytest.raises(SignatureInvalidError):
        verify_message(_armor(blob), MESSAGE)
    assert issubclass(SignatureInvalidError, VerificationError)
    assert issubclass(SignatureFormatError, BundleFormatError)


def test_crlf_and_extra_trailing_newlines_are_accepted() -> None:
    key = generate_private_key()
    sig = sign_message(key, MESSAGE)
    assert verify_message(sig.replace(b"\n", b"\r\n"), MESSAGE)
    assert verify_message(sig + b"\n\n", MESSAGE)
    assert verify_message(sig.rstrip(b"\n"), MESSAGE)


def _bad_signatures() -> list[tuple[bytes, str]]:
    key = generate_private_key()
    sig = sign_message(key, MESSAGE)
    blob = _blob(sig)
    pub_blob = signing.public_key_blob(key.public_key())
    head = len(b"SSHSIG") + 4
    body = blob[head + 4 + len(pub_blob) :]
    lines = sig.splitlines()
    return [
        (b"", "does not start"),
        (b"\xff\xfe", "not ASCII"),
        (sig.replace(b"SSH SIGNATURE", b"PGP SIGNATURE", 1), "does not start"),
        (sig.replace(b"-----END SSH SIGNATURE-----", b"-----END SIGNATURE-----"), "does not end"),
        (b" " + sig, "does not start"),
        (sig + b"trailing", "does not end"),
        (b"\n".join([lines[0], b"not*base64", lines[-1]]), "not base64"),
        (b"\n".join([lines[0], b"QUJD=", lines[-1]]), "base64"),
        (b"\n".join([lines[0], b"QUI=", b"QUI=", lines[-1]]), "not valid base64"),
        (b"\n".join([lines[0], b"QUJ=", lines[-1]]), "not canonical"),
        (b"\n".join([lines[0], lines[-1]]), "does not start"),
        (_armor(b"SSHSIH" + blob[6:]), "does not start with 'SSHSIG'"),
        (_armor(blob[:6] + struct.pack(">I", 2) + blob[10:]), "version 2"),
        (_armor(blob + b"\x00"), "trailing data"),
        (_armor(blob[:-1]), "truncated"),
        (_armor(blob[:12]), "truncated"),
        (_armor(b"SSHSIG"), "truncated"),
        (
            _armor(
                blob[:head]
                + _string(_string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\x00" * 9))
                + body
            ),
            "not ssh-ed25519",
        ),
        (_armor(blob[:head] + _string(pub_blob[:-1]) + body), "malformed public key"),
        (_armor(blob[:head] + _string(pub_blob) + _string(b"") + body[4 + 22 :]), "empty"),
        (_armor(blob.replace(_string(b"sha512"), _string(b"sha999"))), "hash algorithm"),
        (_armor(blob.replace(_string(b"sha512"), _string(b"sh\xffa5"))), "malformed"),
        (_armor(blob.replace(b"ssh-ed25519", b"ssh-ed25518")), "not ssh-ed25519"),
    ]


@pytest.mark.parametrize(("data", "needle"), _bad_signatures())
def test_parse_signature_rejects(data: bytes, needle: str) -> None:
    with pytest.raises(SignatureFormatError) as info:
        parse_signature(data)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_sig_value_of_wrong_type_or_length() -> None:
    key = generate_private_key()
    blob = _blob(sign_message(key, MESSAGE))
    inner = blob[-(4 + 4 + 11 + 4 + 64) :]
    prefix = blob[: -len(inner)]
    value = inner[4:]
    cases = {
        "not of type ssh-ed25519": _string(_string(b"ssh-rsa") + value[4 + 11 :]),
        "63 bytes": _string(_string(b"ssh-ed25519") + _string(b"\x00" * 63)),
        "truncated or malformed": _string(value + b"\x00"),
    }
    for needle, replacement in cases.items():
        with pytest.raises(SignatureFormatError, match=needle):
            parse_signature(_armor(prefix + replacement))


def test_rsa_signature_from_ssh_keygen_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "id_rsa"
    assert run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", path).returncode == 0
    msg = tmp_path / "msg"
    msg.write_bytes(MESSAGE)
    sig = ssh_sign(path, msg)
    with pytest.raises(SignatureFormatError, match="not ssh-ed25519"):
        verify_message(sig, MESSAGE)


# --------------------------------------------------------------------------- fuzzing

_FUZZ_KEY = generate_private_key()
_VALID = sign_message(_FUZZ_KEY, MESSAGE)
_VALID_BLOB = _blob(_VALID)
_ALLOWED = (SignatureFormatError, SignatureInvalidError)


def _check(data: bytes) -> None:
    try:
        parse_signature(data)
    except SignatureFormatError as exc:
        assert str(exc) and "\n" not in str(exc)
    with contextlib.suppress(SignatureFormatError, SignatureInvalidError):
        verify_message(data, MESSAGE)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_inside_armor(data: bytes) -> None:
    _check(_armor(data))
    _check(_armor(b"SSHSIG\x00\x00\x00\x01" + data))


@st.composite
def _mutations(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(_mutations(_VALID))
def test_fuzz_mutated_armor(data: bytes) -> None:
    _check(data)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(_mutations(_VALID_BLOB))
def test_fuzz_mutated_blob(blob: bytes) -> None:
    armored = _armor(blob)
    _check(armored)
    if blob != _VALID_BLOB:
        # Any change to the blob must not verify (the signed fields and the key are
        # covered by the signature; the reserved field is ignored by design).
        try:
            verify_message(armored, MESSAGE)
        except _ALLOWED:
            return
        assert parse_signature(armored).reserved != b""


def test_reserved_field_is_ignored_like_ssh_keygen(tmp_path: Path) -> None:
    """PROTOCOL.sshsig: implementations should ignore a non-empty reserved field."""
    key = generate_private_key()
    blob = _blob(sign_message(key, MESSAGE))
    ns = _string(SIGNATURE_NAMESPACE.encode())
    with_reserved = blob.replace(ns + _string(b""), ns + _string(b"future"), 1)
    assert with_reserved != blob
    armored = _armor(with_reserved)
    assert parse_signature(armored).reserved == b"future"
    assert verify_message(armored, MESSAGE).fingerprint == fingerprint(key.public_key())
    line = allowed_signers_line(key.public_key(), "alice@example.org")
    assert ssh_verify(tmp_path, line, armored, MESSAGE) == 0
