"""Where signing keys and trusted keys live, and how they are written, found and loaded.

Layout (``<config>`` is ``platformdirs.user_config_dir("provenance")``, or
``$PROVENANCE_CONFIG_DIR`` when set)::

    <config>/keys/<name>        OpenSSH private key, mode 0600 (directory mode 0700)
    <config>/keys/<name>.pub    "ssh-ed25519 AAAA... provenance:<name>"
    <config>/allowed_signers    trusted keys, OpenSSH allowed_signers format (ssh-keygen(1))

Keys are ordinary OpenSSH Ed25519 keys, so ``ssh-keygen -y -f``, ``ssh-keygen -Y sign`` and
``ssh-keygen -Y verify -f <config>/allowed_signers`` work on the same files.  Nothing here
prints, prompts or exits: passphrases come from a caller-supplied provider.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, get_args

import platformdirs

from provenance.errors import KeyExistsError, SigningKeyError, UsageError
from provenance.fsutil import fsync_directory
from provenance.signing import (
    SIGNATURE_NAMESPACE,
    PrivateKey,
    PublicKey,
    allowed_signers_line,
    fingerprint,
    generate_private_key,
    inspect_private_key,
    load_private_key,
    parse_public_key_line,
    private_key_to_openssh,
    public_key_openssh,
    public_key_pem,
    public_key_raw,
)

__all__ = [
    "DEFAULT_KEY_NAME",
    "ENV_CONFIG_DIR",
    "ENV_PASSPHRASE",
    "ExportFormat",
    "KeyInfo",
    "LoadedKey",
    "PassphraseProvider",
    "TrustStore",
    "TrustedSigner",
    "config_dir",
    "default_key_path",
    "ensure_default_key",
    "export_key",
    "find_key",
    "generate_key",
    "keys_dir",
    "list_keys",
    "load_signing_key",
    "load_trusted",
    "passphrase_from_env",
    "trust_key",
    "trusted_signers_path",
]

ENV_CONFIG_DIR: Final = "PROVENANCE_CONFIG_DIR"
ENV_PASSPHRASE: Final = "PROVENANCE_KEY_PASSPHRASE"  # noqa: S105 - a variable name
DEFAULT_KEY_NAME: Final = "default"

#: Returns the passphrase for an encrypted key, or ``None`` when there is none.
PassphraseProvider = Callable[[], bytes | None]
ExportFormat = Literal["ssh", "pem", "raw", "allowed-signers"]

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_GENERATE_HINT: Final = "run `provenance keys generate`"


# --------------------------------------------------------------------------- locations


def config_dir() -> Path:
    """``$PROVENANCE_CONFIG_DIR`` if set and non-empty, else the platform config dir."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("provenance"))


def _make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with the last component at mode 0700."""
    if path.is_dir():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is filtered through the umask
    except FileExistsError:
        if not path.is_dir():
            raise SigningKeyError(f"'{path}' exists and is not a directory") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot create directory '{path}': {exc.strerror}") from None


def keys_dir(*, create: bool = False) -> Path:
    """``<config>/keys``; with ``create`` it is made (mode 0700) when missing."""
    path = config_dir() / "keys"
    if create:
        _make_private_dir(config_dir())
        _make_private_dir(path)
    return path


def default_key_path() -> Path:
    """Where the default signing key lives: ``<config>/keys/default``."""
    return keys_dir() / DEFAULT_KEY_NAME


def trusted_signers_path() -> Path:
    """``<config>/allowed_signers``, usable as ``ssh-keygen -Y verify -f``."""
    return config_dir() / "allowed_signers"


def _public_path(private_path: Path) -> Path:
    # the ssh-keygen convention: the public key sits next to the private one as FILE.pub
    return private_path.with_name(private_path.name + ".pub")


def passphrase_from_env() -> bytes | None:
    """``$PROVENANCE_KEY_PASSPHRASE`` as bytes, or ``None`` when unset or empty."""
    if os.supports_bytes_environ:
        value = os.environb.get(ENV_PASSPHRASE.encode("ascii"))
        return value or None
    text = os.environ.get(ENV_PASSPHRASE)
    return text.encode("utf-8") if text else None


# --------------------------------------------------------------------------- key records


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A signing key on disk, described without its secret."""

    name: str
    private_path: Path
    #: conventional ``<private>.pub`` location; it may not exist for keys made elsewhere
    public_path: Path
    fingerprint: str
    #: "ssh-ed25519 AAAA... [comment]"
    public_key_openssh: str
    encrypted: bool
    public_key: PublicKey = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A decrypted signing key ready for ``signing.sign_message``."""

    info: KeyInfo
    private_key: PrivateKey = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    @property
    def public_key(self) -> PublicKey:
        return self.info.public_key


def _check_name(name: str) -> None:
    if not _KEY_NAME.fullmatch(name) or name.endswith(".pub"):
        raise UsageError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit and not ending in '.pub'"
        )


def _read_public_file(path: Path) -> tuple[PublicKey, str] | None:
    """Read the key and comment in a ``.pub`` file; ``None`` if it is absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise SigningKeyError(f"cannot read public key file '{path}'") from None
    try:
        return parse_public_key_line(text)
    except SigningKeyError as exc:
        raise SigningKeyError(f"public key file '{path}': {exc}") from None


def _info_for(path: Path, data: bytes, *, known: PublicKey | None = None) -> KeyInfo:
    """Describe the private key ``data`` read from ``path`` without needing a passphrase.

    The public key comes from ``known`` (a decrypted key), else the clear part of an
    OpenSSH container, else an unencrypted PKCS#8 key, else the ``.pub`` file next to it.
    A ``.pub`` file only contributes its comment, and only when it matches.
    """
    inspected = inspect_private_key(data, source=str(path))
    pub = known or inspected.public_key
    if pub is None and not inspected.encrypted:
        pub = load_private_key(data, None, source=str(path)).public_key()
    pub_path = _public_path(path)
    try:
        pub_file = _read_public_file(pub_path)
    except SigningKeyError:
        if pub is None:
            raise
        pub_file = None  # a damaged .pub does not matter when the key file has the key
    comment = ""
    if pub_file is not None:
        file_key, file_comment = pub_file
        if pub is None:
            pub = file_key
        if public_key_raw(file_key) == public_key_raw(pub):
            comment = file_comment
    if pub is None:
        raise SigningKeyError(
            f"key file '{path}' is encrypted PKCS#8 and has no '{pub_path.name}' next to it"
        )
    return KeyInfo(
        name=path.name,
        private_path=path,
        public_path=pub_path,
        fingerprint=fingerprint(pub),
        public_key_openssh=public_key_openssh(pub, comment or None),
        encrypted=inspected.encrypted,
        public_key=pub,
    )


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"no private key at '{path}'", remedy=_GENERATE_HINT) from None
    except IsADirectoryError:
        raise SigningKeyError(f"'{path}' is a directory, not a key file") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read key file '{path}': {exc.strerror}") from None


# --------------------------------------------------------------------------- writing keys



def _write_new_file(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never clobber unless ``overwrite``.

    The bytes go to a fresh temporary file opened with O_CREAT|O_EXCL and ``mode`` (so they
    are never readable by others, not even briefly), are fsynced, and then are hard-linked
    into place (fails if ``path`` exists) or, with ``overwrite``, renamed over it.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyExistsError(
                    f"'{path}' already exists; refusing to overwrite it",
                    remedy="choose another --name, or pass --force to replace it",
                ) from None
            except OSError:
                # No hard links on this file system: fall back to check-then-rename.
                if os.path.lexists(path):
                    raise KeyExistsError(
                        f"'{path}' already exists; refusing to overwrite it",
                        remedy="choose another --name, or pass --force to replace it",
                    ) from None
                os.replace(tmp, path)
    except OSError as exc:
        raise SigningKeyError(f"cannot write '{path}': {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_directory(path.parent)


def _generate(
    name: str, passphrase: bytes | None, private_path: Path, *, overwrite: bool
) -> tuple[KeyInfo, PrivateKey]:
    _check_name(name)
    public_path = _public_path(private_path)
    if not overwrite:
        for existing in (private_path, public_path):
            if os.path.lexists(existing):
                raise KeyExistsError(
                    f"'{existing}' already exists; refusing to overwrite it",
                    remedy="choose another --name, or pass --force to replace it",
                )
    if not private_path.parent.is_dir():
        raise SigningKeyError(f"directory '{private_path.parent}' does not exist")
    key = generate_private_key()
    pub = key.public_key()
    line = public_key_openssh(pub, f"provenance:{name}")
    _write_new_file(
        private_path, private_key_to_openssh(key, passphrase), 0o600, overwrite=overwrite
    )
    # The public half may replace a stale .pub: it is derived from the key just written.
    _write_new_file(public_path, (line + "\n").encode("ascii"), 0o644, overwrite=True)
    info = KeyInfo(
        name=name,
        private_path=private_path,
        public_path=public_path,
        fingerprint=fingerprint(pub),
        public_key_openssh=line,
        encrypted=bool(passphrase),
        public_key=pub,
    )
    return info, key


def generate_key(
    name: str = DEFAULT_KEY_NAME,
    *,
    passphrase: bytes | None,
    key_file: Path | None = None,
    overwrite: bool = False,
) -> KeyInfo:
    """Create an Ed25519 key pair and write it as OpenSSH files.

    The private key goes to ``key_file`` or ``<config>/keys/<name>`` (mode 0600; the keys
    directory is created with mode 0700), the public key to ``<private>.pub`` with the
    comment ``provenance:<name>``.  A non-empty ``passphrase`` encrypts the private key
    (bcrypt-pbkdf + aes256-ctr, readable by ssh-keygen); ``None`` or ``b""`` leaves it
    unencrypted, as ssh-keygen does.  Raises ``KeyExistsError`` rather than replace an
    existing key unless ``overwrite``.
    """
    _check_name(name)
    private_path = Path(key_file) if key_file is not None else keys_dir(create=True) / name
    return _generate(name, passphrase, private_path, overwrite=overwrite)[0]


# --------------------------------------------------------------------------- reading keys


def _check_permissions(path: Path) -> None:
    """Refuse a private key others may read, as ssh does (sshkey_perm_ok in authfile.c)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(f"no private key at '{path}'", remedy=_GENERATE_HINT) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read key file '{path}': {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SigningKeyError(f"'{path}' is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise SigningKeyError(
            f"permissions {mode:04o} for '{path}' are too open; "
            f"run chmod 600 {shlex.quote(str(path))}"
        )


def load_signing_key(path: Path, passphrase_provider: PassphraseProvider) -> LoadedKey:
    """Load the private key at ``path`` for signing.

    Refuses a file group or others can access (mode & 0o077), like ssh.  The provider is
    called only when the key is encrypted.  All failures raise ``SigningKeyError``.
    """
    path = Path(path)
    _check_permissions(path)
    data = _read_key_file(path)
    inspected = inspect_private_key(data, source=str(path))
    passphrase = passphrase_provider() if inspected.encrypted else None
    key = load_private_key(data, passphrase, source=str(path))
    info = _info_for(path, data, known=key.public_key())
    return LoadedKey(info=info, private_key=key)


def list_keys() -> list[KeyInfo]:
    """Every private key in ``<config>/keys``, sorted by name (unreadable files skipped)."""
    directory = keys_dir()
    if not directory.is_dir():
        return []
    found: list[KeyInfo] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name.endswith(".pub") or not path.is_file():
            continue
        try:
            found.append(_info_for(path, path.read_bytes()))
        except (OSError, SigningKeyError):
            continue
    return found


def find_key(name_or_path: str | Path) -> KeyInfo:
    """Find a key by name (in ``<config>/keys``) or by the path of its private key file."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or os.sep in text or "/" in text
    if not looks_like_path and _KEY_NAME.fullmatch(text):
        candidate = keys_dir() / text
        if candidate.exists():
            return _info_for(candidate, _read_key_file(candidate))
        if not Path(text).exists():
            raise SigningKeyError(f"no key named '{text}' in '{keys_dir()}'", remedy=_GENERATE_HINT)
    path = Path(text).expanduser()
    return _info_for(path, _read_key_file(path))


def ensure_default_key(passphrase_provider: PassphraseProvider) -> tuple[LoadedKey, bool]:
    """Load the default key, creating it on first use; returns ``(key, created)``.

    When no default key exists the provider is asked once: a non-empty result encrypts
    the new key, ``None`` leaves it unencrypted.  When it exists it is loaded with
    :func:`load_signing_key` (the provider is asked only if it is encrypted).
    """
    path = default_key_path()
    if os.path.lexists(path):
        return load_signing_key(path, passphrase_provider), False
    passphrase = passphrase_provider()
    try:
        info, key = _generate(
            DEFAULT_KEY_NAME, passphrase, keys_dir(create=True) / DEFAULT_KEY_NAME, overwrite=False
        )
    except KeyExistsError:  # another process created it first
        return load_signing_key(path, passphrase_provider), False
    return LoadedKey(info=info, private_key=key), True


# --------------------------------------------------------------------------- export


def export_key(
    info: KeyInfo, fmt: ExportFormat | str, *, principal: str | None = None
) -> str | bytes:
    """Export the public key of ``info`` in one of the export formats.

    ``ssh``: the ``.pub`` line (str, no newline); ``pem``: SPKI PEM (bytes); ``raw``: the 32
    key bytes; ``allowed-signers``: an allowed_signers line (str, no newline) for
    ``principal`` (default: the key name).
    """
    if fmt == "ssh":
        return info.public_key_openssh
    if fmt == "pem":
        return public_key_pem(info.public_key)
    if fmt == "raw":
        return public_key_raw(info.public_key)
    if fmt == "allowed-signers":
        return allowed_signers_line(info.public_key, principal or info.name)
    choices = ", ".join(get_args(ExportFormat))
    raise UsageError(f"unknown key export format {fmt!r} (choose one of {choices})")


# --------------------------------------------------------------------------- trusted keys


@dataclass(frozen=True, slots=True)
class TrustedSigner:
    """One trusted key: from an allowed_signers line, a ``.pub`` file or a fingerprint."""

    fingerprint: str
    #: allowed_signers principals (comma-separated), the ``.pub`` comment, or ``None``
    principal: str | None
    #: where the trust comes from: "FILE:LINE" or "fingerprint"
    source: str
    public_key: PublicKey | None = field(default=None, repr=False, compare=False)
    valid_after: datetime | None = None
    valid_before: datetime | None = None

    def valid_at(self, when: datetime) -> bool:
        if self.valid_after is not None and when < self.valid_after:
            return False
        return self.valid_before is None or when < self.valid_before


@dataclass(frozen=True, slots=True)
class TrustStore:
    """The set of keys whose signatures count as trusted."""

    signers: tuple[TrustedSigner, ...] = ()

    def _matching(self, fingerprint: str, at: datetime | None) -> Iterable[TrustedSigner]:
        when = datetime.now(UTC) if at is None else at
        if when.tzinfo is None:
            when = when.astimezone()  # a naive time is local time, as in allowed_signers
        return (s for s in self.signers if s.fingerprint == fingerprint and s.valid_at(when))

    def is_trusted(self, fingerprint: str, *, at: datetime | None = None) -> bool:
        """Whether a key with this fingerprint is trusted (at ``at``, default now)."""
        return any(True for _ in self._matching(fingerprint, at))

    def principal(self, fingerprint: str, *, at: datetime | None = None) -> str | None:
        """Return the principal recorded for a trusted fingerprint, if any."""
        for signer in self._matching(fingerprint, at):
            if signer.principal:
                return signer.principal
        return None

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(s.fingerprint for s in self.signers)

    def __len__(self) -> int:
        return len(self.signers)


def _tokens(line: str) -> list[str]:
    """Split on whitespace outside double quotes (allowed_signers quoting, ssh-keygen(1))."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch.isspace() and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if quoted:
        raise ValueError("unbalanced quotes")
    if current:
        tokens.append("".join(current))
    return tokens


def _split_options(text: str) -> list[str]:
    """Split ``a,b="x,y",c`` on commas outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _match_pattern_list(value: str, patterns: str) -> bool:
    """OpenSSH match_pattern_list(): ``*``/``?`` wildcards, ``!`` negates (match.c)."""
    matched = False
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        regex = "".join(
            ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern
        )
        if re.fullmatch(regex, value, flags=re.DOTALL):
            if negated:
                return False
            matched = True
    return matched


def _parse_time(value: str) -> datetime:
    """allowed_signers valid-after/valid-before: YYYYMMDD[HHMM[SS]][Z] (ssh-keygen(1))."""
    utc = value.endswith(("Z", "z"))
    digits = value[:-1] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        raise ValueError(f"bad time {value!r}")
    parsed = datetime.strptime(digits, formats[len(digits)])  # naive; the zone is set below
    return parsed.replace(tzinfo=UTC) if utc else parsed.astimezone()


def _is_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-", "sk-"))


def _parse_trust_line(line: str, source: str) -> TrustedSigner | None:
    """One line of an allowed_signers or ``.pub`` file; ``None`` if not usable by us.

    allowed_signers: ``principals [options] keytype base64 [comment]`` (ssh-keygen(1)
    §"ALLOWED SIGNERS").  Lines for other key types, certificate authorities or other
    namespaces are skipped: they can never vouch for a provenance signature.
    """
    tokens = _tokens(line)
    if _is_key_type(tokens[0]):  # a bare .pub line: "ssh-ed25519 AAAA... comment"
        principal: str | None = None
        options: list[str] = []
        key_tokens = tokens
    else:
        principal = _unquote(tokens[0])
        rest = tokens[1:]
        if not rest:
            raise ValueError("missing public key")
        if _is_key_type(rest[0]):
            options, key_tokens = [], rest
        else:
            options, key_tokens = _split_options(rest[0]), rest[1:]
    if not key_tokens or not _is_key_type(key_tokens[0]) or len(key_tokens) < 2:
        raise ValueError("missing public key")
    if key_tokens[0] != "ssh-ed25519":
        return None
    pub, comment = parse_public_key_line(" ".join(key_tokens))
    valid_after = valid_before = None
    for option in options:
        name, _, value = option.partition("=")
        name = name.lower()
        if name == "cert-authority":
            return None
        if name == "namespaces" and not _match_pattern_list(SIGNATURE_NAMESPACE, _unquote(value)):
            return None
        if name == "valid-after":
            valid_after = _parse_time(_unquote(value))
        elif name == "valid-before":
            valid_before = _parse_time(_unquote(value))
    return TrustedSigner(
        fingerprint=fingerprint(pub),
        principal=principal if principal is not None else (comment or None),
        source=source,
        public_key=pub,
        valid_after=valid_after,
        valid_before=valid_before,
    )


def _load_trust_file(path: Path) -> list[TrustedSigner]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read trusted keys file '{path}': {detail}") from None
    signers: list[TrustedSigner] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            signer = _parse_trust_line(line, f"{path}:{number}")
        except (ValueError, SigningKeyError) as exc:
            raise UsageError(f"{path}:{number}: not a usable trusted key line ({exc})") from None
        if signer is not None:
            signers.append(signer)
    return signers


def load_trusted(extra: Sequence[str] = ()) -> TrustStore:
    """Trusted keys: ``<config>/allowed_signers`` plus each item of ``extra``.

    An item is either a fingerprint ``SHA256:...`` (as ``ssh-keygen -l`` prints it) or the
    path of a ``.pub`` or allowed_signers file.  A bad item raises ``UsageError``.
    """
    signers: list[TrustedSigner] = []
    default = trusted_signers_path()
    if default.is_file():
        signers.extend(_load_trust_file(default))
    for item in extra:
        path = Path(item).expanduser()
        if _FINGERPRINT.fullmatch(item) and not path.exists():
            signers.append(TrustedSigner(fingerprint=item, principal=None, source="fingerprint"))
            continue
        if not path.exists():
            if item.startswith("SHA256:"):
                raise UsageError(
                    f"{item!r} is not a valid key fingerprint (expected SHA256: and 43 "
                    "base64 characters, as `ssh-keygen -l` prints)"
                )
            raise UsageError(f"trusted key '{item}' is neither a fingerprint nor a file")
        found = _load_trust_file(path)
        if not found:
            raise UsageError(
                f"'{path}' holds no Ed25519 key usable for namespace {SIGNATURE_NAMESPACE}"
            )
        signers.extend(found)
    return TrustStore(signers=tuple(signers))


def trust_key(pub: PublicKey, principal: str) -> str:
    """Append ``pub`` for ``principal`` to ``<config>/allowed_signers``; returns the line.

    Idempotent: a line already present is not written again.
    """
    line = allowed_signers_line(pub, principal)
    path = trusted_signers_path()
    _make_private_dir(path.parent)
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read trusted keys file '{path}'") from None
    if line in (raw.strip() for raw in existing.splitlines()):
        return line
    prefix = "\n" if existing and not existing.endswith("\n") else ""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{prefix}{line}\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise UsageError(f"cannot write trusted keys file '{path}': {exc.strerror}") from None
    return line
