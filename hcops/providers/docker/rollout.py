"""How the Docker provider changes a running chain without halting it: waiting for nodes to rejoin, checking
quorum before a validator stops, healing what is down first, and carrying out validator-set changes.

Every stop of a validator goes through ``ensure_quorum``: the chain's own view (``hcops.providers.quorum``)
plus what the engine knows (stopped containers) must leave more than 2/3 of the voting power online. When
it would not, the declared validators whose containers are stopped are started first; if that is not
enough, apply refuses and names the validators that are down.

One member's share of a consortium (``plan.remote``: ``hcops apply --org``) is waited for by the power its
nodes see online (``hcops.providers.members``): the first members to apply cannot wait for blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from docker.models.containers import Container

from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.lock import ValidatorChange
from hcops.plan.membership import PowerChange
from hcops.progress import Reporter
from hcops.providers.base import ApplyOptions
from hcops.providers.docker.containers import DesiredContainer
from hcops.providers.docker.inventory import RUNNING, Inventory
from hcops.providers.docker.readiness import ContainerHandle
from hcops.providers.members import Online, Reach, chain_validators, online
from hcops.providers.quorum import QuorumView, read_view, refuse
from hcops.providers.readiness import NotReady, Target, Waiter
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.providers.validators import ValidatorChanger, updater_for

RPC_TIMEOUT = 4.0  # generous: a node on a busy host may answer slowly
# How long a member's new nodes get to connect to the other members' running nodes before the power online is
# judged: they dial their persistent peers at once, so a few seconds do on an idle host, more on a busy one; a
# member that is not up yet is not waited for (it may apply days later).
PEER_GRACE = 15.0


def running(c: Container | None) -> bool:
    return c is not None and ((c.attrs.get("State") or {}).get("Status") or c.status) == RUNNING


@dataclass
class Rollout:
    plan: NetworkPlan
    inv: Inventory
    reporter: Reporter
    options: ApplyOptions
    start: Callable[[NodePlan], None]  # start a declared node's existing, stopped container
    refresh: Callable[[], Inventory]
    committed: list[ValidatorChange] = field(default_factory=list)

    # ------------------------------------------------------------------ reading the chain
    def rpc(self, n: NodePlan, timeout: float = RPC_TIMEOUT) -> RpcClient:
        return RpcClient(DesiredContainer(self.plan, n).rpc_url, timeout=timeout, attempts=1)

    def rpcs(self) -> list[RpcClient]:
        return [self.rpc(n, 2.0) for n in self.plan.nodes if running(self.inv.container(n.name))]

    def names(self) -> dict[str, str]:
        """Validator address -> node name: the declared nodes, and the lock's (a node being removed)."""
        known = {n.validator_address.upper(): n.name for n in self.plan.lock.nodes} if self.plan.lock else {}
        return {**known, **{n.keys.validator_address.upper(): n.name for n in self.plan.nodes}}

    def view(self) -> QuorumView:
        down = {n.name for n in self.plan.nodes if not running(self.inv.container(n.name))}
        return read_view(self.rpcs(), self.names(), known_down=down)

    def height(self, exclude: str | None = None) -> int | None:
        for n in self.plan.nodes:
            if n.name == exclude:
                continue
            try:
                return self.rpc(n, 1.0).status().height
            except RpcUnavailable:
                continue
        return None

    # ------------------------------------------------------------------ waiting
    def targets(self, names: Collection[str] | None = None) -> list[Target]:
        out = []
        for n in self.plan.nodes:
            c = self.inv.container(n.name)
            if c is None or (names is not None and n.name not in names):
                continue
            out.append(Target(n.name, self.rpc(n), ContainerHandle(c),
                              n.keys.validator_address if n.node.is_validator else None))
        return out

    def validators(self) -> dict[str, str]:
        """The declared validators that hold power on the chain (a joining one is waited for separately)."""
        on_chain = self.plan.chain_validators()
        on_chain.update({c.validator_address: c.new_power for c in self.committed})
        return {n.name: n.keys.validator_address for n in self.plan.nodes
                if n.node.is_validator and on_chain.get(n.keys.validator_address.upper(), 0) > 0}

    def wait_network(self, *, since: int) -> None:
        if self.plan.remote:
            self.wait_member()
            return
        self.reporter.step(f"waiting for {self.options.min_blocks} blocks signed by every validator")
        waiter = Waiter(self.targets(), self.reporter, self.options.timeout)
        waiter.running()
        # Blocks from now on: volumes kept from an earlier run may already hold a chain.
        since = max(since, self.height() or 0)
        waiter.network(self.validators(), self.options.min_blocks, since=since)

    def wait_member(self) -> None:
        """One organization's nodes among the other members': wait for what the power online allows."""
        waiter = Waiter(self.targets(), self.reporter, self.options.timeout)
        self.reporter.step(f"waiting for {self.plan.organization}'s {len(waiter.targets)} node(s) to run and "
                           "connect to the other members' nodes")
        waiter.running()
        seen = self.power_online(waiter)
        self.reporter.step(seen.describe())
        if seen.reach is Reach.short:
            self.reporter.step("no block commits before more than 2/3 of the voting power is online: the chain "
                               "starts once enough members have applied their nodes (not waiting for blocks)")
            return
        for t in waiter.targets:  # a member joining a running chain first catches up from the others
            waiter.synced(t, min_height=1)
        since = self.height() or 1
        if seen.reach is Reach.everyone:
            self.reporter.step(f"waiting for {self.options.min_blocks} blocks signed by every validator")
            waiter.network(chain_validators(self.plan), self.options.min_blocks, since=since)
            return
        mine = {n.name for n in self.plan.nodes}
        own = {n: a for n, a in chain_validators(self.plan).items() if n in mine}
        task = f"blocks signed by {', '.join(own)}" if own else "blocks committed"
        self.reporter.step(f"waiting for {self.options.min_blocks} {task} (more than 2/3 online)")
        waiter.signed_blocks(own, self.options.min_blocks, since=since, task=task)

    def power_online(self, waiter: Waiter, grace: float = PEER_GRACE) -> Online:
        """The power this member's nodes see online, once every validator is seen or ``grace`` has passed."""
        end = time.monotonic() + grace
        while True:
            ids: set[str] = set()
            for t in waiter.targets:
                try:
                    ids.update(p.node_id for p in t.rpc.net_info())
                except RpcUnavailable:
                    continue
            waiter.check()
            seen = online(self.plan, [t.name for t in waiter.targets if t.handle.running()], ids)
            self.reporter.update("voting power online", seen.power, seen.total)
            if seen.reach is Reach.everyone or time.monotonic() > end:
                return seen
            time.sleep(0.5)

    def wait_rejoined(self, n: NodePlan, min_height: int | None = None) -> int:
        waiter = Waiter(self.targets({n.name}), self.reporter, self.options.timeout)
        waiter.running()
        ref = max(min_height or 0, self.height(exclude=n.name) or 0)
        return waiter.rejoined(waiter.targets[0], ref, self.validators())

    # ------------------------------------------------------------------ quorum
    def ensure_quorum(self, doing: str, stopping: Collection[str] = (),
                      power_changes: Mapping[str, int] | None = None) -> None:
        """Return when ``stopping`` (node names) can stop and ``power_changes`` be made with more than 2/3
        of the voting power online; heal stopped validators first if needed; else refuse (exit 2)."""
        view = self.view()
        # A validator that signs nothing already takes no power offline by stopping: replacing a node that is
        # down is itself the healing, even on a halted chain.
        stopping = [s for s in stopping if any(v.node == s and v.signing for v in view.validators)]
        if not stopping and not power_changes:
            return
        if view.safe_without(stopping, power_changes=power_changes):
            return
        down = [n for n in self.plan.nodes if n.name in {v.node for v in view.down}
                and n.name not in stopping and self.inv.container(n.name) is not None]
        # A stopped validator is started; one that runs but does not sign yet (restarted moments ago, by an
        # apply that was interrupted, say) is given the time to catch up. Either way it must sign again.
        stopped = [n for n in down if not running(self.inv.container(n.name))]
        if stopped:
            self.reporter.step(f"quorum first: starting {', '.join(n.name for n in stopped)} so that I can {doing}")
            for n in stopped:
                self.start(n)
            self.inv = self.refresh()
        if waiting := [n.name for n in down if n not in stopped]:
            self.reporter.step(f"quorum first: waiting for {', '.join(waiting)} to sign again so that I can {doing}")
        if down:
            for n in down:
                try:
                    self.wait_rejoined(n)
                except NotReady:
                    if n in stopped:
                        raise
                    # still not signing: the refusal below names it, which says more than a timeout
            view = self.view()
            if view.safe_without(stopping, power_changes=power_changes):
                return
        raise refuse(view, stopping, doing)

    # ------------------------------------------------------------------ validator-set changes
    def change_validators(self, changes: tuple[PowerChange, ...],
                          on_change: Callable[[ValidatorChange], None] | None) -> None:
        """Carry out ``changes`` one at a time (additions first): a joining node must have caught up first."""
        by_name = {n.name: n for n in self.plan.nodes}
        changer = ValidatorChanger(self.rpcs(), updater_for(self.plan.consortium.spec.chain.app), self.reporter,
                                   self.options.timeout)
        for change in changes:
            node = by_name.get(change.node)
            if change.new_power > 0 and node is not None:
                self.reporter.step(f"waiting for {change.node} to catch up before it joins the validator set")
                waiter = Waiter(self.targets({change.node}), self.reporter, self.options.timeout)
                waiter.running()
                waiter.synced(waiter.targets[0], min_height=max(1, (self.height(exclude=change.node) or 1) - 1))
            self.ensure_quorum(f"change {change.node}'s power to {change.new_power}",
                               power_changes={change.node: change.new_power})
            changer.rpcs = self.rpcs()
            done = changer.apply(change)
            self.committed.append(done)
            self.reporter.step(f"validator set: {change.node} power {done.old_power} -> {done.new_power} "
                               f"(committed at height {done.height}, in force from {done.effective_height})")
            if on_change is not None:
                on_change(done)
