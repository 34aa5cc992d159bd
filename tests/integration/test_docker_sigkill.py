"""A SIGKILL of `hcops apply` at any point, followed by a new apply, converges: one container per node,
the same keys, and a chain that commits again."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from hcops.plan.desired import build_plan
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.spec.loader import load_spec
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

# Progress lines on stderr, each printed just before the step it names: killing right after reading one
# interrupts apply before, inside or just after that step.
FRESH_POINTS = ["creating network", "creating 5 volume(s)", "creating 5 node container(s)",
                "containers running", "blocks signed by every validator: 1/3"]
ROLLING_POINTS = ["replacing stmary-val-0", "blocks signed by northside-val-0: 0/2", "replacing cityrx-val-0"]


def identities(net: TestNetwork) -> dict[str, tuple[str, str]]:
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    return {n.name: (n.keys.node_id, n.keys.validator_address) for n in plan.nodes}


def kill_at(net: TestNetwork, marker: str, timeout: float = 120) -> bool:
    """Run apply and SIGKILL it right after ``marker`` shows on stderr; False if it finished first."""
    proc = net.popen("apply", "--yes")
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stderr:
            if marker in line:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return True
            if time.monotonic() > deadline:
                break
        proc.wait(timeout)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def assert_converged(net: TestNetwork, client: Any, keys: dict[str, tuple[str, str]]) -> None:
    net.hcops("apply", "--yes", check=True)
    found = client.containers.list(all=True, filters={"label": f"hcops.network={net.name}"})
    nodes = sorted(c.labels["hcops.node"] for c in found)
    assert nodes == sorted(keys), f"containers after convergence: {nodes}"
    assert all(c.status == "running" for c in found)
    assert identities(net) == keys
    assert net.hcops("plan", "--detailed-exitcode").returncode == 0
    rpc = RpcClient(f"http://127.0.0.1:{net.port_base}", attempts=3)
    start = rpc.status().height
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if rpc.status().height >= start + 2:
                break
        except RpcUnavailable:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("the chain did not resume")
    for i, (node_id, _) in enumerate(keys.values()):
        assert RpcClient(f"http://127.0.0.1:{net.port_base + i}").status().node_id == node_id


def test_sigkill_during_fresh_apply_then_apply_converges(make_network: Callable[..., TestNetwork],
                                                         docker_engine: Any) -> None:
    net = make_network("kill")
    keys = identities(net)
    killed = 0
    for marker in FRESH_POINTS:
        killed += kill_at(net, marker)
        assert_converged(net, docker_engine, keys)
        net.hcops("destroy", "--prune-volumes", check=True)
    assert killed >= len(FRESH_POINTS) - 1


def test_sigkill_during_rolling_update_then_apply_converges(make_network: Callable[..., TestNetwork],
                                                            docker_engine: Any) -> None:
    net = make_network("killroll")
    keys = identities(net)
    net.hcops("apply", "--yes", check=True)
    for i, marker in enumerate(ROLLING_POINTS):
        net.block_interval = f"{300 + 100 * (i + 1)}ms"
        net.write()
        assert json.loads(net.hcops("plan", "-o", "json", check=True).stdout)["pending"] == 5
        assert kill_at(net, marker)
        assert_converged(net, docker_engine, keys)
