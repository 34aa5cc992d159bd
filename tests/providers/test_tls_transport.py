"""The RPC's TLS from the client side, against a local HTTPS server holding a certificate of a network CA
(hcops.plan.certs): RpcClient verifies with the CA's context, the audit's measurement (hcops.providers.tls)
reports handshake, verification, expiry and plaintext refusal, and the Kubernetes transport speaks TLS through
a port-forward (faked here by a plain TCP connection) for the pod's DNS name."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hcops.plan import certs
from hcops.providers import tls
from hcops.providers.kubernetes import rpc as krpc
from hcops.providers.rpc import Endpoint, HttpTransport, RpcClient, RpcUnavailable

POD = "n0-0.n0.ns.svc.cluster.local"
STATUS = {"result": {"node_info": {"id": "ab", "moniker": "n0", "network": "c-1", "version": "0.38.17"},
                     "sync_info": {"latest_block_height": "7", "latest_block_time": "", "catching_up": False},
                     "validator_info": {"address": "AA", "voting_power": "10"}}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as CometBFT answers
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps(STATUS).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def _server(store: certs.CertStore, tmp: Path, *, tls_on: bool = True) -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if tls_on:
        cert = store.certificate("n0", ("localhost", POD), ("127.0.0.1",))
        (tmp / "c.pem").write_bytes(cert.cert_pem)
        (tmp / "k.pem").write_bytes(store.private_key("n0"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def store(tmp_path: Path) -> certs.CertStore:
    return certs.CertStore(tmp_path / "state", "net")


@pytest.fixture
def server(store: certs.CertStore, tmp_path: Path) -> Iterator[ThreadingHTTPServer]:
    srv = _server(store, tmp_path)
    yield srv
    srv.shutdown()


def port(srv: ThreadingHTTPServer) -> int:
    return int(srv.server_address[1])


def test_rpc_client_verifies_against_the_network_ca(store: certs.CertStore, server: ThreadingHTTPServer,
                                                    tmp_path: Path) -> None:
    ctx = certs.server_verifier(store.ca_pem())
    assert RpcClient(f"https://127.0.0.1:{port(server)}", ssl_context=ctx, attempts=1).status().height == 7
    # the context travels with an Endpoint: RpcClient(url) verifies too
    assert RpcClient(Endpoint(f"https://127.0.0.1:{port(server)}", ctx), attempts=1).status().moniker == "n0"
    other = certs.server_verifier(certs.CertStore(tmp_path / "other", "x").ca_pem())
    with pytest.raises(RpcUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        RpcClient(f"https://127.0.0.1:{port(server)}", ssl_context=other, attempts=1).status()
    with pytest.raises(RpcUnavailable):  # system roots do not know the network CA
        RpcClient(f"https://127.0.0.1:{port(server)}", attempts=1).status()


def test_measure_reports_a_verified_https_only_endpoint(store: certs.CertStore,
                                                        server: ThreadingHTTPServer) -> None:
    ctx = certs.server_verifier(store.ca_pem())
    facts = tls.measure_tcp("127.0.0.1", port(server), ctx, "127.0.0.1")
    assert facts["handshake"] and facts["verified"] and facts["error"] is None
    assert facts["plaintextRefused"] is True
    assert facts["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert facts["issuer"] == "CN=hcops RPC CA of network net,O=hcops"
    after = dt.datetime.fromisoformat(facts["notAfter"].replace("Z", "+00:00"))
    assert facts["notAfterNs"] == int(after.timestamp()) * 1_000_000_000


def test_the_rpc_connections_verified_handshake_is_the_one_measured(store: certs.CertStore,
                                                                    server: ThreadingHTTPServer) -> None:
    ctx = certs.server_verifier(store.ca_pem())
    rpc = RpcClient(f"https://127.0.0.1:{port(server)}", ssl_context=ctx, attempts=1)
    rpc.status()
    assert isinstance(rpc.transport, HttpTransport)
    peer = rpc.transport.peer_certificate()
    assert peer is not None and peer[1] in ("TLSv1.2", "TLSv1.3")
    reused = tls.measure_tcp("127.0.0.1", port(server), ctx, "127.0.0.1", verified=peer)
    fresh = tls.measure_tcp("127.0.0.1", port(server), ctx, "127.0.0.1")
    assert reused == fresh and reused["verified"] and reused["plaintextRefused"]
    rpc.close()
    assert rpc.transport.peer_certificate() is None  # nothing open: the caller measures with a new session
    plain = RpcClient(f"http://127.0.0.1:{port(server)}", attempts=1).transport
    assert isinstance(plain, HttpTransport) and plain.peer_certificate() is None


def test_measure_reports_a_foreign_certificate_and_a_wrong_name(store: certs.CertStore,
                                                                server: ThreadingHTTPServer,
                                                                tmp_path: Path) -> None:
    other = certs.server_verifier(certs.CertStore(tmp_path / "other", "x").ca_pem())
    facts = tls.measure_tcp("127.0.0.1", port(server), other, "127.0.0.1")
    assert facts["handshake"] and not facts["verified"] and "not verified" in facts["error"]
    assert facts["fingerprint"] and facts["notAfter"]  # read anyway, from an unverified handshake
    wrong_name = tls.measure_tcp("127.0.0.1", port(server), certs.server_verifier(store.ca_pem()), "elsewhere")
    assert wrong_name["handshake"] and not wrong_name["verified"]


def test_measure_reports_plaintext_and_unreachable_endpoints(store: certs.CertStore, tmp_path: Path) -> None:
    ctx = certs.server_verifier(store.ca_pem())
    plain = _server(store, tmp_path, tls_on=False)
    try:
        facts = tls.measure_tcp("127.0.0.1", port(plain), ctx, "127.0.0.1")
    finally:
        plain.shutdown()
    assert not facts["handshake"] and not facts["verified"] and facts["plaintextRefused"] is False
    assert facts["plaintextStatus"] == "HTTP 200"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    facts = tls.measure_tcp("127.0.0.1", closed, ctx, "127.0.0.1", timeout=1.0)
    assert facts["error"].startswith("not reachable") and facts["plaintextRefused"] is True


def test_measure_reports_the_dates_of_an_expired_certificate(store: certs.CertStore, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "BACKDATE", dt.timedelta(days=3))
    monkeypatch.setattr(certs, "SERVER_VALIDITY", dt.timedelta(days=-1))
    srv = _server(store, tmp_path)
    try:
        facts = tls.measure_tcp("127.0.0.1", port(srv), certs.server_verifier(store.ca_pem()), "127.0.0.1")
    finally:
        srv.shutdown()
    assert facts["handshake"] and not facts["verified"] and "expired" in facts["error"]
    assert facts["notAfterNs"] < dt.datetime.now(dt.UTC).timestamp() * 1_000_000_000


class _Forward:
    closed = 0

    def close(self) -> None:
        _Forward.closed += 1


class _Api:
    server = "https://api.invalid:6443"


def test_kubernetes_rpc_speaks_tls_through_the_forward(store: certs.CertStore, server: ThreadingHTTPServer,
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    opened: list[str] = []

    def forward(api: Any, namespace: str, pod: str, port_: int = 26657, timeout: float = 3.0) -> Any:
        opened.append(f"{namespace}/{pod}:{port_}")
        return _Forward(), socket.create_connection(("127.0.0.1", port(server)), timeout=timeout)

    monkeypatch.setattr(krpc, "forward", forward)
    pod_tls = krpc.PodTls(certs.server_verifier(store.ca_pem()), POD)
    client = krpc.ProxiedRpc(_Api(), "ns", "n0-0", tls=pod_tls)  # type: ignore[arg-type]
    assert client.base_url == f"https://{POD}:26657"
    assert client.status().height == 7 and client.status().moniker == "n0"
    assert opened == ["ns/n0-0:26657"]  # one forward, kept alive for both calls
    client.close()
    assert _Forward.closed >= 1
    wrong = krpc.PodTls(certs.server_verifier(certs.CertStore(tmp_path / "o", "x").ca_pem()), POD)
    with pytest.raises(RpcUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        krpc.ProxiedRpc(_Api(), "ns", "n0-0", tls=wrong).status()  # type: ignore[arg-type]


def test_kubernetes_tls_facts_measure_the_pod_endpoint(store: certs.CertStore, server: ThreadingHTTPServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from hcops.providers.kubernetes.api import ApiError

    monkeypatch.setattr(krpc, "forward", lambda *a, **k: (_Forward(), socket.create_connection(
        ("127.0.0.1", port(server)), timeout=2.0)))

    class Api(_Api):
        def exchange(self, method: str, path: str, **_: Any) -> Any:
            assert path == "/api/v1/namespaces/ns/pods/n0-0:26657/proxy/status"
            raise ApiError(400, "Bad Request", "Client sent an HTTP request to an HTTPS server.")

    facts = krpc.tls_facts(Api(), "ns", "n0-0", krpc.PodTls(certs.server_verifier(store.ca_pem()), POD))  # type: ignore[arg-type]
    assert facts["verified"] and facts["plaintextRefused"] and facts["plaintextStatus"] == "HTTP 400"
    assert facts["endpoint"] == "n0-0:26657" and facts["serverName"] == POD
    assert krpc.tls_facts(Api(), "ns", "n0-0", None) == {"enabled": False}  # type: ignore[arg-type]
