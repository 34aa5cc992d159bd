"""Measuring the transport security of a node's RPC endpoint, for the audit (runtime rules of TS-2):

* a TLS handshake with the network CA as the only trust anchor and the name hcops dials checked against
  the certificate: ``handshake`` (a TLS session was set up), ``verified`` (and the certificate verified);
  when verification fails, a second handshake that trusts anything reads the certificate anyway, so that
  an expired or foreign certificate is still reported with its dates and fingerprint;
* a plain HTTP ``GET /status`` on the same endpoint: ``plaintextRefused`` unless it got an RPC answer.

The facts are already in the fact document's camelCase (policies/runtime/README.md, ``nodes[].rpc.tls``).
Connections come from a callable, so the same code measures a published Docker port and a Kubernetes pod
reached through a port-forward.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
from collections.abc import Callable
from typing import Any

from hcops.clock import format_time

Connect = Callable[[], socket.socket]
Plaintext = Callable[[], tuple[int, bytes]]  # (HTTP status, body) of a plain GET /status; raises OSError


def _unverified() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only to read a certificate that failed verification, never to talk
    return ctx


def _handshake(connect: Connect, context: ssl.SSLContext, server_name: str) -> tuple[bytes, str | None]:
    """The server's DER certificate and the TLS version after a handshake with ``context``."""
    sock = connect()
    try:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True) or b"", tls.version()
    finally:
        sock.close()


def _certificate(der: bytes) -> dict[str, Any]:
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    after = cert.not_valid_after_utc
    return {"notAfter": format_time(after), "notAfterNs": int(after.timestamp()) * 1_000_000_000,
            "fingerprint": hashlib.sha256(der).hexdigest(), "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string()}


def plaintext_get(host: str, port: int, timeout: float = 3.0) -> Plaintext:
    def get() -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/status")
            resp = conn.getresponse()
            return resp.status, resp.read(1 << 16)
        finally:
            conn.close()

    return get


def _rpc_answer(status: int, body: bytes) -> bool:
    """Whether a plain HTTP request got what a CometBFT RPC answers: HTTP 200 with a JSON-RPC result."""
    if status != 200:
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "result" in doc


def measure(connect: Connect, context: ssl.SSLContext, server_name: str, plaintext: Plaintext, *,
            endpoint: str, verified: tuple[bytes, str | None] | None = None) -> dict[str, Any]:
    """TLS facts of one endpoint (see the module doc); never raises for what the endpoint does.
    ``verified``: (certificate, TLS version) of a handshake with the same ``context`` and ``server_name``
    that the caller's RPC client has just completed (``HttpTransport.peer_certificate``), so that a sweep
    does not set up a second TLS session per node only to measure the first one again."""
    facts: dict[str, Any] = {"enabled": True, "endpoint": endpoint, "serverName": server_name,
                             "handshake": False, "verified": False, "error": None, "protocol": None,
                             "notAfter": None, "notAfterNs": None, "fingerprint": None,
                             "plaintextRefused": None, "plaintextStatus": None}
    der = b""
    try:
        der, facts["protocol"] = verified if verified else _handshake(connect, context, server_name)
        facts.update(handshake=True, verified=True)
    except ssl.SSLCertVerificationError as exc:
        facts["error"] = f"certificate not verified: {exc.verify_message or exc.reason}"
        try:
            der, facts["protocol"] = _handshake(connect, _unverified(), server_name)
            facts["handshake"] = True
        except (OSError, ValueError):
            pass
    except ssl.SSLError as exc:
        facts["error"] = f"TLS handshake failed: {exc.reason or exc}"
    except (OSError, ValueError) as exc:
        facts["error"] = f"not reachable: {exc.__class__.__name__}: {exc}"[:200]
    if der:
        facts.update(_certificate(der))
    try:
        status, body = plaintext()
    except (OSError, http.client.HTTPException) as exc:
        facts.update(plaintextRefused=True, plaintextStatus=f"no HTTP answer ({exc.__class__.__name__})")
    else:
        facts.update(plaintextRefused=not _rpc_answer(status, body), plaintextStatus=f"HTTP {status}")
    return facts


def measure_tcp(host: str, port: int, context: ssl.SSLContext, server_name: str,
                timeout: float = 3.0, verified: tuple[bytes, str | None] | None = None,
                plaintext: Plaintext | None = None) -> dict[str, Any]:
    """TLS facts of an RPC published at ``host:port`` (the Docker targets); ``plaintext``: the plain HTTP
    attempt if the caller makes it itself (default: ``plaintext_get`` of the same endpoint, made here)."""
    return measure(lambda: socket.create_connection((host, port), timeout=timeout), context, server_name,
                   plaintext or plaintext_get(host, port, timeout), endpoint=f"{host}:{port}", verified=verified)
