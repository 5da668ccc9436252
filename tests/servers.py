"""Loopback HTTP(S) servers for tests: real sockets on 127.0.0.1, port chosen by the OS."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# A handler writes the whole raw response itself (status line, headers, body) to ``wfile``.
RawRoute = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    base_url: str
    requests: list[str]
    port: int
    #: one entry per accepted TCP connection (the client's address), requests or not
    connections: list[str] = field(default_factory=list)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True
    accepted: list[str]

    def verify_request(self, request: object, client_address: object) -> bool:
        self.accepted.append(str(client_address))
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-response is part of several tests


@contextmanager
def serve(routes: dict[str, RawRoute], *, host: str = "127.0.0.1",
          tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    seen: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with lock:
                seen.append(self.path)
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                body = b"not found"
                self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: 9\r\nConnection: close\r\n\r\n" + body)
                return
            route(self)

    server = _Quiet((host, 0), Handler)
    server.accepted = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    scheme = "https" if tls else "http"
    try:
        yield Server(base_url=f"{scheme}://{host}:{port}", requests=seen, port=port,
                     connections=server.accepted)
    finally:
        server.shutdown()
        server.server_close()


def raw(data: bytes) -> RawRoute:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(data)
        handler.close_connection = True
    return route


def html(body: str, status: str = "200 OK", extra: str = "") -> RawRoute:
    payload = body.encode("utf-8")
    return raw(f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}"
               f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)


@dataclass
class LoopbackPKI:
    ca_pem: Path
    server_context: ssl.SSLContext
    ca_cert: x509.Certificate
    leaf_cert: x509.Certificate


def make_pki(directory: Path, hostnames: tuple[str, ...] = ("localhost",),
             ips: tuple[str, ...] = ("127.0.0.1",)) -> LoopbackPKI:
    """A private root and a server certificate for loopback names (real X.509, real TLS)."""
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provenance test root")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    leaf_cert = (x509.CertificateBuilder()
                 .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
                 .issuer_name(ca_name).public_key(leaf_key.public_key())
                 .serial_number(x509.random_serial_number())
                 .not_valid_before(now - dt.timedelta(days=1))
                 .not_valid_after(now + dt.timedelta(days=30))
                 .add_extension(x509.SubjectAlternativeName(names), critical=False)
                 .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                     ca_key.public_key()), critical=False)
                 .sign(ca_key, hashes.SHA256()))
    ca_pem = directory / "test-root.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = directory / "server-chain.pem"
    chain.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM)
                      + ca_cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server-key.pem"
    key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_path)
    return LoopbackPKI(ca_pem=ca_pem, server_context=context, ca_cert=ca_cert, leaf_cert=leaf_cert)
