"""The Kubernetes side of backups, restores and drills (``hcops.backup.backend.NodeBackend``).

A node is its StatefulSet (one replica) and the PersistentVolumeClaim ``home-<node>-0`` that holds its
``data/``; config.toml, genesis and keys are mounted from ConfigMaps and the node's Secret, never from the
claim. Stopping a node scales its StatefulSet to 0 (CometBFT gets SIGTERM and closes its databases) and
waits until the pod is gone; starting scales it back to 1.

Files are copied by a short-lived helper pod of the node image itself (``hcops-probe archive``, see
``transfer``) that mounts the claim, reached through the API server's pod proxy like the nodes' RPC: the
node image has no tar for ``kubectl cp``, and a tools image would be one more image to trust and pull.

* backup: a helper mounts the stopped node's claim read-only and streams ``data/`` as a tar.
* restore: the node's ConfigMap gets the config the restore asks for (applied as hcops, so the next
  ``hcops apply`` puts the plan's back); a claim that is gone (a lost disk) is made again from the
  StatefulSet's template, a claim that exists has its ``data/`` removed; then the helper writes the
  backup's data and the signing state. The node is started by the use case.
* drill: one pod (no Service, its own ConfigMap with the drill config and genesis, an ``emptyDir`` home,
  a NetworkPolicy that lets in its two ports only and nothing out): its init container receives the data,
  then the node starts, reached through the pod proxy. Everything it made is deleted on exit.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers.kubernetes.api import ApiError, KubeApi, Obj, Ref
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.rpc import ProxiedRpc, pod_tls
from hcops.providers.kubernetes.transfer import LABEL, ROLE_LABEL, HelperSpec, helper
from hcops.providers.rpc import RpcClient

STATE_FILE = "data/priv_validator_state.json"
STOP_TIMEOUT = 120.0
CLAIM_TIMEOUT = 60.0
POLL = 0.5
SCALE_MANAGER = "hcops-backup"


class KubernetesBackend:
    provider = "kubernetes"

    def __init__(self, plan: NetworkPlan, api: KubeApi | None = None) -> None:
        self.plan = plan
        self._api = api
        self._objects: list[Obj] | None = None

        if len(plan.kube_scopes()) > 1:
            raise InvalidInput(
                "backups on Kubernetes work within one namespace for now; the organizations of "
                f"{plan.name} declare namespaces of their own ("
                + ", ".join(s.namespace for s in plan.kube_scopes()) + ")",
                hint="back up each organization's nodes with its own spec, or with the docker provider")
        # The one scope's place: an organization may declare its own namespace and context (with --org, say).
        scope = plan.kube_scopes()[0]
        self.namespace, self._context = scope.namespace, scope.context

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi(connect(self._context, None, self.plan.settings))
        return self._api

    # ------------------------------------------------------------------ the node's objects
    def _rendered(self, kind: str, name: str) -> Obj:
        if self._objects is None:
            from hcops.render.kubernetes import kubernetes_objects  # no Secrets: no key leaves the renderer

            self._objects = kubernetes_objects(self.plan)
        for o in self._objects:
            if o.get("kind") == kind and o["metadata"]["name"] == name:
                return o
        raise EnvironmentProblem(f"the plan renders no {kind} {name}")

    def _ref(self, kind: str, name: str) -> Ref:
        return Ref("apps/v1" if kind == "StatefulSet" else "v1", kind, self.namespace, name)

    @staticmethod
    def pod_name(node: NodePlan) -> str:
        return f"{node.name}-0"

    @staticmethod
    def claim_name(node: NodePlan) -> str:
        return f"home-{node.name}-0"

    def _pod(self, node: NodePlan) -> Obj | None:
        return self.api.get(self._ref("Pod", self.pod_name(node)))

    def _claim(self, node: NodePlan) -> Obj | None:
        return self.api.get(self._ref("PersistentVolumeClaim", self.claim_name(node)))

    def _scale(self, node: NodePlan, replicas: int) -> None:
        ref = self._ref("StatefulSet", node.name)
        path = self.api.resource_type(ref.api_version, ref.kind).item(ref.name, ref.namespace) + "/scale"
        try:
            self.api.request("PATCH", path, query={"fieldManager": SCALE_MANAGER},
                             body={"spec": {"replicas": replicas}}, content_type="application/merge-patch+json")
        except ApiError as exc:
            if exc.not_found:
                raise EnvironmentProblem(f"{node.name} has no StatefulSet in namespace {self.namespace}",
                                         hint="run `hcops apply` first") from None
            raise EnvironmentProblem(f"scaling {node.name} to {replicas}: {exc.message}") from None

    # ------------------------------------------------------------------ NodeBackend
    def rpc(self, node: NodePlan) -> RpcClient:
        return ProxiedRpc(self.api, self.namespace, self.pod_name(node), timeout=4.0, attempts=2,
                          tls=pod_tls(self.plan, node.name, self.namespace))

    def config_toml(self, node: NodePlan) -> bytes:
        from hcops.render.kubernetes import config_configmap

        return str(self._rendered("ConfigMap", config_configmap(node))["data"]["config.toml"]).encode()

    def running(self, node: NodePlan) -> bool:
        pod = self._pod(node)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            return False
        status = pod.get("status") or {}
        return status.get("phase") == "Running" and any(
            "running" in (c.get("state") or {}) for c in status.get("containerStatuses") or ())

    def stop(self, node: NodePlan) -> None:
        self._scale(node, 0)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._pod(node) is not None:  # gone: CometBFT exited and its databases are closed
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"{node.name}'s pod did not stop within {STOP_TIMEOUT:g} s")
            time.sleep(POLL)

    def start(self, node: NodePlan) -> None:
        self._scale(node, 1)

    def _copy_spec(self, node: NodePlan, role: str, *, read_only: bool) -> HelperSpec:
        pod = self._pod(node)
        return HelperSpec(
            name=f"hcops-{role}-{node.name}-{secrets.token_hex(3)}"[:63], namespace=self.namespace,
            image=node.node.image, labels=self._labels("copy"), read_only=read_only,
            # A ReadWriteOnce claim still mounted by the node's pod can be mounted on that pod's node only.
            node_name=((pod or {}).get("spec") or {}).get("nodeName"),
            volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": self.claim_name(node),
                                                                **({"readOnly": True} if read_only else {})}}])

    def _labels(self, role: str) -> dict[str, str]:
        return {"app.kubernetes.io/managed-by": "hcops", LABEL: self.plan.name, ROLE_LABEL: role}

    @contextlib.contextmanager
    def data_tar(self, node: NodePlan) -> Iterator[Iterable[bytes]]:
        if self._claim(node) is None:
            raise EnvironmentProblem(f"{node.name} has no volume claim to back up", hint="run `hcops apply` first")
        with helper(self.api, self._copy_spec(node, "backup", read_only=True)) as h, h.get_tar("data") as stream:
            if stream is None:
                raise EnvironmentProblem(f"{node.name}'s volume has no data folder")
            yield stream

    def read_state(self, node: NodePlan) -> bytes | None:
        claim = self._claim(node)
        if claim is None or (claim.get("metadata") or {}).get("deletionTimestamp"):
            return None
        with helper(self.api, self._copy_spec(node, "state", read_only=True)) as h, h.get_tar(STATE_FILE) as s:
            return None if s is None else _first_file(b"".join(s))

    def replace(self, node: NodePlan, data: Path, state: bytes | None, config_toml: bytes) -> None:
        from hcops.render.kubernetes import config_configmap

        cm = self._rendered("ConfigMap", config_configmap(node))
        try:  # as hcops, forced: the next `hcops apply` writes the plan's config back, with no conflict
            self.api.apply({**cm, "metadata": {**cm["metadata"], "namespace": self.namespace},
                            "data": {**cm["data"], "config.toml": config_toml.decode()}}, force=True)
        except ApiError as exc:
            raise EnvironmentProblem(f"writing {node.name}'s config: {exc.message}") from None
        self._ensure_claim(node)
        with helper(self.api, self._copy_spec(node, "restore", read_only=False)) as h:
            with open(data, "rb") as fh:
                h.put_tar(fh, os.fstat(fh.fileno()).st_size, clear="data")
            if state is not None:
                files = make_tar([(STATE_FILE, state)])
                h.put_tar(files, len(files))

    def _ensure_claim(self, node: NodePlan) -> None:
        """The node's claim, made again from the StatefulSet's template when it is gone (a lost disk);
        one being deleted is waited for first (it goes once no pod mounts it)."""
        deadline = time.monotonic() + CLAIM_TIMEOUT
        while (claim := self._claim(node)) is not None and (claim.get("metadata") or {}).get("deletionTimestamp"):
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"claim {self.claim_name(node)} is still being deleted after "
                                         f"{CLAIM_TIMEOUT:g} s", hint="a pod still mounts it? `kubectl describe pvc`")
            time.sleep(POLL)
        if claim is not None:
            return
        sts = self._rendered("StatefulSet", node.name)
        tmpl = sts["spec"]["volumeClaimTemplates"][0]
        labels = {**(tmpl["metadata"].get("labels") or {}), **sts["spec"]["selector"]["matchLabels"]}
        obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": self.claim_name(node), "namespace": self.namespace, "labels": labels},
               "spec": tmpl["spec"]}
        try:
            self.api.create("v1", "PersistentVolumeClaim", obj, self.namespace)
        except ApiError as exc:
            raise EnvironmentProblem(f"creating claim {self.claim_name(node)}: {exc.message}") from None

    @contextlib.contextmanager
    def scratch(self, node: NodePlan, data: Path, config_toml: bytes, tag: str) -> Iterator[RpcClient]:
        name = f"hcops-drill-{tag}-{secrets.token_hex(3)}"
        labels = self._labels("drill")
        files = {"config.toml": config_toml.decode(), "genesis.json": self.plan.genesis_json()}
        config = {"apiVersion": "v1", "kind": "ConfigMap", "data": files,
                  "metadata": {"name": f"{name}-config", "namespace": self.namespace, "labels": labels}}
        mounts = [{"name": "home", "mountPath": cometbft.HOME},
                  *({"name": "config", "mountPath": f"{cometbft.HOME}/config/{f}", "subPath": f, "readOnly": True}
                    for f in sorted(files)),
                  {"name": "tmp", "mountPath": "/tmp"}]
        resources = {"requests": {"cpu": node.node.resources.cpu, "memory": node.node.resources.memory},
                     "limits": {"memory": node.node.resources.memory}}
        main = {"name": "cometbft", "image": node.node.image, "imagePullPolicy": "IfNotPresent",
                "args": ["start", "--home", cometbft.HOME], "resources": resources, "volumeMounts": mounts,
                "ports": [{"name": "rpc", "containerPort": cometbft.RPC_PORT, "protocol": "TCP"}]}
        spec = HelperSpec(
            name=name, namespace=self.namespace, image=node.node.image, labels=labels, main=main,
            extra_objects=(config,),
            volumes=[{"name": "home", "emptyDir": {"sizeLimit": node.node.storage.size}},
                     {"name": "config", "configMap": {"name": f"{name}-config", "defaultMode": 0o444}},
                     {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}])
        with helper(self.api, spec) as h:
            files_tar = make_tar([("config/", None)])  # the mount points' parent, owned by the node's user
            h.put_tar(files_tar, len(files_tar))
            with open(data, "rb") as fh:
                h.put_tar(fh, os.fstat(fh.fileno()).st_size)
            h.done()
            yield ProxiedRpc(self.api, self.namespace, name, timeout=5.0, attempts=1)

    def helper_leftovers(self) -> list[str]:
        """Helper and drill objects of this network that were not removed (for tests)."""
        out = []
        for api_version, kind in (("v1", "Pod"), ("v1", "Secret"), ("v1", "ConfigMap"),
                                  ("networking.k8s.io/v1", "NetworkPolicy")):
            out += [f"{kind} {o['metadata']['name']}" for o in
                    self.api.list(api_version, kind, self.namespace, selector=f"{LABEL}={self.plan.name}")]
        return out


def make_tar(files: Iterable[tuple[str, bytes | None]]) -> bytes:
    """A tar of folders (``None``: name ends in ``/``) and 0600 files."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in files:
            info = tarfile.TarInfo(name.rstrip("/"))
            if body is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
            else:
                info.size, info.mode = len(body), 0o600
                tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _first_file(tar_bytes: bytes) -> bytes | None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for m in tar:
            fh = tar.extractfile(m) if m.isfile() else None
            if fh is not None:
                return fh.read(1 << 16)
    return None
