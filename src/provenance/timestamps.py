r"""RFC 3161 trusted timestamps over a bundle's detached signature.

What is stamped
    The exact bytes of ``provenance/manifest.json.sig`` (the armored SSHSIG).  A token over the
    signature proves the signature, and so the signed manifest, existed at the TSA's
    ``genTime`` (RFC 3161 section 2.4.2), which stays meaningful after the signing key is
    rotated or compromised.  Anyone can check a token with nothing but OpenSSL::

        openssl ts -verify -data provenance/manifest.json.sig \
            -in provenance/timestamp-1.tsr -CAfile TSA-ROOT.pem

Layout (files at most one directory below the bundle root)
    ``provenance/timestamp-<n>.tsr``
        the ``TimeStampResp`` (RFC 3161 section 2.4.2) exactly as the TSA sent it, never
        re-encoded, for n = 1, 2, ...; every such file covers ``provenance/manifest.json.sig``.
    ``provenance/timestamp-<n>.tsq``
        the DER ``TimeStampReq`` (section 2.4.1) that was sent for it, so that a verifier can
        check later that the token answers *our* request: same nonce (section 2.4.2, "nonce
        ... MUST be present if it was present in the TimeStampReq"), same hash algorithm and
        imprint, same policy if one was asked for.  Optional for verification: without it the
        nonce is simply not checked.

    A token cannot live inside the manifest it stamps, so tokens sit beside it and adding one
    never changes the signed manifest.  Files are created without ever replacing an existing
    token (:func:`write_token`).

Trust
    A token is only as good as the TSA root it chains to, and that root must come from the
    verifier's configuration (``--tsa-root``), never from the bundle: certificates embedded in
    the token are reported, and OpenSSL uses them as *untrusted* chain-building material only
    (``PKCS7_verify`` takes a token's own certificates as untrusted).  They are deliberately
    not handed to rfc3161-client's ``add_intermediate_certificate``, because that library puts
    every certificate it is given, intermediates included, into one trusted ``X509_STORE``.
    Without a configured root a structurally sound token is ``SKIP``, never ``PASS``.
    Chains are checked at ``genTime`` with purpose timeStamping, and the TSA certificate must
    carry a critical extended key usage of id-kp-timeStamping only (section 2.3).

Strict DER and the SET OF work-around
    rfc3161-client parses DER strictly.  Some TSAs, ``openssl ts -reply`` with a ``certs =``
    chain among them, emit the ``certificates`` SET OF of the CMS ``SignedData`` (RFC 5652
    section 5.1) unsorted, which DER forbids (X.690 section 11.6).  That field is not covered
    by the TSA's signature, so such a response is re-encoded in memory with asn1crypto (which
    sorts the SET) for parsing and verification only; the stored ``.tsr`` keeps the original
    bytes.  No other repair is attempted.

This module never prints; every failure is a :class:`~provenance.errors.ProvenanceError`
(:class:`~provenance.errors.TimestampError` for anything that went wrong talking to a TSA)
or, for verification, a :class:`TimestampCheck` result.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import rfc3161_client
from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provenance.errors import (
    BundleFormatError,
    OperationalError,
    TimestampError,
    UsageError,
)
from provenance.fsutil import fsync_directory, read_capped
from provenance.timeutil import rfc3339

__all__ = [
    "MAX_RESPONSE_BYTES",
    "NO_ROOT_DETAIL",
    "QUERY_CONTENT_TYPE",
    "REPLY_CONTENT_TYPE",
    "STAMPED_PATH",
    "StampOutcome",
    "TimestampCheck",
    "TimestampToken",
    "list_tokens",
    "load_roots",
    "next_token_paths",
    "request_timestamp",
    "stamp_bundle",
    "verify_timestamp",
    "write_token",
]

#: the file every ``provenance/timestamp-<n>.tsr`` covers
STAMPED_PATH: Final = "provenance/manifest.json.sig"
QUERY_CONTENT_TYPE: Final = "application/timestamp-query"  # RFC 3161 section 3.4
REPLY_CONTENT_TYPE: Final = "application/timestamp-reply"  # RFC 3161 section 3.4
MAX_RESPONSE_BYTES: Final = 1 << 20
NO_ROOT_DETAIL: Final = (
    "no trusted TSA root configured; token not checked against a root (pass --tsa-root)"
)

_TOKEN_DIR: Final = "provenance"  # noqa: S105 (a directory name)
_TOKEN_NAME = re.compile(r"timestamp-([1-9][0-9]{0,8})\.tsr")
_TEMP_PREFIX: Final = ".timestamp-"
_MAX_PEM_BYTES: Final = 1 << 20
_MAX_TEXT: Final = 200
# Reply types seen in the wild: RFC 3161 section 3.4 and its drafts, and generic binary.
_REPLY_TYPES: Final = frozenset(
    {REPLY_CONTENT_TYPE, "application/timestamp-response", "application/octet-stream"})
_HASHES: Final = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
# PKIStatus and PKIFailureInfo names as spelled in RFC 3161 section 2.4.2.
_STATUS_NAMES: Final = {
    0: "granted", 1: "grantedWithMods", 2: "rejection", 3: "waiting",
    4: "revocationWarning", 5: "revocationNotification",
}
_FAIL_INFO_NAMES: Final = {
    "bad_alg": "badAlg", "bad_request": "badRequest", "bad_data_format": "badDataFormat",
    "time_not_available": "timeNotAvailable", "unaccepted_policy": "unacceptedPolicy",
    "unaccepted_extension": "unacceptedExtension",
    "add_info_not_available": "addInfoNotAvailable", "system_failure": "systemFailure",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

CheckStatus = Literal["PASS", "FAIL", "SKIP"]
Root = x509.Certificate | bytes


@dataclass(frozen=True)
class TimestampToken:
    """A granted token, checked against its request, with the bytes to store."""

    #: the DER ``TimeStampReq`` that was sent (stored as ``timestamp-<n>.tsq``)
    request_der: bytes
    #: the ``TimeStampResp`` exactly as received (stored as ``timestamp-<n>.tsr``)
    response_der: bytes
    tsa_url: str
    #: ``TSTInfo.genTime`` (RFC 3161 section 2.4.2), timezone-aware UTC
    gen_time: datetime
    serial: int
    #: ``TSTInfo.policy`` as a dotted OID
    policy: str
    #: ``TSTInfo.tsa`` when present, else the signing certificate's subject (RFC 4514)
    tsa_name: str | None
    nonce: int
    #: True when the certificates SET OF was unsorted and re-sorted in memory to parse it
    der_repaired: bool = False


@dataclass(frozen=True)
class TimestampCheck:
    """The outcome of checking one stored token; ``SKIP`` is never a success."""

    status: CheckStatus
    detail: str
    gen_time: datetime | None = None
    tsa_name: str | None = None
    #: subjects of the certificates embedded in the token: reported, never trusted
    embedded_chain_subjects: tuple[str, ...] = ()
    serial: int | None = None
    policy: str | None = None
    der_repaired: bool = False


# ---------------------------------------------------------------------------------------------
# Parsing


class _MalformedError(Exception):
    """A response or request that cannot be read as what it claims to be."""


def _clean(text: str) -> str:
    """TSA-supplied text for one line of output: no control characters, bounded length."""
    text = _CONTROL.sub("?", text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _resort_certificates(der: bytes) -> bytes:
    """Re-encode a response with its ``SignedData.certificates`` SET OF in DER order.

    The field sits outside what the TSA signs (RFC 5652 section 5.4 signs the signed
    attributes, which hold the digest of the ``TSTInfo``), so reordering it cannot change what
    verification proves.  asn1crypto sorts a SET OF when it re-encodes it.
    """
    response = asn1_tsp.TimeStampResp.load(der, strict=True)
    signed_data = response["time_stamp_token"]["content"]
    certificates = signed_data["certificates"]
    signed_data["certificates"] = asn1_cms.CertificateSet(list(certificates))
    repaired = bytes(response.dump())
    # Reordering a definite-length SET keeps every length; anything else means asn1crypto
    # re-encoded more than the SET (BER input, say), which this work-around does not cover.
    if len(repaired) != len(der):
        raise ValueError("re-sorting the certificates changed the encoding's length")
    return repaired


def _decode_response(der: bytes) -> tuple[rfc3161_client.TimeStampResponse, bool]:
    """Parse a ``TimeStampResp``; the flag tells whether the SET OF work-around was needed."""
    try:
        return rfc3161_client.decode_timestamp_response(der), False
    except Exception as error:  # the Rust parser raises ValueError; be broad on purpose
        message = str(error)
    if "InvalidSetOrdering" not in message or "SignedData::certificates" not in message:
        raise _MalformedError(_clean(message))
    try:
        return rfc3161_client.decode_timestamp_response(_resort_certificates(der)), True
    except Exception as error:
        raise _MalformedError(_clean(str(error))) from None


def _status_text(response: rfc3161_client.TimeStampResponse, der: bytes) -> str:
    """``rejection (unsupported policy; failInfo unacceptedPolicy)`` from a PKIStatusInfo."""
    status = int(response.status)
    parts = [_STATUS_NAMES.get(status, f"unknown ({status})")]
    details = [_clean(text) for text in response.status_string]
    # rfc3161-client does not expose failInfo; read it with asn1crypto when it is there.
    with contextlib.suppress(Exception):
        info = asn1_tsp.PKIStatusInfo.load(asn1_core.Sequence.load(der)[0].dump())
        failures = sorted(_FAIL_INFO_NAMES.get(str(name), str(name))
                          for name in (info["fail_info"].native or ()))
        if failures:
            details.append("failInfo " + ", ".join(failures))
    if details:
        parts.append(f"({'; '.join(details)})")
    return " ".join(parts)


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def _embedded_certificates(
        response: rfc3161_client.TimeStampResponse) -> tuple[x509.Certificate | None,
                                                             list[x509.Certificate]]:
    """The signer's certificate (by the SignerInfo's issuer and serial) and all embedded ones."""
    certificates = [x509.load_der_x509_certificate(der)
                    for der in response.signed_data.certificates]
    signer = None
    signer_infos = list(response.signed_data.signer_infos)
    if len(signer_infos) == 1:
        sid = signer_infos[0]
        signer = next((c for c in certificates
                       if c.issuer == sid.issuer and c.serial_number == sid.serial_number), None)
    return signer, certificates


def _tsa_name(response: rfc3161_client.TimeStampResponse,
              signer: x509.Certificate | None) -> str | None:
    # TSTInfo.tsa is OPTIONAL (RFC 3161 section 2.4.2); fall back to the signer's subject.
    name = response.tst_info.name
    if name is not None:
        return _clean(_general_name(name))
    return _clean(signer.subject.rfc4514_string()) if signer is not None else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class _Request:
    hash_oid: str
    imprint: bytes
    nonce: int | None
    policy: str | None


def _decode_request(der: bytes) -> _Request:
    """The fields of a stored ``TimeStampReq`` (RFC 3161 section 2.4.1) that verify checks."""
    try:
        request = asn1_tsp.TimeStampReq.load(der, strict=True)
        imprint = request["message_imprint"]
        policy = request["req_policy"]
        nonce = request["nonce"].native
        return _Request(
            hash_oid=str(imprint["hash_algorithm"]["algorithm"].dotted),
            imprint=bytes(imprint["hashed_message"].native),
            nonce=int(nonce) if nonce is not None else None,
            policy=None if isinstance(policy, asn1_core.Void) else str(policy.dotted),
        )
    except Exception as error:
        raise _MalformedError(_clean(str(error))) from None


# ---------------------------------------------------------------------------------------------
# Requesting a token


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Turn every 3xx into an HTTPError: a TSA that redirects is reported, never followed."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


def _display_url(url: str) -> str:
    return _clean(url)


def _check_url(tsa_url: str) -> None:
    try:
        parts = urllib.parse.urlsplit(tsa_url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as error:
        raise UsageError(f"TSA URL {_display_url(tsa_url)!r} is not valid: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"TSA URL {_display_url(tsa_url)!r} must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UsageError("credentials in the TSA URL are not supported")


def _unreachable_reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve host ({reason.strerror or reason})"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message or reason})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return _clean(str(reason)) or type(reason).__name__


def _post(tsa_url: str, body: bytes, *, timeout: float, ca_bundle: Path | None,
          user_agent: str) -> tuple[bytes, str | None]:
    """POST a query (RFC 3161 section 3.4); return the body and its Content-Type."""
    shown = _display_url(tsa_url)
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if tsa_url.lower().startswith("https:"):
        try:
            context = ssl.create_default_context(
                cafile=str(ca_bundle) if ca_bundle is not None else None)
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"cannot use CA bundle {ca_bundle}: {error}") from None
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    # _check_url admitted only http:// and https:// URLs.
    request = urllib.request.Request(  # noqa: S310
        tsa_url, data=body, method="POST",
        headers={"Content-Type": QUERY_CONTENT_TYPE, "Accept": REPLY_CONTENT_TYPE,
                 "User-Agent": user_agent})
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as reply:
            if reply.status != 200:
                raise TimestampError(
                    f"TSA {shown} answered HTTP {reply.status} {_clean(reply.reason or '')}"
                    .rstrip())
            length = reply.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
                raise TimestampError(
                    f"TSA {shown} response is larger than {MAX_RESPONSE_BYTES} bytes")
            chunks: list[bytes] = []
            size = 0
            while chunk := reply.read(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise TimestampError(
                        f"TSA {shown} response is larger than {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimestampError(f"TSA {shown} did not answer within {timeout:g} s")
            content_type = reply.headers.get("Content-Type")
            return b"".join(chunks), content_type
    except urllib.error.HTTPError as error:
        with contextlib.suppress(Exception):
            error.close()
        if 300 <= error.code < 400:
            target = _clean(error.headers.get("Location", "") or "")
            raise TimestampError(
                f"TSA {shown} answered HTTP {error.code} (redirect to {target or '?'}); "
                "redirects are not followed, configure the final URL") from None
        raise TimestampError(f"TSA {shown} answered HTTP {error.code} {_clean(error.reason or '')}"
                             .rstrip()) from None
    except urllib.error.URLError as error:
        raise TimestampError(
            f"TSA {shown} unreachable: {_unreachable_reason(error.reason)}") from None
    except TimeoutError:
        raise TimestampError(f"TSA {shown} did not answer within {timeout:g} s") from None
    except http.client.HTTPException as error:
        raise TimestampError(
            f"TSA {shown} sent a broken HTTP response ({type(error).__name__})") from None
    except OSError as error:
        raise TimestampError(
            f"TSA {shown} unreachable: {_unreachable_reason(error)}") from None


def request_timestamp(data: bytes, tsa_url: str, *, timeout: float = 15,
                      ca_bundle: Path | None = None, user_agent: str) -> TimestampToken:
    """Ask the TSA at *tsa_url* for a token over *data* and check the answer.

    The request (RFC 3161 section 2.4.1) carries the SHA-256 imprint of *data*, a random
    64-bit nonce and ``certReq`` TRUE; it is POSTed as ``application/timestamp-query``
    (section 3.4) over HTTP or HTTPS (*ca_bundle* replaces the system CAs for HTTPS).
    Redirects are not followed and anything but HTTP 200 is an error; the answer may be at
    most :data:`MAX_RESPONSE_BYTES`.  The response must be granted (section 2.4.2), carry the
    imprint and nonce that were sent, and embed the TSA certificate.  The TSA's signature is
    not checked here (that needs a trusted root: :func:`verify_timestamp`).

    Raises :class:`~provenance.errors.TimestampError` with one line saying what went wrong.
    """
    _check_url(tsa_url)
    shown = _display_url(tsa_url)
    if not data:
        raise UsageError("nothing to timestamp: the data is empty")
    request = (rfc3161_client.TimestampRequestBuilder()
               .data(data)
               .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
               .nonce(nonce=True)
               .cert_request(cert_request=True)
               .build())
    request_der = request.as_bytes()
    response_der, content_type = _post(tsa_url, request_der, timeout=timeout,
                                       ca_bundle=ca_bundle, user_agent=user_agent)
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        response, repaired = _decode_response(response_der)
    except _MalformedError as error:
        if media_type and media_type not in _REPLY_TYPES:
            raise TimestampError(
                f"TSA {shown} answered with Content-Type {_clean(media_type)}, "
                f"not {REPLY_CONTENT_TYPE}") from None
        raise TimestampError(
            f"TSA {shown} response is not a valid TimeStampResp: {error}") from None

    # RFC 3161 section 2.4.2: only "granted" carries a token we accept; grantedWithMods is
    # refused as well, as rfc3161-client's verifier would refuse it later.
    if response.status == rfc3161_client.PKIStatus.GRANTED_WITH_MODS:
        raise TimestampError(f"TSA {shown} granted the token with modifications (status "
                             f"{_status_text(response, response_der)}); not accepted")
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        raise TimestampError(f"TSA {shown} refused: status {_status_text(response, response_der)}")
    try:
        info = response.tst_info
        imprint = info.message_imprint
        hash_oid = imprint.hash_algorithm.dotted_string
        digest = imprint.message
        gen_time = _utc(info.gen_time)
        serial = int(info.serial_number)
        policy = info.policy.dotted_string
        token_nonce = info.nonce
        signer, certificates = _embedded_certificates(response)
        tsa_name = _tsa_name(response, signer)
    except Exception as error:
        raise TimestampError(
            f"TSA {shown} response is not a valid TimeStampResp: {_clean(str(error))}") from None

    # RFC 3161 section 2.4.2: the imprint MUST equal the request's; the nonce MUST be the same.
    if hash_oid != request.message_imprint.hash_algorithm.dotted_string or \
            digest != hashlib.sha256(data).digest():
        raise TimestampError(f"TSA {shown} response imprint does not match the data sent")
    if token_nonce != request.nonce:
        raise TimestampError(f"TSA {shown} response nonce mismatch: "
                             f"sent {request.nonce}, got {token_nonce}")
    # RFC 3161 section 2.4.1: with certReq TRUE the TSA MUST include its certificate.
    if signer is None:
        detail = "no certificates" if not certificates else "no certificate matching its signer"
        raise TimestampError(f"TSA {shown} response carries {detail} although certReq was set")
    return TimestampToken(
        request_der=request_der, response_der=response_der, tsa_url=tsa_url,
        gen_time=gen_time, serial=serial, policy=policy, tsa_name=tsa_name,
        nonce=int(token_nonce), der_repaired=repaired)


# ---------------------------------------------------------------------------------------------
# Verifying a stored token


def _as_certificates(roots: Sequence[Root]) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for root in roots:
        if isinstance(root, x509.Certificate):
            certificates.append(root)
            continue
        try:
            if b"-----BEGIN" in root:
                certificates.extend(x509.load_pem_x509_certificates(root))
            else:
                certificates.append(x509.load_der_x509_certificate(root))
        except ValueError as error:
            raise UsageError(f"a TSA root is not a PEM or DER certificate: {error}") from None
    unique: dict[bytes, x509.Certificate] = {}
    for certificate in certificates:
        unique.setdefault(certificate.public_bytes(serialization.Encoding.DER), certificate)
    return list(unique.values())


_OPENSSL_DATA = re.compile(r'data: "([^"]*)"')
_OPENSSL_REASON = re.compile(r'reason: "([^"]*)"')


def _verification_reason(message: str) -> str:
    """The useful part of an rfc3161-client error that wraps an OpenSSL ``ErrorStack``."""
    if "ErrorStack(" in message:
        found = _OPENSSL_DATA.findall(message) or _OPENSSL_REASON.findall(message)
        if found:
            reasons = [text.removeprefix("Verify error: ") for text in found]
            return _clean("; ".join(dict.fromkeys(reasons)))
    return _clean(message.removeprefix("Error while verifying certificates: "))


def _fail(detail: str, **known: Any) -> TimestampCheck:
    return TimestampCheck(status="FAIL", detail=detail, **known)


def verify_timestamp(request_der: bytes | None, response_der: bytes, data: bytes,
                     roots: Sequence[Root]) -> TimestampCheck:
    """Check a stored token over *data* (the bytes of ``provenance/manifest.json.sig``).

    In order: the response parses (the SET OF work-around applies) and is granted; its
    imprint is the hash of *data*; when the stored request is given, the token answers it
    (hash algorithm, imprint, nonce, policy); then, only with *roots* from the verifier's own
    configuration, the TSA's CMS signature and its certificate chain at ``genTime``
    (rfc3161-client: purpose timeStamping, critical EKU).  Certificates embedded in the token
    are never trusted; they are listed in ``embedded_chain_subjects``.

    ``FAIL`` for any mismatch or a malformed token, even without roots; ``SKIP`` with
    :data:`NO_ROOT_DETAIL` when the token is sound but no root was given; ``PASS`` only after
    the chain check.  Raises :class:`~provenance.errors.UsageError` only for unusable *roots*.
    """
    trusted = _as_certificates(roots)
    try:
        response, repaired = _decode_response(response_der)
    except _MalformedError as error:
        return _fail(f"timestamp token is not a valid TimeStampResp: {error}")
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        return _fail(f"timestamp response was not granted: status "
                     f"{_status_text(response, response_der)}", der_repaired=repaired)
    try:
        info = response.tst_info
        hash_oid = info.message_imprint.hash_algorithm.dotted_string
        digest = info.message_imprint.message
        token_nonce = info.nonce
        policy = info.policy.dotted_string
        signer, certificates = _embedded_certificates(response)
        issuers = {c.issuer.public_bytes() for c in certificates}
        if signer is not None:
            issuers.add(signer.issuer.public_bytes())
        known: dict[str, Any] = {
            "gen_time": _utc(info.gen_time),
            "tsa_name": _tsa_name(response, signer),
            "serial": int(info.serial_number),
            "policy": policy,
            "der_repaired": repaired,
            "embedded_chain_subjects": tuple(
                _clean(c.subject.rfc4514_string())
                for c in ([signer] if signer is not None else [])
                + sorted((c for c in certificates if c is not signer),
                         key=lambda c: c.subject.rfc4514_string())),
        }
    except Exception as error:
        return _fail(f"timestamp token is not a valid TimeStampResp: {_clean(str(error))}",
                     der_repaired=repaired)

    # The imprint binds the token to the data (RFC 3161 section 2.4.2, messageImprint).
    algorithm = _HASHES.get(hash_oid)
    if algorithm is None:
        return _fail(f"timestamp token uses an unsupported hash algorithm {hash_oid}", **known)
    if hashlib.new(algorithm, data).digest() != digest:
        return _fail(f"timestamp token imprint does not match the data ({algorithm}): "
                     "it covers other bytes", **known)

    notes: list[str] = []
    if request_der is None:
        notes.append("no stored request, nonce not checked")
    else:
        try:
            asked = _decode_request(request_der)
        except _MalformedError as error:
            return _fail(f"stored timestamp request is not a valid TimeStampReq: {error}",
                         **known)
        if asked.hash_oid != hash_oid or asked.imprint != digest:
            return _fail("timestamp token imprint differs from the stored request's", **known)
        # RFC 3161 section 2.4.2: the nonce MUST be present, and equal, if it was requested.
        if asked.nonce is not None and token_nonce != asked.nonce:
            return _fail(f"nonce mismatch: stored request has {asked.nonce}, "
                         f"token has {token_nonce}", **known)
        # RFC 3161 section 2.4.2: a requested policy MUST be the token's policy.
        if asked.policy is not None and asked.policy != policy:
            return _fail(f"timestamp token policy {policy} differs from the requested "
                         f"{asked.policy}", **known)

    if not trusted:
        return TimestampCheck(status="SKIP", detail=NO_ROOT_DETAIL, **known)
    # A token from a TSA none of whose embedded certificates was issued by a configured root
    # is one this verifier cannot judge (a second TSA whose root the user did not give), not
    # a forgery: SKIP, as with no root at all. A chain that does lead to a configured root
    # must then verify, or it FAILs.
    if issuers and not issuers & {root.subject.public_bytes() for root in trusted}:
        return TimestampCheck(status="SKIP", detail="none of the configured TSA roots issued "
                              "this token's certificates (pass its root with --tsa-root)",
                              **known)

    builder = rfc3161_client.VerifierBuilder()
    for root in trusted:
        builder = builder.add_root_certificate(root)
    # Embedded certificates are deliberately not added (see the module docstring, "Trust").
    try:
        builder.build().verify_message(response, data)
    except rfc3161_client.VerificationError as error:
        return _fail(f"TSA signature or chain does not verify against the configured TSA "
                     f"root(s): {_verification_reason(str(error))}", **known)
    except Exception as error:  # a token that parses but OpenSSL cannot process
        return _fail(f"timestamp token cannot be verified: {_clean(str(error))}", **known)
    gen_time = known["gen_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = (f"timestamp by {known['tsa_name'] or 'an unnamed TSA'} at {gen_time}, "
              "chain verified to a configured TSA root")
    if notes:
        detail += f" ({'; '.join(notes)})"
    return TimestampCheck(status="PASS", detail=detail, **known)


def load_roots(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Read every PEM certificate in each file (``--tsa-root``); one or more per file."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                content = handle.read(_MAX_PEM_BYTES + 1)
        except OSError as error:
            raise UsageError(
                f"cannot read TSA root {path}: {error.strerror or error}") from None
        if len(content) > _MAX_PEM_BYTES:
            raise UsageError(f"TSA root {path} is larger than {_MAX_PEM_BYTES} bytes")
        if b"-----BEGIN CERTIFICATE-----" not in content:
            raise UsageError(f"TSA root {path} contains no PEM certificate "
                             "(expected -----BEGIN CERTIFICATE-----)")
        try:
            roots.extend(x509.load_pem_x509_certificates(content))
        except ValueError as error:
            raise UsageError(f"TSA root {path} is not a valid PEM certificate: {error}") from None
    return _as_certificates(roots)


# ---------------------------------------------------------------------------------------------
# Bundle layout


def _token_dir(bundle: Path) -> Path:
    directory = bundle / _TOKEN_DIR
    if directory.is_symlink() or not directory.is_dir():
        raise BundleFormatError(f"{bundle} has no {_TOKEN_DIR}/ directory")
    return directory


def _numbered(directory: Path) -> dict[int, Path]:
    numbers: dict[int, Path] = {}
    try:
        names = os.listdir(directory)
    except OSError as error:
        raise BundleFormatError(
            f"cannot list {directory}: {error.strerror or error}") from None
    for name in names:
        stem, dot, suffix = name.rpartition(".")
        if dot and suffix in ("tsr", "tsq"):
            match = _TOKEN_NAME.fullmatch(f"{stem}.tsr")
            if match:
                numbers.setdefault(int(match.group(1)), directory / f"{stem}.tsr")
    return numbers


def next_token_paths(bundle: Path) -> tuple[Path, Path]:
    """The next free ``provenance/timestamp-<n>.tsr`` and ``.tsq`` (n above every used one)."""
    directory = _token_dir(bundle)
    n = max(_numbered(directory), default=0) + 1
    return directory / f"timestamp-{n}.tsr", directory / f"timestamp-{n}.tsq"


def _create_exclusive(target: Path, content: bytes) -> None:
    """Create *target* with *content*; FileExistsError if it exists, never a partial file.

    The bytes go to a temporary file in the same directory first and are then hard-linked to
    the final name, which fails rather than replacing an existing file.  Filesystems without
    hard links get an ``O_EXCL`` create instead.
    """
    fd, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            out = os.open(target, flags, 0o644)
            with os.fdopen(out, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def write_token(bundle: Path, token: TimestampToken) -> tuple[str, str]:
    """Store *token* as the next ``timestamp-<n>.tsr``/``.tsq``; return both relative paths.

    The ``.tsq`` is created first, then the ``.tsr`` (a listed token always has its request).
    An existing file is never overwritten: if another writer takes number n meanwhile, the
    next number is used.  Neither the manifest nor its signature is touched.
    """
    directory = _token_dir(bundle)
    for _attempt in range(64):
        tsr, tsq = next_token_paths(bundle)
        try:
            _create_exclusive(tsq, token.request_der)
        except FileExistsError:
            continue
        except OSError as error:
            raise OperationalError(
                f"cannot write {tsq}: {error.strerror or error}") from None
        try:
            _create_exclusive(tsr, token.response_der)
        except OSError as error:
            with contextlib.suppress(OSError):
                tsq.unlink()  # ours: created just above
            if isinstance(error, FileExistsError):
                continue
            raise OperationalError(
                f"cannot write {tsr}: {error.strerror or error}") from None
        fsync_directory(directory)
        return f"{_TOKEN_DIR}/{tsr.name}", f"{_TOKEN_DIR}/{tsq.name}"
    raise OperationalError(f"cannot find a free timestamp file name in {directory}")


@dataclass(frozen=True)
class StampOutcome:
    """One TSA asked for a token over the signature: the file written, or why not."""

    tsa_url: str
    token_file: str | None = None
    gen_time: str | None = None
    error: str | None = None


def stamp_bundle(bundle: Path, tsa_urls: Sequence[str], *, user_agent: str,
                 ca_bundle: Path | None = None, timeout: float = 15.0) -> list[StampOutcome]:
    """Ask each TSA for an RFC 3161 token over ``provenance/manifest.json.sig``.

    Tokens are added beside the signature and never change the signed manifest; a TSA that
    fails is reported in the outcome, not raised (README, "Trusted timestamps").
    """
    signature = (bundle / STAMPED_PATH).read_bytes()
    outcomes = []
    for url in tsa_urls:
        try:
            token = request_timestamp(signature, url, timeout=timeout, ca_bundle=ca_bundle,
                                      user_agent=user_agent)
            tsr, _tsq = write_token(bundle, token)
        except (TimestampError, UsageError) as error:
            # A bad TSA never costs the capture: it is reported, the bundle is still committed.
            outcomes.append(StampOutcome(tsa_url=url, error=str(error)))
            continue
        outcomes.append(StampOutcome(tsa_url=url, token_file=tsr,
                                     gen_time=rfc3339(token.gen_time, micros=False)))
    return outcomes


def read_stored_tokens(bundle: Path) -> list[tuple[Path, TimestampCheck | None]]:
    """Every stored token, checked against the bundle's signature with no trusted root.

    That parses each token and checks that its imprint covers ``manifest.json.sig`` (and that
    it answers its stored request) without judging the TSA's chain, which is what ``show`` and
    ``cite`` need to name a TSA and a time; ``verify --tsa-root`` decides whether to believe
    it. ``None`` stands for a token file that cannot be read or is too large.
    """
    signature = read_capped(bundle / STAMPED_PATH, MAX_RESPONSE_BYTES) or b""
    checked: list[tuple[Path, TimestampCheck | None]] = []
    for tsr, tsq in list_tokens(bundle):
        response = read_capped(tsr, MAX_RESPONSE_BYTES)
        if response is None:
            checked.append((tsr, None))
            continue
        request = read_capped(tsq, MAX_RESPONSE_BYTES) if tsq is not None else None
        checked.append((tsr, verify_timestamp(request, response, signature, ())))
    return checked


def list_tokens(bundle: Path) -> list[tuple[Path, Path | None]]:
    """Every stored token as ``(tsr path, tsq path or None)``, sorted by n.

    Files named ``timestamp-*.tsr`` that do not follow the ``timestamp-<n>.tsr`` pattern
    (all of which cover ``provenance/manifest.json.sig`` too) come last, by name, so a
    verifier sees them.  Symbolic links are not listed (verify reports them separately).
    """
    directory = bundle / _TOKEN_DIR
    if directory.is_symlink() or not directory.is_dir():
        return []
    found: list[tuple[tuple[int, int, str], Path, Path | None]] = []
    for tsr in directory.glob("timestamp-*.tsr"):
        if tsr.is_symlink() or not tsr.is_file():
            continue
        tsq = tsr.with_suffix(".tsq")
        request = tsq if tsq.is_file() and not tsq.is_symlink() else None
        match = _TOKEN_NAME.fullmatch(tsr.name)
        key = (0, int(match.group(1)), "") if match else (1, 0, tsr.name)
        found.append((key, tsr, request))
    return [(tsr, tsq) for _key, tsr, tsq in sorted(found, key=lambda item: item[0])]
