"""What one member of a consortium can wait for when it brings up its own nodes (``hcops apply --org``).

CometBFT commits a block only with precommits from more than 2/3 of the voting power. When each organization
applies its own nodes, the first members to apply start validators that cannot commit anything yet: the
power online is theirs plus whatever the members before them run. So the wait depends on the power this
member's nodes can see, counted from the chain's validator set (the lock file) as this member's running
validators plus the other members' validators its nodes are connected to:

* all of it online: blocks signed by every validator, as a whole-network apply waits for (the last member);
* more than 2/3: the chain commits; blocks signed by this member's validators;
* 2/3 or less: nothing can commit yet; the nodes run and dial their peers, and the apply says how much power
  is missing. Blocks come once enough members have applied (and that member's apply sees them).

The peers come from the nodes' own ``net_info``: a member reads nothing but its own nodes' RPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from hcops.plan.desired import NetworkPlan


class Reach(StrEnum):
    everyone = "everyone"  # every validator online: blocks signed by all of them
    quorum = "quorum"  # more than 2/3 of the power: the chain commits
    short = "short"  # 2/3 or less: no block can commit yet


@dataclass(frozen=True)
class Online:
    """The voting power one member's nodes see online."""

    powers: Mapping[str, int]  # validator node name -> power on the chain, every member's
    online: frozenset[str]  # validator node names seen online

    @property
    def total(self) -> int:
        return sum(self.powers.values())

    @property
    def power(self) -> int:
        return sum(p for n, p in self.powers.items() if n in self.online)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(sorted(n for n in self.powers if n not in self.online))

    @property
    def reach(self) -> Reach:
        if not self.missing:
            return Reach.everyone
        return Reach.quorum if 3 * self.power > 2 * self.total else Reach.short

    def describe(self) -> str:
        return (f"{self.power} of {self.total} voting power online"
                + (f" (not seen: {', '.join(self.missing)})" if self.missing else ""))


def chain_validators(plan: NetworkPlan) -> dict[str, str]:
    """Node name -> validator address of every member's validator that holds power on the chain."""
    powers = plan.chain_validators()
    return {n.name: n.keys.validator_address for n in plan.members
            if n.node.is_validator and powers.get(n.keys.validator_address.upper(), 0) > 0}


def online(plan: NetworkPlan, running: Iterable[str], peer_ids: Iterable[str]) -> Online:
    """The power online as seen from this member: its validators in ``running`` (node names) and the other
    members' validators whose node IDs are among its nodes' connected peers."""
    powers = plan.chain_validators()
    validators = chain_validators(plan)
    seen = {i.lower() for i in peer_ids}
    up = set(running)
    mine = {n.name for n in plan.nodes}
    node_ids = {n.name: n.keys.node_id.lower() for n in plan.members}
    on = {name for name in validators if (name in up if name in mine else node_ids[name] in seen)}
    return Online({name: powers.get(a.upper(), 0) for name, a in validators.items()}, frozenset(on))
