"""The desired Docker objects of a network, derived from the plan: names, labels, container settings,
the files handed to each node, and the comparable "fields" that plan diffs against a live container."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomli_w
from docker.types import EndpointConfig, LogConfig

from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, PRIV_VALIDATOR_STATE, initial_validator_state
from hcops.spec.models import Exposure
from hcops.spec.types import cpu_millis, memory_bytes

LABEL_NETWORK = "hcops.network"
LABEL_ORG = "hcops.org"
LABEL_NODE = "hcops.node"
LABEL_ROLE = "hcops.role"
LABEL_SPEC_HASH = "hcops.spec-hash"
LABEL_CONFIG_HASH = "hcops.config-hash"
LABEL_FILES = "hcops.files"  # short digests of the files handed to the node (never their content)
LABEL_MANAGED = "hcops.managed-by"

NODE_UID = 10001
NODE_USER = f"{NODE_UID}:{NODE_UID}"
HOME = cometbft.HOME
RPC_PORT_KEY = f"{cometbft.RPC_PORT}/tcp"
PROBE = "/usr/local/bin/hcops-probe"
COMMAND = ("start", "--home", HOME)
TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m"}
SECURITY_OPT = ("no-new-privileges:true",)
HEALTH = {"test": ["CMD", PROBE], "interval": 5_000_000_000, "timeout": 3_000_000_000, "retries": 3,
          "start_period": 15_000_000_000}
KEY_PATHS = (f"config/{NODE_KEY}", f"config/{PRIV_VALIDATOR_KEY}")
STATE_PATH = f"data/{PRIV_VALIDATOR_STATE}"


def network_name(plan: NetworkPlan) -> str:
    return plan.name


def container_name(network: str, node: str) -> str:
    return f"{network}-{node}"


def volume_name(network: str, node: str) -> str:
    return f"{network}-{node}-data"


def base_labels(plan: NetworkPlan) -> dict[str, str]:
    return {LABEL_MANAGED: "hcops", LABEL_NETWORK: plan.name, LABEL_SPEC_HASH: plan.spec_hash()}


def node_labels(plan: NetworkPlan, node: NodePlan) -> dict[str, str]:
    return {**base_labels(plan), LABEL_ORG: node.node.org, LABEL_NODE: node.name,
            LABEL_ROLE: node.node.role.value}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def format_memory(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)} if name == "on-failure" else {"Name": name}


def rpc_host_ip(plan: NetworkPlan) -> str:
    """Where the RPC is published: this host only unless the spec shares it with members or everyone."""
    return "0.0.0.0" if plan.consortium.spec.network.rpc.exposure in (Exposure.consortium, Exposure.public) \
        else "127.0.0.1"


@dataclass(frozen=True)
class DesiredContainer:
    """One node's container as hcops wants it."""

    plan: NetworkPlan
    node: NodePlan

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
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.node.rpc_host_port}"

    def config_toml(self) -> bytes:
        return tomli_w.dumps(self.plan.docker_config(self.node)).encode()

    def files_digest(self) -> dict[str, str]:
        keys = f"{self.node.keys.node_id}/{self.node.keys.validator_address}"
        return {"config": _digest(self.config_toml()), "genesis": _digest(self.plan.genesis_json().encode()),
                "keys": _digest(keys.encode())}

    def fields(self) -> dict[str, str]:
        """What plan compares with a live container; values are short, printable and never secret."""
        s = self.plan.consortium.spec.provider.docker
        res = self.node.node.resources
        files = self.files_digest()
        return {
            "image": self.image,
            "command": " ".join(COMMAND),
            "user": NODE_USER,
            "memory": format_memory(memory_bytes(res.memory)),
            "cpu": f"{cpu_millis(res.cpu)}m",
            "pids_limit": str(s.pids_limit),
            "restart": s.restart,
            "read_only": "true",
            "cap_drop": "ALL",
            "security_opt": ",".join(SECURITY_OPT),
            "ip": self.node.docker_ip,
            "rpc": f"{rpc_host_ip(self.plan)}:{self.node.rpc_host_port}",
            "volume": self.volume,
            "config": files["config"],
            "genesis": files["genesis"],
            "keys": files["keys"],
        }

    def config_hash(self) -> str:
        return _digest(json.dumps(self.fields(), sort_keys=True).encode())

    def labels(self) -> dict[str, str]:
        return {**node_labels(self.plan, self.node), LABEL_CONFIG_HASH: self.config_hash(),
                LABEL_FILES: json.dumps(self.files_digest(), sort_keys=True, separators=(",", ":"))}

    def create_kwargs(self, api_version: str) -> dict[str, Any]:
        s = self.plan.consortium.spec.provider.docker
        res = self.node.node.resources
        mem = memory_bytes(res.memory)
        net = network_name(self.plan)
        return {
            "image": self.image,
            "command": list(COMMAND),
            "name": self.name,
            "hostname": self.node.name,
            "labels": self.labels(),
            "user": NODE_USER,
            "read_only": True,
            "tmpfs": dict(TMPFS),
            "cap_drop": ["ALL"],
            "security_opt": list(SECURITY_OPT),
            "mem_limit": mem,
            "memswap_limit": mem,
            "nano_cpus": cpu_millis(res.cpu) * 1_000_000,
            "pids_limit": s.pids_limit,
            "restart_policy": restart_policy(s.restart),
            "healthcheck": dict(HEALTH),
            "stop_signal": "SIGTERM",
            "ports": {RPC_PORT_KEY: (rpc_host_ip(self.plan), self.node.rpc_host_port)},
            "volumes": {self.volume: {"bind": HOME, "mode": "rw"}},
            "network": net,
            "networking_config": {net: EndpointConfig(api_version, aliases=[self.node.name],
                                                      links=None, ipv4_address=self.node.docker_ip)},
            "log_config": LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
        }

    def archive(self, *, with_state: bool) -> bytes:
        """The node's home files as a tar (owner 10001, keys 0600) for ``put_archive`` at ``/cometbft``."""
        entries: list[tuple[str, bytes | None, int]] = [
            ("config", None, 0o700),
            ("data", None, 0o700),
            ("config/config.toml", self.config_toml(), 0o600),
            ("config/genesis.json", self.plan.genesis_json().encode(), 0o600),
        ]
        keys = self.plan.keystore.private_files(self.node.name)
        entries += [(f"config/{name}", keys[name], 0o600) for name in (NODE_KEY, PRIV_VALIDATOR_KEY)]
        if with_state:
            entries.append((STATE_PATH, initial_validator_state(), 0o600))
        return make_tar(entries)


def make_tar(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    buf = io.BytesIO()
    stamp = int(time.time())
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
    }
