"""Key storage, permissions, trust store and exports, with real files and ssh-keygen/openssl."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
import pytest

from provenance import keys
from provenance.errors import KeyExistsError, SigningKeyError, UsageError
from provenance.keys import (
    KeyInfo,
    LoadedKey,
    config_dir,
    default_key_path,
    ensure_default_key,
    export_key,
    find_key,
    generate_key,
    keys_dir,
    list_keys,
    load_signing_key,
    load_trusted,
    passphrase_from_env,
    trust_key,
    trusted_signers_path,
)
from provenance.signing import (
    SIGNATURE_NAMESPACE,
    fingerprint,
    generate_private_key,
    public_key_openssh,
    public_key_raw,
    sign_message,
    verify_message,
)

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None or shutil.which("openssl") is None,
    reason="needs the ssh-keygen and openssl binaries",
)

PASSPHRASE = b"s3cret-Passphrase!"
MESSAGE = b"canonical manifest bytes\n"


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "cfg"
    monkeypatch.setenv("PROVENANCE_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    return cfg


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, timeout=60, check=False
    )


def never() -> bytes | None:
    raise AssertionError("the passphrase provider must not be called")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- locations


def test_locations_follow_env(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_dir() == config
    assert keys_dir() == config / "keys"
    assert default_key_path() == config / "keys" / "default"
    assert trusted_signers_path() == config / "allowed_signers"
    assert not config.exists()  # looking up paths creates nothing
    monkeypatch.setenv("PROVENANCE_CONFIG_DIR", "")
    assert config_dir() == Path(platformdirs.user_config_dir("provenance"))


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert passphrase_from_env() is None
    monkeypatch.setenv("PROVENANCE_KEY_PASSPHRASE", "")
    assert passphrase_from_env() is None
    monkeypatch.setenv("PROVENANCE_KEY_PASSPHRASE", "pässword")
    assert passphrase_from_env() == "pässword".encode()


# --------------------------------------------------------------------------- generate


def test_generate_writes_openssh_files(config: Path) -> None:
    info = generate_key(passphrase=None)
    assert info.name == "default"
    assert info.private_path == config / "keys" / "default"
    assert info.public_path == config / "keys" / "default.pub"
    assert not info.encrypted
    assert mode_of(info.private_path) == 0o600
    assert mode_of(config / "keys") == 0o700
    assert mode_of(config) == 0o700
    pub_text = info.public_path.read_text()
    assert pub_text == info.public_key_openssh + "\n"
    assert pub_text.startswith("ssh-ed25519 AAAA")
    assert pub_text.rstrip().endswith(" provenance:default")
    assert info.private_path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert sorted(p.name for p in (config / "keys").iterdir()) == ["default", "default.pub"]
    # ssh-keygen agrees on the fingerprint and derives the same public key
    listed = run("ssh-keygen", "-lf", info.public_path)
    assert listed.stdout.decode().split()[1] == info.fingerprint
    derived = run("ssh-keygen", "-y", "-f", info.private_path)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.decode().split()[:2] == info.public_key_openssh.split()[:2]


def test_generate_encrypted_readable_by_ssh_keygen() -> None:
    info = generate_key("work", passphrase=PASSPHRASE)
    assert info.encrypted
    assert PASSPHRASE not in info.private_path.read_bytes()
    result = run("ssh-keygen", "-y", "-f", info.private_path, "-P", PASSPHRASE.decode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split()[1] == info.public_key_openssh.split()[1]
    assert run("ssh-keygen", "-y", "-f", info.private_path, "-P", "nope").returncode != 0


def test_generate_refuses_to_overwrite(config: Path) -> None:
    first = generate_key("k", passphrase=None)
    before = first.private_path.read_bytes()
    with pytest.raises(KeyExistsError, match="refusing to overwrite") as info:
        generate_key("k", passphrase=None)
    assert isinstance(info.value, UsageError)
    assert first.private_path.read_bytes() == before
    # a stray .pub alone also blocks a silent overwrite
    (config / "keys" / "lonely.pub").write_text("ssh-ed25519 AAAA old\n")
    with pytest.raises(KeyExistsError):
        generate_key("lonely", passphrase=None)
    second = generate_key("k", passphrase=None, overwrite=True)
    assert second.fingerprint != first.fingerprint
    assert find_key("k").fingerprint == second.fingerprint
    assert mode_of(second.private_path) == 0o600
    names = sorted(p.name for p in (config / "keys").iterdir())
    assert names == ["k", "k.pub", "lonely.pub"]  # no temporary files left behind


def test_generate_to_explicit_file(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "elsewhere" / "signer"
    with pytest.raises(SigningKeyError, match="does not exist"):
        generate_key("x", passphrase=None, key_file=target)
    target.parent.mkdir()
    info = generate_key("x", passphrase=b"", key_file=target)
    assert not info.encrypted  # an empty passphrase means none, as with ssh-keygen -N ''
    assert info.private_path == target
    assert (tmp_path / "elsewhere" / "signer.pub").is_file()
    assert mode_of(target) == 0o600
    assert not (config / "keys").exists()
    assert find_key(target).fingerprint == info.fingerprint
    assert find_key(str(target)).fingerprint == info.fingerprint


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x.pub", "a b", "x" * 65])
def test_generate_rejects_bad_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid key name"):
        generate_key(name, passphrase=None)


# --------------------------------------------------------------------------- load


def test_load_unencrypted_does_not_ask() -> None:
    info = generate_key(passphrase=None)
    loaded = load_signing_key(info.private_path, never)
    assert isinstance(loaded, LoadedKey)
    assert loaded.fingerprint == info.fingerprint
    assert loaded.info.public_key_openssh == info.public_key_openssh
    sig = sign_message(loaded.private_key, MESSAGE)
    assert verify_message(sig, MESSAGE).fingerprint == info.fingerprint
    assert "private_key" not in repr(loaded)


def test_load_encrypted_asks_once() -> None:
    info = generate_key("enc", passphrase=PASSPHRASE)
    calls: list[int] = []

    def provider() -> bytes | None:
        calls.append(1)
        return PASSPHRASE

    loaded = load_signing_key(info.private_path, provider)
    assert calls == [1]
    assert loaded.fingerprint == info.fingerprint
    assert loaded.info.encrypted


def test_load_wrong_or_missing_passphrase() -> None:
    info = generate_key("enc", passphrase=PASSPHRASE)
    wrong = b"hunter2-wrong-passphrase"
    with pytest.raises(SigningKeyError) as excinfo:
        load_signing_key(info.private_path, lambda: wrong)
    text = excinfo.value.diagnostics()
    assert "wrong passphrase" in text
    assert str(info.private_path) in text
    assert wrong.decode() not in text
    assert PASSPHRASE.decode() not in text
    with pytest.raises(SigningKeyError, match="no passphrase was given"):
        load_signing_key(info.private_path, lambda: None)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_too_open_key_is_refused(mode: int) -> None:
    info = generate_key(passphrase=None)
    os.chmod(info.private_path, mode)
    path = info.private_path
    with pytest.raises(SigningKeyError) as excinfo:
        load_signing_key(path, never)
    assert str(excinfo.value) == (
        f"permissions {mode:04o} for '{path}' are too open; run chmod 600 {path}"
    )
    os.chmod(path, 0o400)  # read-only for the owner is fine, as with ssh
    assert load_signing_key(path, never).fingerprint == info.fingerprint


def test_missing_and_odd_key_files(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no private key at") as excinfo:
        load_signing_key(tmp_path / "absent", never)
    assert "keys generate" in excinfo.value.remedy
    with pytest.raises(SigningKeyError, match="not a regular file"):
        load_signing_key(tmp_path, never)
    junk = tmp_path / "junk"
    junk.write_bytes(b"definitely not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(SigningKeyError, match="not a private key"):
        load_signing_key(junk, never)


def test_rsa_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "id_rsa"
    result = run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", path)
    assert result.returncode == 0, result.stderr
    assert mode_of(path) == 0o600
    with pytest.raises(SigningKeyError) as excinfo:
        load_signing_key(path, never)
    assert str(excinfo.value) == (
        f"key file '{path}' is an RSA key, not Ed25519; "
        "provenance signs with Ed25519 keys only (ssh-keygen -t ed25519)"
    )
    encrypted = tmp_path / "id_rsa_enc"
    assert (
        run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "pw", "-f", encrypted).returncode
        == 0
    )
    with pytest.raises(SigningKeyError, match="RSA key"):
        load_signing_key(encrypted, never)  # refused before any passphrase is asked for


def test_ssh_keygen_key_and_signature_interop(tmp_path: Path) -> None:
    """A key we wrote signs with ssh-keygen -Y sign; we verify, and trust it."""
    info = generate_key("interop", passphrase=None)
    msg = tmp_path / "manifest.json"
    msg.write_bytes(MESSAGE)
    result = run(
        "ssh-keygen", "-Y", "sign", "-f", info.private_path, "-n", SIGNATURE_NAMESPACE, msg
    )
    assert result.returncode == 0, result.stderr
    theirs = (tmp_path / "manifest.json.sig").read_bytes()
    ours = sign_message(load_signing_key(info.private_path, never).private_key, MESSAGE)
    assert ours == theirs
    verified = verify_message(theirs, MESSAGE)
    assert verified.fingerprint == info.fingerprint
    trust_key(info.public_key, "alice@example.org")
    store = load_trusted([])
    assert store.is_trusted(verified.fingerprint)
    assert store.principal(verified.fingerprint) == "alice@example.org"
    # the trust file is a real allowed_signers file for ssh-keygen -Y verify
    check = run(
        "ssh-keygen",
        "-Y",
        "verify",
        "-f",
        trusted_signers_path(),
        "-I",
        "alice@example.org",
        "-n",
        SIGNATURE_NAMESPACE,
        "-s",
        tmp_path / "manifest.json.sig",
        stdin=MESSAGE,
    )
    assert check.returncode == 0, check.stderr


# --------------------------------------------------------------------------- list/find/ensure


def test_list_and_find(config: Path) -> None:
    assert list_keys() == []
    b = generate_key("bravo", passphrase=PASSPHRASE)
    a = generate_key("alpha", passphrase=None)
    (config / "keys" / "notes.txt").write_text("not a key")
    (config / "keys" / ".alpha.123.tmp").write_text("half written")
    listed = list_keys()
    assert [k.name for k in listed] == ["alpha", "bravo"]
    assert [k.encrypted for k in listed] == [False, True]
    assert listed[0] == a
    assert listed[1].fingerprint == b.fingerprint
    assert listed[1].public_key_openssh == b.public_key_openssh
    assert find_key("bravo") == b
    with pytest.raises(SigningKeyError, match="no key named 'charlie'") as excinfo:
        find_key("charlie")
    assert str(config / "keys") in str(excinfo.value)


def test_find_without_pub_file_uses_embedded_public_key() -> None:
    info = generate_key("solo", passphrase=PASSPHRASE)
    info.public_path.unlink()
    found = find_key("solo")
    assert found.fingerprint == info.fingerprint
    assert found.encrypted
    assert isinstance(found, KeyInfo)


def test_ensure_default_key_creates_once(config: Path) -> None:
    loaded, created = ensure_default_key(lambda: None)
    assert created
    assert not loaded.info.encrypted
    assert loaded.info.private_path == default_key_path()
    assert mode_of(default_key_path()) == 0o600
    again, created_again = ensure_default_key(never)
    assert not created_again
    assert again.fingerprint == loaded.fingerprint


def test_ensure_default_key_with_passphrase() -> None:
    loaded, created = ensure_default_key(lambda: PASSPHRASE)
    assert created and loaded.info.encrypted
    again, created_again = ensure_default_key(lambda: PASSPHRASE)
    assert not created_again and again.fingerprint == loaded.fingerprint
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        ensure_default_key(lambda: b"other")


# --------------------------------------------------------------------------- export


def test_export_formats(tmp_path: Path) -> None:
    info = generate_key("exp", passphrase=None)
    ssh_line = export_key(info, "ssh")
    assert ssh_line == info.public_path.read_text().strip()
    pem = export_key(info, "pem")
    assert isinstance(pem, bytes) and pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    (tmp_path / "pub.pem").write_bytes(pem)
    text = run("openssl", "pkey", "-pubin", "-in", tmp_path / "pub.pem", "-noout", "-text")
    assert text.returncode == 0 and b"ED25519 Public-Key" in text.stdout
    raw = export_key(info, "raw")
    assert raw == public_key_raw(info.public_key) and len(raw) == 32
    line = export_key(info, "allowed-signers", principal="bob@example.org")
    assert line == (
        f'bob@example.org namespaces="{SIGNATURE_NAMESPACE}" {public_key_openssh(info.public_key)}'
    )
    assert str(export_key(info, "allowed-signers")).startswith("exp namespaces=")
    with pytest.raises(UsageError, match="unknown key export format"):
        export_key(info, "jwk")


# --------------------------------------------------------------------------- trust


def test_trust_key_appends_once(config: Path) -> None:
    pub = generate_private_key().public_key()
    line = trust_key(pub, "carol@example.org")
    again = trust_key(pub, "carol@example.org")
    assert line == again
    assert trusted_signers_path().read_text() == line + "\n"
    other = generate_private_key().public_key()
    trusted_signers_path().write_text(line)  # no final newline: the next append adds one
    trust_key(other, "dave")
    assert trusted_signers_path().read_text().splitlines() == [
        line,
        f'dave namespaces="{SIGNATURE_NAMESPACE}" {public_key_openssh(other)}',
    ]
    store = load_trusted([])
    assert len(store) == 2
    assert store.principal(fingerprint(other)) == "dave"
    assert store.fingerprints == {fingerprint(pub), fingerprint(other)}


def test_load_trusted_extra_items(tmp_path: Path) -> None:
    assert len(load_trusted([])) == 0
    pub = generate_private_key().public_key()
    pub_file = tmp_path / "friend.pub"
    pub_file.write_text(public_key_openssh(pub, "friend@example.org") + "\n")
    bare = generate_private_key().public_key()
    store = load_trusted([str(pub_file), fingerprint(bare)])
    assert store.is_trusted(fingerprint(pub))
    assert store.principal(fingerprint(pub)) == "friend@example.org"
    assert store.is_trusted(fingerprint(bare))
    assert store.principal(fingerprint(bare)) is None
    assert not store.is_trusted(fingerprint(generate_private_key().public_key()))
    with pytest.raises(UsageError, match="not a valid key fingerprint"):
        load_trusted(["SHA256:tooshort"])
    with pytest.raises(UsageError, match="neither a fingerprint nor a file"):
        load_trusted([str(tmp_path / "missing.pub")])
    rsa = tmp_path / "id_rsa"
    assert run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa).returncode == 0
    with pytest.raises(UsageError, match="no Ed25519 key"):
        load_trusted([str(tmp_path / "id_rsa.pub")])


def test_allowed_signers_options(tmp_path: Path) -> None:
    keys_ = [generate_private_key().public_key() for _ in range(7)]
    fps = [fingerprint(k) for k in keys_]
    lines = [
        "# comment line",
        "",
        f"a@x {public_key_openssh(keys_[0])}",  # no options: any namespace
        f'b@x namespaces="git,file" {public_key_openssh(keys_[1])}',  # other namespaces
        f'c@x namespaces="provenance-*" {public_key_openssh(keys_[2])}',  # wildcard
        f'd@x namespaces="*,!provenance-manifest-v1" {public_key_openssh(keys_[3])}',  # negated
        f"e@x cert-authority {public_key_openssh(keys_[4])}",  # CA keys sign certificates
        f'"f@x,g@x" valid-before="20000101Z" {public_key_openssh(keys_[5])}',  # expired
        f'h@x valid-after="20000101",namespaces="{SIGNATURE_NAMESPACE}" '
        f"{public_key_openssh(keys_[6])} comment",
    ]
    rsa = tmp_path / "id_rsa"
    assert run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa).returncode == 0
    lines.append("rsa@x " + (tmp_path / "id_rsa.pub").read_text().strip())  # skipped
    signers = tmp_path / "allowed_signers"
    signers.write_text("\n".join(lines) + "\n")
    store = load_trusted([str(signers)])
    trusted = [store.is_trusted(fp) for fp in fps]
    assert trusted == [True, False, True, False, False, False, True]
    assert store.is_trusted(fps[5], at=datetime(1999, 6, 1, tzinfo=UTC))
    assert store.principal(fps[5], at=datetime(1999, 6, 1, tzinfo=UTC)) == "f@x,g@x"
    assert store.principal(fps[6]) == "h@x"
    assert not store.is_trusted(fps[6], at=datetime(1999, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "bad",
    ["justaprincipal", "p@x ssh-ed25519", "p@x ssh-ed25519 !!!notbase64", 'p@x "unclosed'],
)
def test_malformed_trust_lines(tmp_path: Path, bad: str) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"# header\n{bad}\n")
    with pytest.raises(UsageError, match=f"{signers}:2: not a usable trusted key line"):
        load_trusted([str(signers)])


def test_default_trust_file_is_read(config: Path) -> None:
    pub = generate_private_key().public_key()
    config.mkdir()
    trusted_signers_path().write_text(f"x@y {public_key_openssh(pub)}\n")
    assert load_trusted([]).is_trusted(fingerprint(pub))
    assert keys.trusted_signers_path().parent == config


def test_pkcs8_keys_and_damaged_pub_files(tmp_path: Path) -> None:
    plain = tmp_path / "k.pem"
    assert run("openssl", "genpkey", "-algorithm", "ed25519", "-out", plain).returncode == 0
    os.chmod(plain, 0o600)
    loaded = load_signing_key(plain, never)
    assert find_key(plain).fingerprint == loaded.fingerprint
    enc = tmp_path / "k.enc.pem"
    result = run("openssl", "pkey", "-in", plain, "-aes256", "-passout", "pass:pw", "-out", enc)
    assert result.returncode == 0, result.stderr
    os.chmod(enc, 0o600)
    with pytest.raises(SigningKeyError, match=r"encrypted PKCS#8 and has no 'k\.enc\.pem\.pub'"):
        find_key(enc)
    assert load_signing_key(enc, lambda: b"pw").fingerprint == loaded.fingerprint
    # an OpenSSH key carries its public half, so a damaged .pub does not get in the way
    info = generate_key("withbadpub", passphrase=None)
    info.public_path.write_text("garbage\n")
    assert load_signing_key(info.private_path, never).fingerprint == info.fingerprint
    assert find_key("withbadpub").public_key_openssh == public_key_openssh(info.public_key)


def test_naive_times_are_local(tmp_path: Path) -> None:
    pub = generate_private_key().public_key()
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'p valid-before="20000101" {public_key_openssh(pub)}\n')
    store = load_trusted([str(signers)])
    assert store.is_trusted(fingerprint(pub), at=datetime(1999, 12, 31))  # naive = local time
    assert not store.is_trusted(fingerprint(pub), at=datetime(2000, 1, 2))  # naive = local time
    assert not store.is_trusted(fingerprint(pub))
