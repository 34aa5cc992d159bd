"""Helpers for tests against the real Docker engine: engine/image check, unique names, free ports and
subnets, the example spec with a test overlay, and cleanup of everything a test network created."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.requirements import unavailable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "regional-health-net" / "network.yaml"
IMAGE = "hcops/cometbft:0.38.17"
SESSION = uuid.uuid4().hex[:6]
LABEL = "hcops.network"


def docker_client() -> Any:
    """A client of a running engine that has the node image; fails under CI=true, skips otherwise."""
    def missing(why: str) -> None:
        unavailable(f"{why}; run `scripts/bootstrap docker image`")

    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        missing(f"no Docker engine: {exc.__class__.__name__}")
        raise AssertionError("unreachable") from None
    try:
        client.images.get(IMAGE)
    except Exception:  # noqa: BLE001
        missing(f"image {IMAGE} missing (scripts/bootstrap image)")
    return client


def unique_name(tag: str) -> str:
    return f"it-{SESSION}-{tag}-{uuid.uuid4().hex[:4]}"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(count: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 32000 - count)  # below the ephemeral range (32768-60999)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


def free_subnet(client: Any) -> str:
    used = []
    for net in client.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet"):
                used.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    for _ in range(500):
        cand = ipaddress.ip_network(f"10.{random.randrange(200, 255)}.{random.randrange(0, 256)}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise RuntimeError("no free subnet")


@dataclass
class TestNetwork:
    """A copy of the example consortium under a unique name, with its own state dir."""

    __test__ = False

    root: Path
    name: str
    port_base: int
    subnet: str
    block_interval: str = "300ms"

    @property
    def spec(self) -> Path:
        return self.root / "network.yaml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def write(self, **extra: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE, self.spec)
        env = self.root / "environments"
        env.mkdir(exist_ok=True)
        lines = [f"metadata: {{name: {self.name}}}", "spec:",
                 f"  chain: {{blockInterval: {self.block_interval}}}",
                 "  provider:",
                 f"    docker: {{rpcHostPortBase: {self.port_base}, subnet: {self.subnet}}}"]
        lines += list(extra.values())  # each already indented under spec:
        (env / "test.yaml").write_text("\n".join(lines) + "\n")

    def args(self) -> list[str]:
        return ["-f", str(self.spec), "--env", "test", "--state-dir", str(self.state_dir)]

    def hcops(self, *argv: str, timeout: float = 300,
              check: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "hcops", argv[0], *self.args(), *argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              env={**os.environ, "COLUMNS": "200"})
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "hcops", argv[0], *self.args(), *argv[1:]]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.root,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def new_network(client: Any, root: Path, tag: str, nodes: int = 5) -> TestNetwork:
    net = TestNetwork(root=root, name=unique_name(tag), port_base=free_port_base(nodes + 4),
                      subnet=free_subnet(client))
    net.write()
    return net


def leftovers(client: Any, name: str) -> list[str]:
    f = {"label": f"{LABEL}={name}"}
    out = [f"container {c.name}" for c in client.containers.list(all=True, filters=f)]
    out += [f"network {n.name}" for n in client.networks.list(filters=f)]
    out += [f"volume {v.name}" for v in client.volumes.list(filters=f)]
    return out


def cleanup(client: Any, name: str) -> None:
    """Remove every object labelled with this network (and unlabelled ones named after it)."""
    f = {"label": f"{LABEL}={name}"}
    by_name = {"name": name}
    for c in client.containers.list(all=True, filters=f) + client.containers.list(all=True, filters=by_name):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for n in client.networks.list(filters=f):
        with contextlib.suppress(Exception):
            n.remove()
    for v in client.volumes.list(filters=f) + client.volumes.list(filters=by_name):
        with contextlib.suppress(Exception):
            v.remove(force=True)
