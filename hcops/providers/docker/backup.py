"""The Docker side of backups, restores and drills (``hcops.backup.backend.NodeBackend``).

A node's data is copied with the engine's archive API (``GET /containers/{id}/archive``), which reads a
stopped container's volume: the node image has no shell or tar of its own, and none is needed. A restore
gives the node a new volume (the old one is removed with its container) and hands it the node's files,
the data and the signing state through ``PUT .../archive`` before the container first starts. A drill
runs one throwaway container on a network of its own (``internal``: no route out, nothing published),
reached from this host at its address on that network.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from hcops.errors import EnvironmentProblem
from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers.docker import engine
from hcops.providers.docker.containers import (
    HOME,
    NODE_USER,
    STATE_PATH,
    DesiredContainer,
    make_tar,
    node_labels,
)
from hcops.providers.docker.engine import engine_errors
from hcops.providers.rpc import RpcClient

LABEL_DRILL = "hcops.drill"  # not hcops.network: a drill's objects are not the consortium's
DATA = f"{HOME}/data"


class DockerBackend:
    provider = "docker"

    def __init__(self, plan: NetworkPlan, client: docker.DockerClient | None = None) -> None:
        self.plan = plan
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    def _desired(self, node: NodePlan) -> DesiredContainer:
        return DesiredContainer(self.plan, node)

    def _container(self, node: NodePlan) -> Container | None:
        with engine_errors(f"looking up {node.name}'s container"):
            try:
                return self.client.containers.get(self._desired(node).name)
            except docker.errors.NotFound:
                return None

    # ------------------------------------------------------------------ NodeBackend
    def rpc(self, node: NodePlan) -> RpcClient:
        return self._desired(node).rpc_client(timeout=4.0, attempts=2)

    def config_toml(self, node: NodePlan) -> bytes:
        return self._desired(node).config_toml()

    def running(self, node: NodePlan) -> bool:
        c = self._container(node)
        return c is not None and c.status == "running"

    def stop(self, node: NodePlan) -> None:
        c = self._container(node)
        if c is not None and c.status in ("running", "restarting", "paused"):
            with engine_errors(f"stopping {c.name}"):
                c.stop(timeout=self.plan.consortium.spec.provider.docker.stop_timeout)

    def start(self, node: NodePlan) -> None:
        c = self._container(node)
        if c is None:
            raise EnvironmentProblem(f"{node.name} has no container", hint="run `hcops apply` first")
        with engine_errors(f"starting {c.name}"):
            c.start()

    @contextlib.contextmanager
    def data_tar(self, node: NodePlan) -> Iterator[Iterable[bytes]]:
        c = self._container(node)
        if c is None:
            raise EnvironmentProblem(f"{node.name} has no container to back up", hint="run `hcops apply` first")
        with engine_errors(f"copying {node.name}'s data folder"):
            stream, _ = c.get_archive(DATA, chunk_size=1 << 20)
            yield stream

    def read_state(self, node: NodePlan) -> bytes | None:
        c = self._container(node)
        if c is None:
            return None
        with engine_errors(f"reading {node.name}'s signing state"):
            try:
                stream, _ = c.get_archive(f"{HOME}/{STATE_PATH}")
            except docker.errors.NotFound:
                return None
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                fh = tar.extractfile(member) if member is not None else None
                return fh.read(1 << 16) if fh is not None else None

    def replace(self, node: NodePlan, data: Path, state: bytes | None, config_toml: bytes) -> None:
        d = self._desired(node)
        old = self._container(node)
        with engine_errors(f"replacing {node.name}'s container and volume"):
            if old is not None:
                old.remove(force=True)  # already stopped by the caller; force covers a restart policy race
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(d.volume).remove(force=True)
            self.client.volumes.create(d.volume, driver="local", labels=node_labels(self.plan, node))
            c = self.client.containers.create(**d.create_kwargs(self.client.api.api_version))
            files = _with_config(d.archive(with_state=False), config_toml)
            if not c.put_archive(HOME, files):
                raise EnvironmentProblem(f"the engine refused {node.name}'s files")
            with open(data, "rb") as fh:
                if not c.put_archive(HOME, fh):
                    raise EnvironmentProblem(f"the engine refused the restored data of {node.name}")
            if state is not None and not c.put_archive(HOME, make_tar([(STATE_PATH, state, 0o600)])):
                raise EnvironmentProblem(f"the engine refused {node.name}'s signing state")

    @contextlib.contextmanager
    def scratch(self, node: NodePlan, data: Path, config_toml: bytes, tag: str) -> Iterator[RpcClient]:
        client = self.client
        name = f"hcops-drill-{tag}-{secrets.token_hex(3)}"
        labels = {LABEL_DRILL: self.plan.name, "hcops.managed-by": "hcops"}
        made: list[Any] = []
        try:
            with engine_errors(f"creating the drill network {name}"):
                net = client.networks.create(name, driver="bridge", internal=True, labels=labels)
                made.append(net)
                vol = client.volumes.create(f"{name}-data", driver="local", labels=labels)
                made.append(vol)
                c = client.containers.create(
                    image=node.node.image, command=["start", "--home", HOME], name=name, labels=labels,
                    user=NODE_USER, read_only=True, tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
                    cap_drop=["ALL"], security_opt=["no-new-privileges:true"], network=name,
                    volumes={vol.name: {"bind": HOME, "mode": "rw"}}, mem_limit="512m", pids_limit=256)
                made.append(c)
                tree = make_tar([("config", None, 0o700), ("data", None, 0o700),
                                 ("config/config.toml", config_toml, 0o600),
                                 ("config/genesis.json", self.plan.genesis_json().encode(), 0o600)])
                if not c.put_archive(HOME, tree):
                    raise EnvironmentProblem(f"the engine refused the drill node's files ({name})")
                with open(data, "rb") as fh:
                    if not c.put_archive(HOME, fh):
                        raise EnvironmentProblem(f"the engine refused the restored data ({name})")
                c.start()
            yield RpcClient(f"http://{_address(c, name)}:{cometbft.RPC_PORT}", timeout=5.0, attempts=1)
        finally:
            for obj in reversed(made):  # container, volume, network: each removed even if another fails
                with contextlib.suppress(docker.errors.DockerException):
                    obj.remove(force=True) if isinstance(obj, Container) else obj.remove()

    def drill_leftovers(self) -> list[str]:
        """Objects of earlier drills of this network that were not removed (for tests and `doctor`-like use)."""
        f = {"label": f"{LABEL_DRILL}={self.plan.name}"}
        with engine_errors("listing drill objects"):
            return ([f"container {c.name}" for c in self.client.containers.list(all=True, filters=f)]
                    + [f"network {n.name}" for n in self.client.networks.list(filters=f)]
                    + [f"volume {v.name}" for v in self.client.volumes.list(filters=f)])


def _address(c: Container, network: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        c.reload()
        ip = (((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}).get("IPAddress")
        if ip:
            return str(ip)
        if c.status in ("exited", "dead") or time.monotonic() > deadline:
            tail = c.logs(tail=15).decode("utf-8", "replace").strip()
            raise EnvironmentProblem(f"the drill node {c.name} did not start ({c.status})",
                                     hint=f"its last log lines:\n{tail}" if tail else None)
        time.sleep(0.2)


def _with_config(tar_bytes: bytes, config_toml: bytes) -> bytes:
    """The node's files tar with ``config/config.toml`` replaced (same owner and mode)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            if m.name == "config/config.toml":
                m.size = len(config_toml)
                dst.addfile(m, io.BytesIO(config_toml))
            else:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    return out.getvalue()
