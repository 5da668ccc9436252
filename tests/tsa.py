"""Loopback RFC 3161 time-stamping authorities for tests; they never leave 127.0.0.1.

Two independent TSAs, each served over HTTP by a ``ThreadingHTTPServer`` bound to
``127.0.0.1`` port 0 (the OS picks a free port):

* :func:`serve_builtin_tsa` answers with responses built here with ``asn1crypto`` +
  ``cryptography`` (standards.md section 1.3): a ``TimeStampResp`` (RFC 3161 section 2.4.2)
  whose token is a CMS ``SignedData`` (RFC 5652 section 5) over a ``TSTInfo``, with the
  ``signingCertificateV2`` attribute of RFC 5816.  It can be told to misbehave (HTTP 500,
  garbage, wrong imprint, wrong nonce, status rejection, slow, ...) through
  :attr:`BuiltinTSA.mode`.
* :func:`serve_openssl_tsa` pipes every request through the real ``openssl ts -reply``
  (standards.md section 1.4).  Its configuration embeds the root with ``certs =``, and the
  certificates are sized so that OpenSSL's SET OF certificates comes out *unsorted* (not DER),
  which is exactly what strict DER parsers such as rfc3161-client reject.

Both record every request and response they saw, so tests can compare stored bytes with
what went over the wire.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEST_POLICY = "1.3.6.1.4.1.99999.1.1"  # a private test OID, never a real TSA policy
REQUEST_TYPE = "application/timestamp-query"  # RFC 3161 section 3.4
REPLY_TYPE = "application/timestamp-reply"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

Mode = Literal[
    "ok",
    "http500",  # HTTP 500, empty body
    "garbage",  # 200 with a body that is not DER
    "html",  # 200, text/html body (a captive portal, a web page)
    "wrong_imprint",  # a valid, signed token over some other data
    "wrong_nonce",  # a valid, signed token with nonce + 1
    "no_nonce",  # a valid, signed token that leaves the nonce out
    "rejection",  # PKIStatus rejection with a failInfo (RFC 3161 section 2.4.2)
    "waiting",  # PKIStatus waiting
    "slow",  # answers after BuiltinTSA.delay seconds
    "redirect",  # HTTP 302 to another URL
    "oversize",  # a body larger than the client's cap
    "no_certs",  # a granted token without the certificates asked for by certReq
]


# ---------------------------------------------------------------------------------------------
# A throwaway PKI


@dataclass(frozen=True)
class LoopbackPKI:
    """A root, optionally an intermediate CA, and a TSA certificate with its key."""

    root_key: PrivateKey
    root_cert: x509.Certificate
    tsa_key: PrivateKey
    tsa_cert: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def root_pem(self) -> bytes:
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Everything above the TSA certificate, nearest first, root last."""
        return (*self.intermediates, self.root_cert)

    def write(self, directory: Path) -> dict[str, Path]:
        """Write ``root.pem``, ``tsa.pem``, ``tsa.key`` and ``chain.pem`` into *directory*."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "root": directory / "root.pem",
            "tsa": directory / "tsa.pem",
            "key": directory / "tsa.key",
            "chain": directory / "chain.pem",
        }
        paths["root"].write_bytes(self.root_pem)
        paths["tsa"].write_bytes(self.tsa_cert.public_bytes(serialization.Encoding.PEM))
        paths["key"].write_bytes(self.tsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        paths["chain"].write_bytes(b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain))
        return paths


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _ca_cert(subject: x509.Name, key: PrivateKey, issuer: x509.Name, issuer_key: PrivateKey,
             not_before: datetime, not_after: datetime) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(*, root_name: str = "provenance test root",
             tsa_name: str = "provenance test TSA",
             organization: str = "provenance tests (loopback only)",
             key_type: Literal["ec", "rsa"] = "ec",
             with_intermediate: bool = False,
             eku_critical: bool = True,
             not_before: datetime | None = None,
             not_after: datetime | None = None) -> LoopbackPKI:
    """A fresh test PKI.

    The TSA certificate carries ``ExtendedKeyUsage(timeStamping)``, critical as RFC 3161
    section 2.3 requires (``eku_critical=False`` makes a non-conforming one for tests).  The
    TSA certificate's DER is longer than the root's (it has an organization and more
    extensions), so "TSA certificate, then root" is *not* DER SET OF order.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    not_before = not_before or now - timedelta(days=1)
    not_after = not_after or now + timedelta(days=30)
    root_key = _new_key(key_type)
    root_subject = _name(root_name)
    root = _ca_cert(root_subject, root_key, root_subject, root_key,
                    not_before - timedelta(days=1), not_after + timedelta(days=365))
    issuer_key, issuer_cert = root_key, root
    intermediates: tuple[x509.Certificate, ...] = ()
    if with_intermediate:
        ica_key = _new_key(key_type)
        ica = _ca_cert(_name(f"{root_name} intermediate", organization), ica_key, root_subject,
                       root_key, not_before - timedelta(days=1), not_after + timedelta(days=180))
        issuer_key, issuer_cert, intermediates = ica_key, ica, (ica,)
    tsa_key = _new_key(key_type)
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(tsa_name, organization)).issuer_name(issuer_cert.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                       critical=eku_critical)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return LoopbackPKI(root_key=root_key, root_cert=root, tsa_key=tsa_key, tsa_cert=tsa_cert,
                   intermediates=intermediates)


# ---------------------------------------------------------------------------------------------
# The asn1crypto response builder (standards.md section 1.3)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def status_only_response(status: str, text: str | None = None,
                         fail_info: set[str] | None = None) -> bytes:
    """A ``TimeStampResp`` without a token (RFC 3161 section 2.4.2: status is not granted).

    asn1crypto's ``TimeStampResp`` insists on the token, so the outer SEQUENCE is wrapped here.
    """
    info: dict[str, Any] = {"status": status}
    if text is not None:
        info["status_string"] = [text]
    if fail_info:
        info["fail_info"] = fail_info
    body = tsp.PKIStatusInfo(info).dump()
    return bytes(core.Sequence(contents=body).dump())


def build_response(request_der: bytes, pki: LoopbackPKI, *,
                   gen_time: datetime | None = None,
                   serial: int | None = None,
                   nonce: int | Literal["from-request"] | None = "from-request",
                   imprint: bytes | None = None,
                   embed_chain: bool = True,
                   embed_certs: bool | None = None,
                   tsa_name_field: bool = False,
                   policy: str | None = None) -> bytes:
    """A granted ``TimeStampResp`` for *request_der*, signed with the TSA key of *pki*.

    ``nonce``/``imprint`` override what the request asked for (for misbehaving TSAs);
    ``embed_chain`` adds the intermediates and the root next to the TSA certificate when the
    request has ``certReq`` (RFC 3161 section 2.4.1).  asn1crypto sorts the certificates SET
    on output, so this TSA always emits DER.
    """
    request = tsp.TimeStampReq.load(request_der)
    gen_time = (gen_time or datetime.now(UTC)).replace(microsecond=0)
    message_imprint = request["message_imprint"]
    if imprint is not None:
        message_imprint = tsp.MessageImprint({
            "hash_algorithm": {"algorithm": message_imprint["hash_algorithm"]["algorithm"].native},
            "hashed_message": imprint,
        })
    tst: dict[str, Any] = {
        "version": "v1",
        "policy": policy or request["req_policy"].native or TEST_POLICY,
        "message_imprint": message_imprint,
        "serial_number": serial if serial is not None else secrets.randbits(63),
        "gen_time": gen_time,
        "accuracy": {"seconds": 1},
    }
    request_nonce = request["nonce"].native
    chosen_nonce = request_nonce if nonce == "from-request" else nonce
    if chosen_nonce is not None:
        tst["nonce"] = chosen_nonce
    tsa_der = _der(pki.tsa_cert)
    a_tsa = ax509.Certificate.load(tsa_der)
    if tsa_name_field:  # RFC 3161 section 2.4.2: tsa [0] GeneralName OPTIONAL
        tst["tsa"] = ax509.GeneralName(name="directory_name", value=a_tsa.subject)
    tst_info = tsp.TSTInfo(tst)
    tst_der = tst_info.dump()

    ess = tsp.SigningCertificateV2({"certs": [{
        "hash_algorithm": {"algorithm": "sha256"},
        "cert_hash": hashlib.sha256(tsa_der).digest(),
        "issuer_serial": {
            "issuer": [ax509.GeneralName(name="directory_name", value=a_tsa.issuer)],
            "serial_number": a_tsa.serial_number,
        },
    }]})
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "signing_time",
                          "values": [cms.Time(name="utc_time", value=gen_time)]}),
        cms.CMSAttribute({"type": "message_digest",
                          "values": [hashlib.sha256(tst_der).digest()]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
    ])
    to_sign = attrs.dump()  # RFC 5652 section 5.4: the DER SET OF, tag 0x31
    if isinstance(pki.tsa_key, rsa.RSAPrivateKey):
        signature = pki.tsa_key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        signature_algorithm = "sha256_rsa"
    else:
        signature = pki.tsa_key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        signature_algorithm = "sha256_ecdsa"
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": a_tsa.issuer, "serial_number": a_tsa.serial_number}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": signature_algorithm},
        "signature": signature,
    })
    signed_data: dict[str, Any] = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    wants_certs = request["cert_req"].native if embed_certs is None else embed_certs
    if wants_certs:
        embedded = [a_tsa]
        if embed_chain:
            embedded += [ax509.Certificate.load(_der(c)) for c in pki.chain]
        signed_data["certificates"] = embedded
    token = cms.ContentInfo({"content_type": "signed_data",
                             "content": cms.SignedData(signed_data)})
    response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
    return bytes(response.dump())


# ---------------------------------------------------------------------------------------------
# Loopback HTTP serving


@dataclass
class LoopbackTSA:
    """A TSA on ``http://127.0.0.1:<port>/tsr``; what it saw is in ``requests``/``responses``."""

    pki: LoopbackPKI
    responder: Callable[[bytes], bytes]
    url: str = ""
    requests: list[bytes] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    #: with TLS: the CA file that vouches for the loopback server's certificate
    tls_ca: Path | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Send a normal reply; subclasses override this to misbehave."""
        response = self.responder(body)
        self.responses.append(response)
        send(handler, 200, response, REPLY_TYPE)


@dataclass
class BuiltinTSA(LoopbackTSA):
    """The asn1crypto-backed TSA; set ``mode`` (and ``delay``) to make it misbehave."""

    mode: Mode = "ok"
    delay: float = 2.0
    gen_time: datetime | None = None
    tsa_name_field: bool = False
    embed_chain: bool = True

    def build(self, request_der: bytes, **overrides: Any) -> bytes:
        options: dict[str, Any] = {"gen_time": self.gen_time,
                                   "tsa_name_field": self.tsa_name_field,
                                   "embed_chain": self.embed_chain}
        return build_response(request_der, self.pki, **(options | overrides))

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self.mode
        if mode == "http500":
            send(handler, 500, b"internal error\n", "text/plain")
        elif mode == "garbage":
            send(handler, 200, b"\x30\x03garbage that is not DER", REPLY_TYPE)
        elif mode == "html":
            send(handler, 200, b"<html><body>Please log in</body></html>",
                 "text/html; charset=utf-8")
        elif mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif mode == "oversize":
            send(handler, 200, b"\x30" * ((1 << 20) + 10), REPLY_TYPE)
        elif mode == "rejection":
            send(handler, 200, status_only_response(
                "rejection", "unsupported policy", {"unaccepted_policy"}), REPLY_TYPE)
        elif mode == "waiting":
            send(handler, 200, status_only_response("waiting"), REPLY_TYPE)
        else:
            if mode == "slow":
                self.stopping.wait(self.delay)
            overrides: dict[str, Any] = {}
            if mode == "wrong_imprint":
                overrides["imprint"] = hashlib.sha256(b"something else entirely").digest()
            elif mode == "wrong_nonce":
                nonce = tsp.TimeStampReq.load(body)["nonce"].native or 0
                overrides["nonce"] = nonce + 1
            elif mode == "no_nonce":
                overrides["nonce"] = None
            elif mode == "no_certs":
                overrides["embed_certs"] = False
            response = self.build(body, **overrides)
            self.responses.append(response)
            send(handler, 200, response, REPLY_TYPE)


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _handler_for(tsa: LoopbackTSA) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            tsa.requests.append(body)
            tsa.request_headers.append(dict(self.headers.items()))
            if self.headers.get("Content-Type") != REQUEST_TYPE:
                send(self, 415, b"expected application/timestamp-query\n", "text/plain")
                return
            try:
                tsa.answer(self, body)
            except OSError:
                pass  # the client hung up (timeouts, the size cap): expected in these tests
            except Exception as error:  # surfaced to tests through tsa.errors
                tsa.errors.append(error)
                raise

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failures are recorded in LoopbackTSA.errors; keep test output clean


def _server_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A CA and a server certificate for 127.0.0.1, and a server-side TLS context."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("loopback TLS test CA")
    ca = _ca_cert(ca_name, ca_key, ca_name, ca_key, now - timedelta(days=1),
                  now + timedelta(days=30))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1")).issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, ca_path


@contextmanager
def _serving(tsa: LoopbackTSA, tls_dir: Path | None = None) -> Iterator[None]:
    server = _QuietServer(("127.0.0.1", 0), _handler_for(tsa))
    host, port = server.server_address[:2]
    scheme = "http"
    if tls_dir is not None:
        context, tsa.tls_ca = _server_tls(tls_dir)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    tsa.url = f"{scheme}://{host!s}:{port}/tsr"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name="loopback-tsa", daemon=True)
    thread.start()
    try:
        yield
    finally:
        tsa.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_builtin_tsa(pki: LoopbackPKI | None = None, *, gen_time: datetime | None = None,
                      tsa_name_field: bool = False,
                      embed_chain: bool = True,
                      tls_dir: Path | None = None) -> Iterator[BuiltinTSA]:
    """Serve the asn1crypto-backed TSA on loopback for the duration of the ``with`` block.

    With *tls_dir* it serves HTTPS with a certificate for 127.0.0.1 from a throwaway CA whose
    PEM is ``tsa.tls_ca``.
    """
    tsa = BuiltinTSA(pki=pki or make_pki(), responder=lambda _request: b"",
                     gen_time=gen_time, tsa_name_field=tsa_name_field, embed_chain=embed_chain)
    tsa.responder = tsa.build
    with _serving(tsa, tls_dir):
        yield tsa


# ---------------------------------------------------------------------------------------------
# The openssl-backed TSA (standards.md section 1.4)

_TSA_CNF = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial          = {serial}
signer_digest   = sha256
default_policy  = {policy}
digests         = sha256, sha384, sha512
ess_cert_id_alg = sha256
accuracy        = secs:1
tsa_name        = yes
certs           = {chain}
"""


@dataclass
class OpenSSLTSA(LoopbackTSA):
    """The ``openssl ts -reply`` TSA; ``directory`` holds its keys, config and serial file."""

    directory: Path = Path()


def openssl_reply(request_der: bytes, directory: Path, lock: threading.Lock) -> bytes:
    """Run ``openssl ts -reply`` on one request; the serial file makes it one at a time."""
    with lock, tempfile.TemporaryDirectory(dir=directory) as scratch:
        query = Path(scratch) / "request.tsq"
        reply = Path(scratch) / "reply.tsr"
        query.write_bytes(request_der)
        result = subprocess.run(
            ["openssl", "ts", "-reply", "-config", str(directory / "tsa.cnf"),
             "-queryfile", str(query), "-inkey", str(directory / "tsa.key"),
             "-signer", str(directory / "tsa.pem"), "-out", str(reply)],
            capture_output=True, timeout=60, check=False)
        if result.returncode != 0 or not reply.exists():
            raise RuntimeError(f"openssl ts -reply failed: {result.stderr.decode(errors='replace')}")
        return reply.read_bytes()


@contextmanager
def serve_openssl_tsa(directory: Path, pki: LoopbackPKI | None = None) -> Iterator[OpenSSLTSA]:
    """Serve ``openssl ts -reply`` on loopback; *directory* receives its files."""
    pki = pki or make_pki()
    paths = pki.write(directory)
    (directory / "tsaserial").write_text("01\n")
    (directory / "tsa.cnf").write_text(_TSA_CNF.format(
        serial=directory / "tsaserial", policy=TEST_POLICY, chain=paths["chain"]))
    lock = threading.Lock()

    def respond(request_der: bytes) -> bytes:
        return openssl_reply(request_der, directory, lock)

    tsa = OpenSSLTSA(pki=pki, responder=respond, directory=directory)
    with _serving(tsa):
        yield tsa
