"""Readiness on hosts: the same rule as every provider (``min_blocks`` commits signed by every validator; a
restarted node caught up and, for a validator, signing again), through ``hcops.providers.readiness``'s
``Waiter`` over the SSH tunnels to each node's RPC.

The Waiter watches a handle per node for crashes; a host has a systemd unit, which restarts a crashed node
itself (``Restart=on-failure``), so ``UnitHandle`` never reports one: a node that cannot start is found by
the chain checks, and at the deadline its journal becomes the hint."""

from __future__ import annotations

from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter
from hcops.providers.ansible.tunnels import Tunnels, remote_output
from hcops.providers.ansible.workspace import Workspace
from hcops.providers.base import ApplyOptions
from hcops.providers.readiness import LOG_LINES, Target, Waiter, log_hint
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.render.ansible import unit_name

RPC_TIMEOUT = 4.0


class UnitHandle:
    """``NodeHandle`` of a node's systemd unit on its host."""

    def __init__(self, ws: Workspace, node: str) -> None:
        self.ws = ws
        self.node = node
        self.unit = f"{unit_name(ws.plan)}.service"
        self.name = f"{self.unit} on {node}"

    def check(self, node: str) -> None:
        """Nothing to see: see the module's docstring."""

    def running(self) -> bool:
        return True

    def log_hint(self) -> str | None:
        tail = remote_output(self.ws, self.node, ["journalctl", "-u", self.unit, "-n", str(LOG_LINES),
                                                  "--no-pager", "-o", "short-iso"])
        return log_hint(self.name, tail.rstrip(), f"see `journalctl -u {self.unit}` on {self.node}")


def targets(ws: Workspace, tunnels: Tunnels, names: set[str] | None = None) -> list[Target]:
    out = []
    for n in ws.plan.nodes:
        url = tunnels.url(n.name)
        if url is None or (names is not None and n.name not in names):
            continue
        rpc = RpcClient(url, timeout=RPC_TIMEOUT, attempts=1)
        address = n.keys.validator_address if n.node.is_validator else None
        out.append(Target(n.name, rpc, UnitHandle(ws, n.name), address))
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
    waiter.network(validators(ws.plan), options.min_blocks, since=since)


def wait_rejoined(ws: Workspace, tunnels: Tunnels, node: str, reporter: Reporter, options: ApplyOptions, *,
                  min_height: int | None) -> None:
    """A restarted node has caught up and, for a validator, signs again."""
    waiter = Waiter(targets(ws, tunnels, {node}), reporter, options.timeout)
    waiter.running()
    ref = max(min_height or 0, height(tunnels, ws.plan, exclude=node) or 0)
    waiter.rejoined(waiter.targets[0], ref, validators(ws.plan))
