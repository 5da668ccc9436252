"""Ed25519 keys and OpenSSH ``SSHSIG`` detached signatures.

This is the only module that imports ``cryptography.hazmat``; everything else goes through
the functions below.  The signature format is the one ``ssh-keygen -Y sign`` writes
(OpenSSH ``PROTOCOL.sshsig``), built here directly over :meth:`Ed25519PrivateKey.sign`, so a
signature made by :func:`sign_message` is byte-identical to ``ssh-keygen -Y sign -n
provenance-manifest-v1`` for the same key and message (Ed25519 is deterministic, RFC 8032
§5.1.6) and verifies with ``ssh-keygen -Y verify``; and the other way round.

Wire encodings follow RFC 4251 §5 (``uint32`` big-endian, ``string`` = ``uint32`` length
followed by the bytes); key blobs follow RFC 8709 §4 (``string "ssh-ed25519" || string
key``) and signature blobs RFC 8709 §6.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from provenance.errors import (
    SignatureFormatError,
    SignatureInvalidError,
    SigningKeyError,
    UsageError,
)

__all__ = [
    "ARMOR_BEGIN",
    "ARMOR_END",
    "HASH_ALGORITHM",
    "KEY_TYPE",
    "SIGNATURE_NAMESPACE",
    "ParsedSignature",
    "PrivateKey",
    "PrivateKeyInfo",
    "PublicKey",
    "VerifiedSignature",
    "allowed_signers_line",
    "fingerprint",
    "fingerprint_from_raw",
    "generate_private_key",
    "inspect_private_key",
    "load_private_key",
    "parse_public_key_line",
    "parse_signature",
    "private_key_to_openssh",
    "public_key_blob",
    "public_key_from_openssh",
    "public_key_from_raw",
    "public_key_openssh",
    "public_key_pem",
    "public_key_raw",
    "raw_signature",
    "sign_message",
    "verify_message",
]

#: The key type the rest of provenance handles; re-exported so other modules need not
#: import ``cryptography.hazmat`` themselves.
PrivateKey: TypeAlias = Ed25519PrivateKey
PublicKey: TypeAlias = Ed25519PublicKey

#: SSHSIG namespace for provenance manifests (PROTOCOL.sshsig §"Signed Data": the namespace
#: prevents a signature made for one purpose being replayed for another).
SIGNATURE_NAMESPACE: Final = "provenance-manifest-v1"

#: ``ssh-keygen -Y sign`` hashes with SHA-512 unless told otherwise (PROTOCOL.sshsig permits
#: "sha256" and "sha512").
HASH_ALGORITHM: Final = "sha512"
_HASH_ALGORITHMS: Final = frozenset({"sha256", "sha512"})

#: RFC 8709 §4 key format identifier.
KEY_TYPE: Final = "ssh-ed25519"

# PROTOCOL.sshsig §"Armored format".
ARMOR_BEGIN: Final = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END: Final = "-----END SSH SIGNATURE-----"
_ARMOR_WIDTH: Final = 70  # sshsig.c sshsig_armor() -> sshbuf_dtob64(..., wrap=1): 70 columns

# PROTOCOL.sshsig §"Blob format" / §"Signed Data".
_MAGIC_PREAMBLE: Final = b"SSHSIG"
_SIG_VERSION: Final = 1

_ED25519_KEY_LEN: Final = 32  # RFC 8032 §5.1.5
_ED25519_SIG_LEN: Final = 64  # RFC 8032 §5.1.6

# OpenSSH PROTOCOL.key: the private key container.
_OPENSSH_KEY_MAGIC: Final = b"openssh-key-v1\x00"

_FRIENDLY_KEY_TYPES: Final = {
    "ssh-rsa": "an RSA",
    "ssh-dss": "a DSA",
    "ecdsa-sha2-nistp256": "an ECDSA",
    "ecdsa-sha2-nistp384": "an ECDSA",
    "ecdsa-sha2-nistp521": "an ECDSA",
    "sk-ssh-ed25519@openssh.com": "a FIDO security-key Ed25519 (ed25519-sk)",
    "sk-ecdsa-sha2-nistp256@openssh.com": "a FIDO security-key ECDSA (ecdsa-sk)",
}
_ED25519_ONLY: Final = "provenance signs with Ed25519 keys only (ssh-keygen -t ed25519)"


# --------------------------------------------------------------------------- wire format


class _WireError(Exception):
    """Internal: a wire-format buffer ended early or held something unexpected."""


class _UnsupportedKeyTypeError(Exception):
    """Internal: a well-formed key blob of a type other than ssh-ed25519."""

    def __init__(self, key_type: str) -> None:
        super().__init__(key_type)
        self.key_type = key_type

    def describe(self) -> str:
        kind = _FRIENDLY_KEY_TYPES.get(self.key_type, f"a {self.key_type!r}")
        return f"{kind} key, not Ed25519; {_ED25519_ONLY}"


class _Reader:
    """Bounds-checked reader of RFC 4251 §5 data types."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def raw(self, length: int) -> bytes:
        end = self._pos + length
        if length < 0 or end > len(self._data):
            raise _WireError("truncated")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.raw(4))[0]
        return value

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def text(self) -> str:
        """Read a ``string`` that must be UTF-8 without NUL (sshbuf_get_cstring)."""
        value = self.string()
        if b"\x00" in value:
            raise _WireError("NUL in text field")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _WireError("text field is not UTF-8") from exc

    def at_end(self) -> bool:
        return self._pos == len(self._data)


def _string(value: bytes) -> bytes:
    """RFC 4251 §5 ``string``: uint32 length then the bytes."""
    return struct.pack(">I", len(value)) + value


# --------------------------------------------------------------------------- public keys


def generate_private_key() -> PrivateKey:
    """Make a fresh Ed25519 private key (RFC 8032 §5.1.5) from the OS CSPRNG."""
    return Ed25519PrivateKey.generate()


def public_key_raw(pub: PublicKey) -> bytes:
    """Return the 32-byte encoded public key of RFC 8032 §5.1.5."""
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_raw(raw: bytes) -> PublicKey:
    """Decode a 32-byte raw public key; ``SigningKeyError`` otherwise."""
    if len(raw) != _ED25519_KEY_LEN:
        raise SigningKeyError(f"an Ed25519 public key is {_ED25519_KEY_LEN} bytes, not {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SigningKeyError("not a valid Ed25519 public key") from None


def _blob_from_raw(raw: bytes) -> bytes:
    # RFC 8709 §4: string "ssh-ed25519" || string key
    return _string(KEY_TYPE.encode("ascii")) + _string(raw)


def public_key_blob(pub: PublicKey) -> bytes:
    """Return the SSH wire-format public key blob (RFC 8709 §4)."""
    return _blob_from_raw(public_key_raw(pub))


def fingerprint_from_raw(raw: bytes) -> str:
    """``fingerprint`` for a raw 32-byte public key."""
    digest = hashlib.sha256(_blob_from_raw(raw)).digest()
    # sshkey.c fingerprint_b64(): base64 of the digest with the '=' padding removed.
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def fingerprint(pub: PublicKey) -> str:
    """Return the fingerprint exactly as ``ssh-keygen -l`` prints it: ``SHA256:<base64>``."""
    return fingerprint_from_raw(public_key_raw(pub))


def public_key_openssh(pub: PublicKey, comment: str | None = None) -> str:
    """One ``authorized_keys``/``.pub`` line: ``ssh-ed25519 AAAA... [comment]``."""
    line = f"{KEY_TYPE} {base64.b64encode(public_key_blob(pub)).decode('ascii')}"
    if comment:
        if "\n" in comment or "\r" in comment:
            raise UsageError("a public key comment cannot contain a line break")
        line += f" {comment}"
    return line


def public_key_pem(pub: PublicKey) -> bytes:
    """PEM ``SubjectPublicKeyInfo`` (RFC 8410 §4), as ``openssl pkey -pubin`` reads it."""
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_key_blob(blob: bytes) -> bytes:
    """Extract the raw key from an RFC 8709 §4 blob (raises the internal errors above)."""
    reader = _Reader(blob)
    key_type = reader.text()
    if key_type != KEY_TYPE:
        raise _UnsupportedKeyTypeError(key_type)
    raw = reader.string()
    if len(raw) != _ED25519_KEY_LEN or not reader.at_end():
        raise _WireError("malformed ssh-ed25519 key blob")
    return raw


def parse_public_key_line(line: str) -> tuple[PublicKey, str]:
    """Parse ``ssh-ed25519 AAAA... [comment]``; returns the key and the comment ("" if none).

    Raises ``SigningKeyError`` for anything else (including other key types).
    """
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise SigningKeyError("not an OpenSSH public key line (expected 'ssh-ed25519 AAAA...')")
    key_type, b64 = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if key_type != KEY_TYPE:
        if key_type not in _FRIENDLY_KEY_TYPES:
            raise SigningKeyError("not an OpenSSH public key line (expected 'ssh-ed25519 AAAA...')")
        raise SigningKeyError(f"the public key is {_UnsupportedKeyTypeError(key_type).describe()}")
    try:
        blob = base64.b64decode(b64, validate=True)
        raw = _parse_key_blob(blob)
    except (binascii.Error, ValueError, _WireError):
        raise SigningKeyError("malformed ssh-ed25519 public key (bad base64 or key blob)") from None
    except _UnsupportedKeyTypeError as exc:
        raise SigningKeyError(f"the public key is {exc.describe()}") from None
    return public_key_from_raw(raw), comment


def public_key_from_openssh(line: str) -> PublicKey:
    """Return the key in an OpenSSH public key line (``ssh-ed25519 AAAA... [comment]``)."""
    return parse_public_key_line(line)[0]


def allowed_signers_line(pub: PublicKey, principal: str) -> str:
    """Format an ``allowed_signers`` line (ssh-keygen(1) "ALLOWED SIGNERS") for our namespace.

    The same line works with ``ssh-keygen -Y verify -f FILE -I principal``.
    """
    if not principal or any(ch.isspace() or ch in "\"'#," for ch in principal):
        raise UsageError(
            f"principal {principal!r} must be non-empty without spaces, quotes, '#' or ','"
        )
    return f'{principal} namespaces="{SIGNATURE_NAMESPACE}" {public_key_openssh(pub)}'


# --------------------------------------------------------------------------- private keys


@dataclass(frozen=True, slots=True)
class PrivateKeyInfo:
    """What a private key file says about itself without being decrypted."""

    #: "openssh" (``-----BEGIN OPENSSH PRIVATE KEY-----``) or "pkcs8" (PEM PKCS#8)
    format: Literal["openssh", "pkcs8"]
    encrypted: bool
    #: public key stored in clear in an OpenSSH container (PROTOCOL.key); ``None`` for PKCS#8
    public_key: PublicKey | None


_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def _where(source: str | None) -> str:
    return f"key file '{source}'" if source else "the private key"


def _openssh_envelope(data: bytes, source: str | None) -> PrivateKeyInfo:
    """Read the clear part of an OpenSSH private key container (OpenSSH PROTOCOL.key)."""
    text = data.decode("ascii", errors="replace")
    match = re.search(
        r"-----BEGIN OPENSSH PRIVATE KEY-----(.*?)-----END OPENSSH PRIVATE KEY-----",
        text,
        re.DOTALL,
    )
    if match is None:
        raise SigningKeyError(f"{_where(source)} is not a complete OpenSSH private key")
    try:
        blob = base64.b64decode("".join(match.group(1).split()), validate=True)
        reader = _Reader(blob)
        if reader.raw(len(_OPENSSH_KEY_MAGIC)) != _OPENSSH_KEY_MAGIC:
            raise _WireError("bad magic")
        cipher = reader.text()
        reader.text()  # kdfname
        reader.string()  # kdfoptions
        if reader.uint32() != 1:
            raise _WireError("OpenSSH key files with several keys are not supported")
        raw = _parse_key_blob(reader.string())
    except (binascii.Error, ValueError, _WireError):
        raise SigningKeyError(f"{_where(source)} is a damaged OpenSSH private key") from None
    except _UnsupportedKeyTypeError as exc:
        raise SigningKeyError(f"{_where(source)} is {exc.describe()}") from None
    return PrivateKeyInfo(
        format="openssh", encrypted=cipher != "none", public_key=public_key_from_raw(raw)
    )


def inspect_private_key(data: bytes, *, source: str | None = None) -> PrivateKeyInfo:
    """Classify a private key file without a passphrase.

    Raises ``SigningKeyError`` (with a message free of key material) for anything that is
    not an Ed25519 private key in OpenSSH or PEM PKCS#8 form, when that is knowable before
    decryption: RSA/ECDSA/DSA keys, public keys, other PEM objects, garbage.
    """
    where = _where(source)
    stripped = data.lstrip()
    for prefix in (b"ssh-", b"ecdsa-", b"sk-"):
        if stripped.startswith(prefix):
            raise SigningKeyError(f"{where} holds a public key; give the private key file")
    match = _PEM_BEGIN.match(stripped)
    if match is None:
        raise SigningKeyError(
            f"{where} is not a private key (expected an OpenSSH or PEM PKCS#8 Ed25519 key)"
        )
    label = match.group(1).decode("ascii")
    if label == "OPENSSH PRIVATE KEY":
        return _openssh_envelope(stripped, source)
    if label == "PRIVATE KEY":
        return PrivateKeyInfo(format="pkcs8", encrypted=False, public_key=None)
    if label == "ENCRYPTED PRIVATE KEY":
        return PrivateKeyInfo(format="pkcs8", encrypted=True, public_key=None)
    legacy = {"RSA PRIVATE KEY": "an RSA", "EC PRIVATE KEY": "an EC", "DSA PRIVATE KEY": "a DSA"}
    if label in legacy:
        raise SigningKeyError(f"{where} is {legacy[label]} key, not Ed25519; {_ED25519_ONLY}")
    if "PUBLIC KEY" in label:
        raise SigningKeyError(f"{where} holds a public key; give the private key file")
    raise SigningKeyError(f"{where} is a PEM '{label}', not a private key")


def load_private_key(
    data: bytes, passphrase: bytes | None, *, source: str | None = None
) -> PrivateKey:
    """Load an Ed25519 private key from OpenSSH format (or PEM PKCS#8).

    ``passphrase`` is used only when the key is encrypted (an empty passphrase counts as
    none).  ``source`` (a file name) only improves messages.  Raises ``SigningKeyError`` for
    a missing or wrong passphrase, a non-Ed25519 key or garbage; no message ever includes
    the passphrase or key bytes.
    """
    where = _where(source)
    info = inspect_private_key(data, source=source)
    if info.encrypted and not passphrase:
        raise SigningKeyError(
            f"{where} is encrypted and no passphrase was given",
            remedy="set PROVENANCE_KEY_PASSPHRASE or enter the passphrase when asked",
        )
    password = passphrase if info.encrypted else None
    key: object
    try:
        if info.format == "openssh":
            key = serialization.load_ssh_private_key(data, password)
        else:
            key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError):
        # Raised by cryptography for a failed checksum/decryption (wrong passphrase) and
        # for corrupt encodings; its messages are not passed on.
        if info.encrypted:
            raise SigningKeyError(f"wrong passphrase for {where}") from None
        raise SigningKeyError(f"{where} is damaged and cannot be read") from None
    except UnsupportedAlgorithm:
        raise SigningKeyError(f"{where} uses an unsupported algorithm; {_ED25519_ONLY}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where} is not an Ed25519 key; {_ED25519_ONLY}")
    if info.public_key is not None and public_key_raw(info.public_key) != public_key_raw(
        key.public_key()
    ):
        raise SigningKeyError(f"{where} is inconsistent: its public and private parts differ")
    return key


def private_key_to_openssh(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """Serialise ``key`` as an OpenSSH private key (``-----BEGIN OPENSSH PRIVATE KEY-----``).

    With a non-empty passphrase the key is encrypted the way ``ssh-keygen`` does it
    (bcrypt-pbkdf + aes256-ctr, via ``BestAvailableEncryption``), so OpenSSH reads it.
    """
    encryption: serialization.KeySerializationEncryption
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def raw_signature(private_key: PrivateKey, message: bytes) -> bytes:
    """Plain 64-byte Ed25519 signature of ``message`` (RFC 8032 §5.1.6).

    Verifiable with ``openssl pkeyutl -verify -pubin -inkey pub.pem -rawin``.
    """
    return private_key.sign(message)


# --------------------------------------------------------------------------- SSHSIG


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    """The fields of an SSHSIG blob (PROTOCOL.sshsig §"Blob format")."""

    public_key_raw: bytes
    namespace: str
    hash_alg: str
    signature: bytes
    #: PROTOCOL.sshsig: "implementations should ignore the reserved field if it is not empty"
    reserved: bytes = b""

    @property
    def fingerprint(self) -> str:
        return fingerprint_from_raw(self.public_key_raw)


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that verified: who signed, under which namespace and hash."""

    public_key: PublicKey
    fingerprint: str
    namespace: str
    hash_alg: str

    @property
    def public_key_raw(self) -> bytes:
        return public_key_raw(self.public_key)


def _check_namespace(namespace: str) -> None:
    # PROTOCOL.sshsig §"Signed Data": "The namespace value MUST NOT be the empty string."
    if not namespace or "\x00" in namespace:
        raise UsageError("the signature namespace must be a non-empty string without NUL")


def _signed_data(namespace: str, hash_alg: str, message: bytes) -> bytes:
    # PROTOCOL.sshsig §"Signed Data": MAGIC_PREAMBLE || string namespace || string reserved
    # || string hash_algorithm || string H(message).  The reserved field is always empty
    # here, as in sshsig.c, which also verifies over an empty reserved field.
    digest = hashlib.new(hash_alg, message).digest()
    return (
        _MAGIC_PREAMBLE
        + _string(namespace.encode("utf-8"))
        + _string(b"")
        + _string(hash_alg.encode("ascii"))
        + _string(digest)
    )


def _armor(blob: bytes) -> bytes:
    # PROTOCOL.sshsig §"Armored format"; lines of 70 like sshsig.c, then a final newline.
    b64 = base64.b64encode(blob).decode("ascii")
    lines = [b64[i : i + _ARMOR_WIDTH] for i in range(0, len(b64), _ARMOR_WIDTH)]
    return ("\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n").encode("ascii")


def sign_message(
    private_key: PrivateKey, message: bytes, namespace: str = SIGNATURE_NAMESPACE
) -> bytes:
    """Armored SSHSIG signature of ``message``, as ``ssh-keygen -Y sign -n NAMESPACE`` makes.

    Returns the armored text as bytes, ending with a newline.
    """
    _check_namespace(namespace)
    signature = private_key.sign(_signed_data(namespace, HASH_ALGORITHM, message))
    pub_blob = public_key_blob(private_key.public_key())
    # PROTOCOL.sshsig §"Blob format": MAGIC_PREAMBLE || uint32 SIG_VERSION || string
    # publickey || string namespace || string reserved || string hash_algorithm || string
    # signature, the latter encoded per RFC 8709 §6 (string "ssh-ed25519" || string sig).
    blob = (
        _MAGIC_PREAMBLE
        + struct.pack(">I", _SIG_VERSION)
        + _string(pub_blob)
        + _string(namespace.encode("utf-8"))
        + _string(b"")
        + _string(HASH_ALGORITHM.encode("ascii"))
        + _string(_string(KEY_TYPE.encode("ascii")) + _string(signature))
    )
    return _armor(blob)


_B64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _dearmor(armored: bytes) -> bytes:
    """Strict inverse of ``_armor``: one BEGIN line, base64 lines, one END line."""
    try:
        text = armored.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureFormatError("signature is not ASCII armored text") from None
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN:
        raise SignatureFormatError(f"signature does not start with '{ARMOR_BEGIN}'")
    if lines[-1] != ARMOR_END:
        raise SignatureFormatError(f"signature does not end with '{ARMOR_END}'")
    body = lines[1:-1]
    if not all(_B64_LINE.fullmatch(line) for line in body):
        raise SignatureFormatError("signature armor contains characters that are not base64")
    joined = "".join(body)
    try:
        blob = base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("signature armor is not valid base64") from None
    # Canonical encoding only: rejects padding in mid-stream and non-zero trailing bits.
    if base64.b64encode(blob).decode("ascii") != joined:
        raise SignatureFormatError("signature armor is not canonical base64")
    return blob


def parse_signature(armored: bytes) -> ParsedSignature:
    """Parse an armored SSHSIG signature (PROTOCOL.sshsig) strictly.

    Only Ed25519 signatures are accepted.  Every defect raises ``SignatureFormatError``
    with a one-line message; nothing else is raised for any ``bytes`` input.
    """
    if not isinstance(armored, bytes | bytearray | memoryview):
        raise SignatureFormatError("signature must be bytes")
    blob = _dearmor(bytes(armored))
    reader = _Reader(blob)
    try:
        # PROTOCOL.sshsig §"Blob format"
        if reader.raw(len(_MAGIC_PREAMBLE)) != _MAGIC_PREAMBLE:
            raise SignatureFormatError("signature blob does not start with 'SSHSIG'")
        version = reader.uint32()
        if version != _SIG_VERSION:
            raise SignatureFormatError(f"unsupported SSHSIG version {version} (expected 1)")
        pub_blob = reader.string()
        namespace = reader.text()
        reserved = reader.string()
        hash_alg = reader.text()
        sig_blob = reader.string()
        if not reader.at_end():
            raise SignatureFormatError("signature blob has trailing data")
    except _WireError:
        raise SignatureFormatError("signature blob is truncated or malformed") from None
    try:
        key_raw = _parse_key_blob(pub_blob)
    except _UnsupportedKeyTypeError:
        raise SignatureFormatError(
            "signature was made with a key that is not ssh-ed25519; only Ed25519 is supported"
        ) from None
    except _WireError:
        raise SignatureFormatError("signature holds a malformed public key") from None
    if not namespace:
        raise SignatureFormatError("signature namespace is empty")
    if hash_alg not in _HASH_ALGORITHMS:
        raise SignatureFormatError(f"unsupported signature hash algorithm {hash_alg!r}")
    # RFC 8709 §6: string "ssh-ed25519" || string signature (64 bytes, RFC 8032 §5.1.6)
    sig_reader = _Reader(sig_blob)
    try:
        sig_type = sig_reader.string()
        signature = sig_reader.string()
        if not sig_reader.at_end():
            raise _WireError("trailing data")
    except _WireError:
        raise SignatureFormatError("signature value is truncated or malformed") from None
    if sig_type != KEY_TYPE.encode("ascii"):
        raise SignatureFormatError("signature value is not of type ssh-ed25519")
    if len(signature) != _ED25519_SIG_LEN:
        raise SignatureFormatError(
            f"Ed25519 signature is {len(signature)} bytes, not {_ED25519_SIG_LEN}"
        )
    return ParsedSignature(
        public_key_raw=key_raw,
        namespace=namespace,
        hash_alg=hash_alg,
        signature=signature,
        reserved=reserved,
    )


def verify_message(
    armored: bytes, message: bytes, namespace: str = SIGNATURE_NAMESPACE
) -> VerifiedSignature:
    """Verify an armored SSHSIG signature over ``message`` and return who signed it.

    This checks the mathematics and the namespace only; whether the signer is trusted is
    for the caller (``provenance.keys.TrustStore``).  Raises ``SignatureFormatError`` when
    the signature cannot be parsed and ``SignatureInvalidError`` when it does not verify.
    """
    _check_namespace(namespace)
    parsed = parse_signature(armored)
    if parsed.namespace != namespace:
        raise SignatureInvalidError(
            f"signature namespace {parsed.namespace!r} does not match expected {namespace!r}"
        )
    try:
        pub = Ed25519PublicKey.from_public_bytes(parsed.public_key_raw)
    except ValueError:
        raise SignatureInvalidError("signature public key is not a valid Ed25519 key") from None
    try:
        pub.verify(parsed.signature, _signed_data(parsed.namespace, parsed.hash_alg, message))
    except InvalidSignature:
        raise SignatureInvalidError(
            f"signature by {parsed.fingerprint} does not match the signed data"
        ) from None
    return VerifiedSignature(
        public_key=pub,
        fingerprint=parsed.fingerprint,
        namespace=parsed.namespace,
        hash_alg=parsed.hash_alg,
    )


def verify_raw(public_key: PublicKey, message: bytes, signature: bytes) -> bool:
    """Check a plain Ed25519 signature (RFC 8032 section 5.1.7) over ``message``."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
