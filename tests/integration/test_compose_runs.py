"""The rendered docker/compose.yaml runs as it is with Debian's docker-compose 1.29: every node starts
hardened, the validators commit blocks, and a restart keeps the double-sign protection state."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.requirements import missing
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

NODES = ["stmary-val-0", "northside-val-0", "bluecross-val-0", "cityrx-val-0", "state-obs-0"]


def compose_command() -> list[str]:
    found = shutil.which("docker-compose")
    if not found:
        missing("docker-compose", "docker")
    return [found]


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as resp:
        result: dict[str, Any] = json.load(resp)["result"]
        return result


def height(port: int) -> int:
    try:
        return int(status(port)["sync_info"]["latest_block_height"])
    except OSError:
        return -1


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_rendered_compose_file_runs(make_network: Callable[..., TestNetwork]) -> None:
    compose = compose_command()
    net = make_network("compose")
    net.write()
    out = net.root / "rendered"
    net.hcops("render", "-o", str(out), "--target", "docker", "--generate-keys", check=True)
    project = out / "docker"
    ports = [net.port_base + i for i in range(len(NODES))]

    def run(*args: str) -> None:
        proc = subprocess.run([*compose, *args], cwd=project, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"docker-compose {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"

    try:
        run("config", "-q")
        run("up", "-d")
        wait_for(lambda: all(height(p) >= 3 for p in ports), 180, "every node past height 3")
        assert status(ports[0])["node_info"]["network"] == "rhn-1"
        for node in NODES:
            info = json.loads(subprocess.run(["docker", "inspect", f"{net.name}-{node}"], capture_output=True,
                                             text=True, check=True).stdout)[0]
            host = info["HostConfig"]
            assert info["Config"]["User"] == "10001:10001" and host["ReadonlyRootfs"] is True
            assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges:true"]
            assert host["PortBindings"]["26657/tcp"][0]["HostIp"] == "127.0.0.1"  # exposure internal
            assert "26656/tcp" not in host["PortBindings"]
            assert info["Config"]["Labels"]["hcops.node"] == node
        signed = height(ports[0])
        run("stop")
        run("up", "-d")  # the init services run again and must leave the sign state alone
        wait_for(lambda: all(height(p) > signed for p in ports), 180, "blocks after the restart")
        logs = subprocess.run([*compose, "logs", "--no-color", f"{NODES[0]}_init"], cwd=project,
                              capture_output=True, text=True, timeout=60).stdout
        assert "Generated private validator" in logs  # first start: the placeholder and a fresh sign state
        assert "Found private validator" in logs  # restart: found both, wrote nothing
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=project, capture_output=True,
                       timeout=300)
