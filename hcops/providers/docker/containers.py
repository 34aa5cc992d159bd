"""The desired Docker objects of a network: each node's container is its document from the render layer
(``hcops.render.docker_doc.NodeContainer``, the one the policy gate judges), turned here into the engine's
create arguments, the files handed to the node, and the comparable "fields" that plan diffs against a live
container. Nothing about a container is decided here that the document does not say."""

from __future__ import annotations

import io
import json
import ssl
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker.types import EndpointConfig, LogConfig

from hcops.clock import now
from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, PRIV_VALIDATOR_STATE, initial_validator_state
from hcops.providers.rpc import Endpoint, RpcClient
from hcops.render import docker_doc
from hcops.render.docker_doc import (
    LABEL_CONFIG_HASH,
    LABEL_FILES,
    LABEL_MANAGED,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_ORG,
    LABEL_ROLE,
    LABEL_SPEC_HASH,
    NodeContainer,
    container_name,
    network_name,
    rpc_host_ip,
    volume_name,
)

__all__ = [
    "HOME", "KEY_PATHS", "LABEL_CONFIG_HASH", "LABEL_FILES", "LABEL_MANAGED", "LABEL_NETWORK", "LABEL_NODE",
    "LABEL_ORG", "LABEL_ROLE", "LABEL_SPEC_HASH", "NODE_UID", "NODE_USER", "STATE_PATH", "DesiredContainer",
    "base_labels", "container_name", "live_fields", "network_name", "node_labels", "rpc_host_ip",
    "volume_name",
]

NODE_UID = docker_doc.NODE_UID
NODE_USER = docker_doc.USER
HOME = cometbft.HOME
RPC_PORT_KEY = f"{cometbft.RPC_PORT}/tcp"
KEY_PATHS = (f"config/{NODE_KEY}", f"config/{PRIV_VALIDATOR_KEY}")
STATE_PATH = f"data/{PRIV_VALIDATOR_STATE}"
_NS = 1_000_000_000


def base_labels(plan: NetworkPlan) -> dict[str, str]:
    return {LABEL_MANAGED: "hcops", LABEL_NETWORK: plan.name, LABEL_SPEC_HASH: plan.spec_hash()}


def node_labels(plan: NetworkPlan, node: NodePlan) -> dict[str, str]:
    return {**base_labels(plan), LABEL_ORG: node.node.org, LABEL_NODE: node.name,
            LABEL_ROLE: node.node.role.value}


def format_memory(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)} if name == "on-failure" else {"Name": name}


@dataclass(frozen=True)
class DesiredContainer:
    """One node's container as hcops wants it: a view of the node's document."""

    plan: NetworkPlan
    node: NodePlan

    @property
    def doc(self) -> NodeContainer:
        return docker_doc.documents(self.plan).document(self.node)

    @property
    def name(self) -> str:
        return container_name(network_name(self.plan), self.node.name)

    @property
    def volume(self) -> str:
        return volume_name(network_name(self.plan), self.node.name)

    @property
    def image(self) -> str:
        return self.node.node.image

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The network CA's verifier when the spec turns TLS on (hcops.plan.certs), else None."""
        return docker_doc.documents(self.plan).ssl_context

    @property
    def rpc_url(self) -> Endpoint:
        """The RPC as published on this host. With TLS an ``https://`` endpoint that carries the network CA's
        context, so that any ``RpcClient(d.rpc_url)`` verifies the node's certificate."""
        scheme = docker_doc.rpc_scheme(self.plan)
        return Endpoint(f"{scheme}://127.0.0.1:{self.node.rpc_host_port}", self.ssl_context)

    def rpc_client(self, *, timeout: float = 2.0, attempts: int = 1) -> RpcClient:
        return RpcClient(self.rpc_url, timeout=timeout, attempts=attempts, ssl_context=self.ssl_context)

    def command(self) -> list[str]:
        return list(self.doc.command)

    def config_toml(self) -> bytes:
        return docker_doc.documents(self.plan).bundle(self.node).config_toml.encode()

    def files_digest(self) -> dict[str, str]:
        return self.doc.files_digest

    def fields(self) -> dict[str, str]:
        """What plan compares with a live container; values are short, printable and never secret."""
        d = self.doc
        files = self.files_digest()
        port = d.ports[0]
        return {
            "image": d.image,
            "command": " ".join(d.command),
            "user": d.user,
            "memory": format_memory(d.resources.memory_bytes),
            "cpu": f"{d.resources.nano_cpus // 1_000_000}m",
            "pids_limit": str(d.resources.pids_limit),
            "restart": d.restart,
            "read_only": str(d.read_only).lower(),
            "cap_drop": ",".join(d.cap_drop),
            "security_opt": ",".join(d.security_opt),
            "ip": d.ipv4_address,
            "rpc": f"{port.host_ip}:{port.host_port}",
            "volume": d.volume,
            "config": files["config"],
            "genesis": files["genesis"],
            "keys": files["keys"],
            "tls": files.get("tls", ""),
        }

    def config_hash(self) -> str:
        return self.doc.label_map[LABEL_CONFIG_HASH]

    def labels(self) -> dict[str, str]:
        return self.doc.label_map

    def create_kwargs(self, api_version: str) -> dict[str, Any]:
        """The engine's create arguments: the document's fields, one for one."""
        d = self.doc
        hc = d.healthcheck
        kwargs: dict[str, Any] = {
            "image": d.image,
            "command": list(d.command),
            "name": d.name,
            "hostname": d.hostname,
            "labels": d.label_map,
            "user": d.user,
            "read_only": d.read_only,
            "privileged": d.privileged,
            "tmpfs": dict(d.tmpfs),
            "cap_drop": list(d.cap_drop),
            "security_opt": list(d.security_opt),
            "mem_limit": d.resources.memory_bytes,
            "memswap_limit": d.resources.memory_swap_bytes,
            "nano_cpus": d.resources.nano_cpus,
            "pids_limit": d.resources.pids_limit,
            "restart_policy": restart_policy(d.restart),
            "healthcheck": {"test": list(hc.test), "interval": hc.interval_s * _NS, "timeout": hc.timeout_s * _NS,
                            "retries": hc.retries, "start_period": hc.start_period_s * _NS},
            "stop_signal": d.stop_signal,
            "ports": {f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) for p in d.ports},
            "volumes": {d.volume: {"bind": HOME, "mode": "rw"}},
            "network": d.network,
            "networking_config": {d.network: EndpointConfig(api_version, aliases=list(d.aliases), links=None,
                                                            ipv4_address=d.ipv4_address)},
            "log_config": LogConfig(type=d.log_driver, config=dict(d.log_options)),
        }
        if d.env:
            kwargs["environment"] = dict(d.env)
        if d.cap_add:
            kwargs["cap_add"] = list(d.cap_add)
        return kwargs

    def archive(self, *, with_state: bool) -> bytes:
        """The files of the document as a tar (owner 10001, the document's modes) for ``put_archive`` at
        ``/cometbft``. A validator's signing state is added only when the volume has none (never rolled back);
        an observer needs none: CometBFT creates its throwaway key and state (cometbft.OBSERVER_KEY)."""
        d = self.doc
        contents = docker_doc.documents(self.plan).contents(self.node)
        entries: list[tuple[str, bytes | None, int]] = [("config", None, 0o700), ("data", None, 0o700)]
        entries += [(f.path, contents[f.path], f.mode) for f in d.files]
        if with_state and self.node.node.is_validator:
            entries.append((STATE_PATH, initial_validator_state(), 0o600))
        return make_tar(entries)


def make_tar(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    buf = io.BytesIO()
    stamp = int(now().timestamp())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content, mode in entries:
            info = tarfile.TarInfo(path)
            info.uid = info.gid = NODE_UID
            info.uname = info.gname = "cometbft"
            info.mode = mode
            info.mtime = stamp
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def live_fields(attrs: Mapping[str, Any], network: str) -> dict[str, str]:
    """The same fields as ``DesiredContainer.fields`` read back from a container's inspect document."""
    cfg = attrs.get("Config") or {}
    hc = attrs.get("HostConfig") or {}
    labels = cfg.get("Labels") or {}
    try:
        files = json.loads(labels.get(LABEL_FILES, "{}"))
    except ValueError:
        files = {}
    rp = hc.get("RestartPolicy") or {}
    restart = rp.get("Name") or "no"
    if restart == "on-failure" and rp.get("MaximumRetryCount"):
        restart = f"on-failure:{rp['MaximumRetryCount']}"
    ep = ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    ip = (ep.get("IPAMConfig") or {}).get("IPv4Address") or ep.get("IPAddress") or ""
    binds = (hc.get("PortBindings") or {}).get(RPC_PORT_KEY) or []
    rpc = f"{binds[0].get('HostIp') or '0.0.0.0'}:{binds[0].get('HostPort')}" if binds else ""
    volume = next((m.get("Name", "") for m in attrs.get("Mounts") or () if m.get("Destination") == HOME), "")
    return {
        "image": cfg.get("Image", ""),
        "command": " ".join(cfg.get("Cmd") or ()),
        "user": cfg.get("User", ""),
        "memory": format_memory(int(hc.get("Memory") or 0)),
        "cpu": f"{int(hc.get('NanoCpus') or 0) // 1_000_000}m",
        "pids_limit": str(hc.get("PidsLimit") or ""),
        "restart": restart,
        "read_only": str(bool(hc.get("ReadonlyRootfs"))).lower(),
        "cap_drop": ",".join(hc.get("CapDrop") or ()),
        "security_opt": ",".join(hc.get("SecurityOpt") or ()),
        "ip": ip,
        "rpc": rpc,
        "volume": volume,
        "config": str(files.get("config", "")),
        "genesis": str(files.get("genesis", "")),
        "keys": str(files.get("keys", "")),
        "tls": str(files.get("tls", "")),
    }
