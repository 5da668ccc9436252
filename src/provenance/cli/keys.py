"""``provenance keys``: create, list, show, export and trust signing keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli.app import app, prompt_passphrase
from provenance.errors import ProvenanceError, UsageError

keys_app = typer.Typer(help="Create, list and export signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Option(help="Key name (file name in the key directory).")]
        = "default",
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", dir_okay=False, help="Write the private key here instead.")] = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", help="Encrypt the key; the passphrase comes from a hidden prompt or "
        "PROVENANCE_KEY_PASSPHRASE.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing key of that name.")] = False,
) -> None:
    """Create an Ed25519 signing key (OpenSSH format, mode 0600) and print its fingerprint."""
    from provenance import keys as keystore

    secret = prompt_passphrase("New key passphrase", confirm=True) if passphrase else None
    if passphrase and not secret:
        raise UsageError("--passphrase given but the passphrase is empty")
    info = keystore.generate_key(name, passphrase=secret, key_file=key_file, overwrite=force)
    # Your own keys are trusted by your verifications; name them as the file is named.
    keystore.trust_key(info.public_key, key_file.name if key_file is not None else info.name)
    typer.echo(f"{info.fingerprint}")
    typer.echo(f"private key: {info.private_path}", err=True)
    typer.echo(f"public key:  {info.public_path}", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List your signing keys with their fingerprints."""
    from provenance import keys as keystore

    found = keystore.list_keys()
    if not found:
        typer.echo(f"no keys in {keystore.keys_dir()} (run 'provenance keys generate')", err=True)
    for info in found:
        flag = "encrypted" if info.encrypted else "unencrypted"
        typer.echo(f"{info.name}\t{info.fingerprint}\t{flag}\t{info.private_path}")


@keys_app.command("show")
def keys_show(
    key: Annotated[str, typer.Argument(help="Key name or private key path.")] = "default",
) -> None:
    """Show one key: fingerprint, public key, files."""
    from provenance import keys as keystore

    info = keystore.find_key(key)
    typer.echo(f"name:        {info.name}")
    typer.echo(f"fingerprint: {info.fingerprint}")
    typer.echo(f"public key:  {info.public_key_openssh}")
    typer.echo(f"private key: {info.private_path} "
               f"({'encrypted' if info.encrypted else 'unencrypted'})")


@keys_app.command("export")
def keys_export(
    key: Annotated[str, typer.Argument(help="Key name or private key path.")] = "default",
    fmt: Annotated[str, typer.Option(
        "--format", help="ssh | pem | raw | allowed-signers")] = "ssh",
    principal: Annotated[str | None, typer.Option(
        help="Principal for allowed-signers (default: the key name).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", dir_okay=False, help="Write here instead of stdout.")] = None,
) -> None:
    """Export the public key (never the private key)."""
    from provenance import keys as keystore

    info = keystore.find_key(key)
    exported = keystore.export_key(info, fmt, principal=principal)
    data = exported if isinstance(exported, bytes) else (exported + "\n").encode()
    if output is not None:
        output.write_bytes(data)
    elif fmt == "raw" and sys.stdout.isatty():
        raise UsageError("raw key bytes are binary; use --output FILE")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@keys_app.command("trust")
def keys_trust(
    public_key: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="A .pub file (ssh-ed25519 line) to trust.")],
    principal: Annotated[str, typer.Option(help="Who this key belongs to.")],
) -> None:
    """Add a signer's public key to your trusted keys (allowed_signers)."""
    from provenance import keys as keystore
    from provenance import signing

    try:
        text = public_key.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{public_key}: not a public key file (binary data)") from None
    if "PRIVATE KEY" in text:
        raise UsageError(f"{public_key} is a private key; give its .pub file")
    try:
        pub = signing.public_key_from_openssh(text)
    except ProvenanceError as error:
        raise UsageError(f"{public_key}: {error}") from None
    line = keystore.trust_key(pub, principal)
    typer.echo(line)
