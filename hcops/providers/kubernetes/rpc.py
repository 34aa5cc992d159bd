"""A node's CometBFT RPC reached through the API server, with the kubeconfig's credentials only: no route to
the pod network is needed on hcops' side.

Without TLS: the API server's pod proxy (``/api/v1/namespaces/<ns>/pods/<pod>:26657/proxy/<method>``).

With TLS (``spec.network.rpc.tls``) the proxy cannot serve: the API server terminates the connection itself
and never checks a pod's certificate. hcops then opens a port-forward to the pod's RPC port (the API server
and the kubelet tunnel the bytes) and speaks TLS through it, verifying the node's certificate against the
network CA for the pod's DNS name, exactly as it does for a published Docker port. The plaintext check of the
audit (``plaintext_get``) still goes through the proxy: a node that serves HTTPS only answers it with an
error, never with an RPC result.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hcops.errors import EnvironmentProblem
from hcops.plan import certs, cometbft
from hcops.plan.desired import NetworkPlan
from hcops.providers import tls as tls_probe
from hcops.providers.kubernetes.api import ApiError, KubeApi
from hcops.providers.rpc import HttpTransport, RpcClient, RpcUnavailable, Transport


def proxy_path(namespace: str, pod: str, port: int = cometbft.RPC_PORT) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}:{port}/proxy"


@dataclass(frozen=True)
class PodTls:
    """How a node's RPC is verified: the network CA, and the name its certificate must hold."""

    context: ssl.SSLContext
    server_name: str  # the pod's DNS name behind the headless Service (a name in its certificate)


def pod_tls(plan: NetworkPlan, node: str, namespace: str) -> PodTls | None:
    context = certs.client_context(plan)
    return PodTls(context, cometbft.kube_host(node, namespace)) if context is not None else None


def forward(api: KubeApi, namespace: str, pod: str, port: int = cometbft.RPC_PORT,
            timeout: float = 3.0) -> tuple[Any, socket.socket]:
    """A port-forward to ``pod:port`` through the API server: (the forward, to close; its socket)."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import portforward

    try:
        pf = portforward(CoreV1Api(api.client).connect_get_namespaced_pod_portforward, pod, namespace,
                         ports=str(port))
    except (ApiException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OSError(f"port-forward to {pod}:{port}: {reason}") from None
    # The forward hands out a wrapper of one end of a socket pair; TLS needs the socket itself.
    sock: socket.socket = pf.socket(port)._socket
    sock.settimeout(timeout)
    return pf, sock


class _ForwardedConnection(http.client.HTTPConnection):
    """HTTP over TLS over a port-forward: connected on first use, like any ``HTTPConnection``."""

    def __init__(self, opener: Callable[[], tuple[Any, socket.socket]], tls: PodTls, timeout: float) -> None:
        super().__init__(tls.server_name, cometbft.RPC_PORT, timeout=timeout)
        self._opener = opener
        self._tls = tls
        self._forward: Any = None

    def connect(self) -> None:
        self._forward, raw = self._opener()
        try:
            self.sock = self._tls.context.wrap_socket(raw, server_hostname=self._tls.server_name)
        except (OSError, ValueError):
            self._close_forward()
            raise

    def close(self) -> None:
        super().close()
        self._close_forward()

    def _close_forward(self) -> None:
        if self._forward is not None:
            self._forward.close()
            self._forward = None


class ProxyTransport:
    """GETs through the API server's pod proxy: for a node without TLS only (see the module's docstring)."""

    def __init__(self, api: KubeApi, namespace: str, pod: str, *, timeout: float) -> None:
        self.api = api
        self.pod = pod
        self.path = proxy_path(namespace, pod)
        self.timeout = timeout

    def where(self, target: str) -> str:
        return self.pod

    def get(self, target: str) -> Any:
        try:
            return self.api.request("GET", f"{self.path}/{target}", timeout=self.timeout)
        except (ApiError, EnvironmentProblem) as exc:
            raise RpcUnavailable(f"{self.pod}: {exc.message}") from None

    def close(self) -> None:
        """Nothing held open: each GET is one request of the API client."""


def forwarded_transport(base: str, api: KubeApi, namespace: str, pod: str, tls: PodTls,
                        timeout: float) -> HttpTransport:
    """HTTPS to the pod through a port-forward, verified against the network CA for the pod's DNS name."""

    def connect() -> http.client.HTTPConnection:
        return _ForwardedConnection(lambda: forward(api, namespace, pod, timeout=timeout), tls, timeout)

    return HttpTransport(base, timeout=timeout, ssl_context=tls.context, connect=connect)


class ProxiedRpc(RpcClient):
    """``RpcClient`` whose requests go through the API server (same parsing, same retries): its pod proxy, or
    with TLS a port-forward."""

    def __init__(
        self, api: KubeApi, namespace: str, pod: str, *, timeout: float = 3.0, attempts: int = 1,
        tls: PodTls | None = None,
    ) -> None:
        transport: Transport
        if tls is None:
            base = api.server.rstrip("/") + proxy_path(namespace, pod)
            transport = ProxyTransport(api, namespace, pod, timeout=timeout)
        else:  # the node's own URL: what its certificate names
            base = f"https://{tls.server_name}:{cometbft.RPC_PORT}"
            transport = forwarded_transport(base, api, namespace, pod, tls, timeout)
        super().__init__(base, timeout=timeout, attempts=attempts, ssl_context=tls.context if tls else None,
                         transport=transport)
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.tls = tls


def plaintext_get(api: KubeApi, namespace: str, pod: str, timeout: float = 3.0) -> tls_probe.Plaintext:
    """A plain HTTP ``GET /status`` of the pod's RPC port through the API server's proxy."""

    def get() -> tuple[int, bytes]:
        try:
            status, _ = api.exchange("GET", proxy_path(namespace, pod) + "/status", timeout=timeout)
        except ApiError as exc:
            return exc.status, b""
        except EnvironmentProblem as exc:
            raise OSError(exc.message) from None
        return status, b'{"result": {}}'  # decoded JSON with a 2xx: the node answered in clear

    return get


def tls_facts(api: KubeApi, namespace: str, pod: str, tls: PodTls | None) -> dict[str, Any]:
    """The TS-2 facts of a pod's RPC (``hcops.providers.tls``); ``{"enabled": False}`` without TLS."""
    if tls is None:
        return {"enabled": False}
    return tls_probe.measure(lambda: forward(api, namespace, pod)[1], tls.context, tls.server_name,
                             plaintext_get(api, namespace, pod), endpoint=f"{pod}:{cometbft.RPC_PORT}")
