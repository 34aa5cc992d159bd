"""Readiness on hosts: the same rule as every provider (``min_blocks`` commits signed by every validator; a
restarted node caught up and, for a validator, signing again), through the Docker provider's ``Waiter``
over the SSH tunnels to each node's RPC.

The Waiter watches a container per node for crashes; a host has a systemd unit instead, which restarts a
crashed node itself (``Restart=on-failure``), so the stand-in below never reports one: a node that cannot
start is found by the chain checks, and at the deadline its journal becomes the hint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter
from hcops.providers.ansible.tunnels import Tunnels, remote_output
from hcops.providers.ansible.workspace import Workspace
from hcops.providers.base import ApplyOptions
from hcops.providers.docker.readiness import LOG_LINES, Target, Waiter
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.render.ansible import unit_name

if TYPE_CHECKING:
    from docker.models.containers import Container

RPC_TIMEOUT = 4.0
REJOIN_BLOCKS = 2  # blocks a restarted validator must sign before the next node is touched


class UnitHandle:
    """What the Waiter asks of a container (name, attrs, reload, logs), for a node's unit on its host."""

    def __init__(self, ws: Workspace, node: str) -> None:
        self.ws = ws
        self.node = node
        self.unit = f"{unit_name(ws.plan)}.service"
        self.name = f"{self.unit} on {node}"
        self.attrs: dict[str, Any] = {"State": {"Status": "running"}, "RestartCount": 0}

    def reload(self) -> None:
        """Nothing to refresh: see the module's docstring."""

    def logs(self, tail: int = LOG_LINES, stdout: bool = True, stderr: bool = True) -> bytes:
        text = remote_output(self.ws, self.node, ["journalctl", "-u", self.unit, "-n", str(tail), "--no-pager",
                                                  "-o", "short-iso"])
        return text.encode()


def targets(ws: Workspace, tunnels: Tunnels, names: set[str] | None = None) -> list[Target]:
    out = []
    for n in ws.plan.nodes:
        url = tunnels.url(n.name)
        if url is None or (names is not None and n.name not in names):
            continue
        rpc = RpcClient(url, timeout=RPC_TIMEOUT, attempts=1)
        handle = cast("Container", UnitHandle(ws, n.name))  # duck-typed: see UnitHandle
        out.append(Target(n.name, rpc, handle, n.keys.validator_address if n.node.is_validator else None))
    return out


def validators(plan: NetworkPlan) -> dict[str, str]:
    return {n.name: n.keys.validator_address for n in plan.nodes if n.node.is_validator}


def height(tunnels: Tunnels, plan: NetworkPlan, exclude: str | None = None) -> int | None:
    for n in plan.nodes:
        url = tunnels.url(n.name)
        if n.name == exclude or url is None:
            continue
        try:
            return RpcClient(url, timeout=2.0, attempts=1).status().height
        except RpcUnavailable:
            continue
    return None


def wait_network(ws: Workspace, tunnels: Tunnels, reporter: Reporter, options: ApplyOptions) -> None:
    """Every validator signs ``min_blocks`` new blocks; observers catch up."""
    reporter.step(f"waiting for {options.min_blocks} blocks signed by every validator")
    waiter = Waiter(targets(ws, tunnels), reporter, options.timeout)
    waiter.running()
    since = max(1, height(tunnels, ws.plan) or 0)  # a chain kept from an earlier apply counts from now
    latest = waiter.signed_blocks(validators(ws.plan), options.min_blocks, since=since)
    for t in waiter.targets:
        if not t.is_validator:
            waiter.synced(t, min_height=max(1, latest - 2))


def wait_rejoined(ws: Workspace, tunnels: Tunnels, node: str, reporter: Reporter, options: ApplyOptions, *,
                  min_height: int | None) -> None:
    """A restarted node has caught up and, for a validator, signs again."""
    waiter = Waiter(targets(ws, tunnels, {node}), reporter, options.timeout)
    waiter.running()
    target = waiter.targets[0]
    ref = max(min_height or 0, height(tunnels, ws.plan, exclude=node) or 0)
    reached = waiter.synced(target, min_height=max(1, ref - 1))
    if target.is_validator:
        waiter.signed_blocks(validators(ws.plan), REJOIN_BLOCKS, since=reached + 1, required=[node],
                             task=f"blocks signed by {node}")
