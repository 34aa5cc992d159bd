"""Files in and out of a pod through the API server's pod proxy, with the kubeconfig's credentials only.

The node image has no shell and no tar, so ``kubectl cp`` (exec + tar) cannot work. A short-lived helper pod
runs the node image itself with ``hcops-probe archive`` (images/cometbft/probe/archive.go): a file server
over the node's home folder that sends a folder as a tar on ``GET /tar``, extracts a tar on ``PUT /tar`` and
exits on ``POST /done``. hcops reaches it exactly as it reaches a node's RPC, through
``/api/v1/namespaces/<ns>/pods/<pod>:26680/proxy/...``: no route to the pod network, no image to pull.

Every request but ``/healthz`` carries a random one-time token that only the helper's own Secret holds, so
another client of the pod proxy cannot read or write the volume. The helper gets a NetworkPolicy that lets
in its port only (the namespace's default deny keeps every other way in or out closed), no Service, no
service-account token, and the node's restricted security context.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import urllib3
from urllib3.exceptions import HTTPError

from hcops.errors import EnvironmentProblem
from hcops.plan import cometbft
from hcops.providers.kubernetes.api import ApiError, KubeApi, Obj, Ref, _error
from hcops.providers.kubernetes.rpc import proxy_path

ARCHIVE_PORT = 26680
TOKEN_HEADER = "X-Hcops-Token"
TOKEN_DIR = "/run/hcops-archive"
PROBE = "/usr/local/bin/hcops-probe"
LABEL = "hcops.helper"  # value: the network; not hcops.network: a helper is not one of the network's objects
ROLE_LABEL = "hcops.helper-role"  # copy | drill
READY_TIMEOUT = 120.0
POLL = 0.5
CHUNK = 1 << 20
# Pods that cannot start: waiting reasons that will not fix themselves while hcops waits.
STUCK = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                   "CreateContainerError", "RunContainerError", "CrashLoopBackOff"})


def raw(api: KubeApi, method: str, path: str, *, query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None, body: IO[bytes] | bytes | None = None,
        length: int | None = None, timeout: float = 120.0) -> urllib3.BaseHTTPResponse:
    """One request whose answer is streamed (not decoded as JSON), and whose body may be a file that is
    streamed too. The caller closes the answer. Non-2xx raises :class:`ApiError`."""
    hdrs = {"Accept": "*/*", **(headers or {})}
    if length is not None:
        hdrs["Content-Length"] = str(length)
    _, url, hdrs, _, _ = api.client.param_serialize(
        method, path, query_params=list((query or {}).items()), header_params=hdrs, auth_settings=["BearerToken"])
    try:
        resp = api.client.rest_client.pool_manager.request(
            method, url, body=body, headers=hdrs, preload_content=False, retries=False,
            timeout=urllib3.Timeout(connect=10.0, read=timeout))
    except (HTTPError, OSError) as exc:
        raise EnvironmentProblem(f"Kubernetes API {api.server} is not reachable: {exc}") from None
    if 200 <= resp.status < 300:
        return resp
    try:
        data = resp.read(4096)
    finally:
        resp.release_conn()
    raise _error(resp.status, data, method, path)


def _finish(resp: urllib3.BaseHTTPResponse) -> None:
    """Read a short answer to its end, so that its connection can serve the next request."""
    resp.drain_conn()
    resp.release_conn()


@dataclass(frozen=True)
class HelperSpec:
    """What a helper pod mounts and runs, besides the archive server and its token."""

    name: str
    namespace: str
    image: str
    labels: Mapping[str, str]
    volumes: Sequence[Obj]  # must include one named "home", mounted at the node's home
    read_only: bool = False  # the home volume, for a copy out of a running node's volume
    node_name: str | None = None  # a ReadWriteOnce volume in use is mountable on its node only
    main: Obj | None = None  # a container started once the archive server has exited (the drill node)
    extra_objects: Sequence[Obj] = field(default_factory=tuple)  # created before the pod, removed after


def _security() -> dict[str, Any]:
    from hcops.render.kubernetes import container_security  # the node's own: Pod Security "restricted"

    return container_security()


def helper_objects(spec: HelperSpec, token: str) -> list[Obj]:
    """Secret (the token), NetworkPolicy (its port only), Pod: in creation order."""
    from hcops.render.base import NODE_UID

    meta = {"name": spec.name, "namespace": spec.namespace, "labels": dict(spec.labels)}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
              "stringData": {"token": token}}
    ports = [{"port": ARCHIVE_PORT, "protocol": "TCP"}]
    if spec.main is not None:
        ports.append({"port": cometbft.RPC_PORT, "protocol": "TCP"})
    # Ingress on the helper's ports from wherever the API server's proxy comes from (its address is not
    # something a policy can name portably); no egress rule, so the namespace's default deny holds.
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
              "spec": {"podSelector": {"matchLabels": {LABEL: spec.labels[LABEL], "hcops.helper-name": spec.name}},
                       "policyTypes": ["Ingress", "Egress"], "ingress": [{"ports": ports}]}}
    home = {"name": "home", "mountPath": cometbft.HOME, **({"readOnly": True} if spec.read_only else {})}
    archive = {"name": "archive", "image": spec.image, "imagePullPolicy": "IfNotPresent",
               "command": [PROBE], "args": ["archive", "--dir", cometbft.HOME, "--listen", f":{ARCHIVE_PORT}",
                                            "--token-file", f"{TOKEN_DIR}/token"],
               "ports": [{"name": "archive", "containerPort": ARCHIVE_PORT, "protocol": "TCP"}],
               "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
               "securityContext": _security(),
               "volumeMounts": [home, {"name": "hcops-token", "mountPath": TOKEN_DIR, "readOnly": True}]}
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False, "enableServiceLinks": False, "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"fsGroup": NODE_UID, "fsGroupChangePolicy": "OnRootMismatch", "runAsGroup": NODE_UID,
                            "runAsNonRoot": True, "runAsUser": NODE_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [*spec.volumes, {"name": "hcops-token",
                                    "secret": {"secretName": spec.name, "defaultMode": 0o400}}]}
    if spec.node_name:
        pod_spec["nodeName"] = spec.node_name
    if spec.main is None:
        pod_spec["containers"] = [archive]
    else:
        pod_spec["initContainers"] = [archive]
        pod_spec["containers"] = [{**spec.main, "securityContext": _security()}]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {**meta, "labels": {**spec.labels, "hcops.helper-name": spec.name}}, "spec": pod_spec}
    return [*spec.extra_objects, secret, policy, pod]


class Helper:
    """A running helper pod: copy a folder out, a tar in; its objects are removed by :func:`helper`."""

    def __init__(self, api: KubeApi, spec: HelperSpec, token: str) -> None:
        self.api = api
        self.spec = spec
        self._token = token
        self.base = proxy_path(spec.namespace, spec.name, ARCHIVE_PORT)

    def _headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self._token}

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the archive server answers through the proxy; a pod that cannot start fails at once."""
        deadline = time.monotonic() + timeout
        last = "not created yet"
        while time.monotonic() < deadline:
            pod = self.api.get(Ref("v1", "Pod", self.spec.namespace, self.spec.name))
            last = pod_problem(pod) or last
            if pod is not None and pod_failed(pod):
                raise EnvironmentProblem(f"helper pod {self.spec.name} cannot run: {last}")
            if pod is not None and (pod.get("status") or {}).get("podIP"):
                try:
                    _finish(raw(self.api, "GET", f"{self.base}/healthz", timeout=5.0))
                    return
                except (ApiError, EnvironmentProblem) as exc:
                    last = getattr(exc, "message", str(exc))
            time.sleep(POLL)
        raise EnvironmentProblem(f"helper pod {self.spec.name} did not serve within {timeout:g} s ({last})",
                                 hint="`kubectl describe pod` shows why (an unbound claim, no node, ...)")

    @contextlib.contextmanager
    def get_tar(self, path: str) -> Iterator[Iterator[bytes] | None]:
        """The tar of ``path`` (relative to the home) as a stream of chunks; None when it does not exist."""
        try:
            resp = raw(self.api, "GET", f"{self.base}/tar", query={"path": path}, headers=self._headers())
        except ApiError as exc:
            if exc.not_found:
                yield None
                return
            raise EnvironmentProblem(f"copying {path} out of {self.spec.name}: {exc.message}") from None
        def chunks() -> Iterator[bytes]:
            # Only the transfer's own errors are translated: the consumer's (a full disk) stay its own.
            try:
                yield from resp.stream(CHUNK)
            except (HTTPError, OSError) as exc:
                raise EnvironmentProblem(f"copying {path} out of {self.spec.name}: {exc}") from None

        try:
            yield chunks()
        finally:
            resp.close()  # not back to the pool: a copy cut short leaves unread bytes on the connection

    def put_tar(self, body: IO[bytes] | bytes, length: int, *, clear: str | None = None) -> None:
        """Extract a tar into the home (after removing ``clear``, a folder relative to it)."""
        query = {"clear": clear} if clear else None
        try:
            _finish(raw(self.api, "PUT", f"{self.base}/tar", query=query, headers=self._headers(), body=body,
                        length=length))
        except ApiError as exc:
            raise EnvironmentProblem(f"the helper pod {self.spec.name} refused the files: {exc.message}") from None

    def done(self) -> None:
        """End the archive server (in a drill pod, the node container starts next)."""
        try:
            _finish(raw(self.api, "POST", f"{self.base}/done", headers=self._headers(), timeout=10.0))
        except ApiError as exc:
            raise EnvironmentProblem(f"helper pod {self.spec.name}: {exc.message}") from None


@contextlib.contextmanager
def helper(api: KubeApi, spec: HelperSpec) -> Iterator[Helper]:
    """Create the helper's objects, wait until it serves, yield it; every object is removed on exit."""
    token = secrets.token_urlsafe(32)
    made: list[Obj] = []
    try:
        for obj in helper_objects(spec, token):
            ref = Ref.of(obj)
            made.append(api.create(ref.api_version, ref.kind, obj, spec.namespace))
        h = Helper(api, spec, token)
        h.wait_ready()
        yield h
    except ApiError as exc:
        raise EnvironmentProblem(f"helper pod {spec.name}: {exc.message}") from None
    finally:
        for obj in reversed(made):  # each removed even if another fails
            with contextlib.suppress(ApiError, EnvironmentProblem):
                api.delete(Ref.of(obj), propagation="Background")


def pod_failed(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        return True
    for c in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason") in STUCK:
            return True
        if (state.get("terminated") or {}).get("exitCode", 0) != 0:
            return True
    return False


def pod_problem(pod: Mapping[str, Any] | None) -> str | None:
    """Why a pod is not serving yet, in one line (None when nothing is known)."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    for c in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        state = c.get("state") or {}
        for kind in ("waiting", "terminated"):
            s = state.get(kind) or {}
            if s.get("reason"):
                return f"{c.get('name')}: {s['reason']}" + (f" ({s['message']})" if s.get("message") else "")
    for cond in status.get("conditions") or ():
        if cond.get("status") == "False" and cond.get("message"):
            return f"{cond.get('type')}: {cond['message']}"
    return f"phase {status.get('phase', 'unknown')}"
