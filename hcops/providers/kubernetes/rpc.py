"""A node's CometBFT RPC reached through the API server's pod proxy
(``/api/v1/namespaces/<ns>/pods/<pod>:26657/proxy/<method>``): no port-forward, no route to the pod
network needed on hcops' side, the kubeconfig's credentials are the only ones used."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hcops.errors import EnvironmentProblem
from hcops.plan import cometbft
from hcops.providers.kubernetes.api import ApiError, KubeApi
from hcops.providers.rpc import RpcClient, RpcUnavailable


def proxy_path(namespace: str, pod: str, port: int = cometbft.RPC_PORT) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}:{port}/proxy"


class ProxiedRpc(RpcClient):
    """``RpcClient`` whose requests go through the API server (same parsing, same retries)."""

    def __init__(
        self, api: KubeApi, namespace: str, pod: str, *, timeout: float = 3.0, attempts: int = 1
    ) -> None:
        super().__init__(
            api.server.rstrip("/") + proxy_path(namespace, pod), timeout=timeout, attempts=attempts
        )
        self.api = api
        self.pod = pod

    def _fetch(self, url: str) -> dict[str, Any]:
        path = url[len(self.api.server.rstrip("/")) :]
        try:
            doc = self.api.request("GET", path, timeout=self.timeout)
        except ApiError as exc:
            raise RpcUnavailable(f"{self.pod}: {exc.message}") from None
        except EnvironmentProblem as exc:
            raise RpcUnavailable(f"{self.pod}: {exc.message}") from None
        result = doc.get("result") if isinstance(doc, dict) else None
        if not isinstance(result, dict):
            raise RpcUnavailable(f"{self.pod}: reply has no result")
        return result
