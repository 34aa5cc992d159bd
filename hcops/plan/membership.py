"""Validator-set changes on a live chain: the spec's validators against the chain's (the lock file's).

Once a chain exists its genesis is frozen; adding or removing a validator, or changing its power, is a
validator update committed on chain (``hcops.providers.validators``), never a new genesis. This module only
computes what would change and judges it: who, old power -> new power, each organization's share before and
after, and the consensus rules a change must keep (at least 4 validators, no organization at or above 1/3 of
the voting power: an organization with 1/3 can halt the chain on its own). Outside the development tier a
change that breaks them is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING

from hcops.spec.models import Tier

if TYPE_CHECKING:
    from hcops.plan.desired import NetworkPlan

MIN_VALIDATORS = 4
MAX_ORG_SHARE = Fraction(1, 3)


class ChangeKind(StrEnum):
    add = "add"
    remove = "remove"
    power = "power"


@dataclass(frozen=True)
class PowerChange:
    node: str
    organization: str
    validator_address: str  # "" while the node's identity is pending (apply generates its keys)
    validator_pub_key: str
    old_power: int
    new_power: int

    @property
    def kind(self) -> ChangeKind:
        if self.old_power == 0:
            return ChangeKind.add
        return ChangeKind.remove if self.new_power == 0 else ChangeKind.power

    def describe(self) -> str:
        who = f"{self.node} ({self.organization})"
        pending = "" if self.validator_address else " [identity pending: apply generates its keys]"
        return f"{self.kind.value} validator {who}: power {self.old_power} -> {self.new_power}{pending}"


@dataclass(frozen=True)
class MembershipPlan:
    changes: tuple[PowerChange, ...]
    before: Mapping[str, int]  # organization -> voting power now
    after: Mapping[str, int]  # organization -> voting power once the changes are committed
    validators_before: int
    validators_after: int
    problems: tuple[str, ...] = ()  # rule breaks: errors outside the development tier, warnings inside
    strict: bool = True

    @property
    def errors(self) -> tuple[str, ...]:
        return self.problems if self.strict else ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return () if self.strict else self.problems

    def shares(self, when: str = "after") -> dict[str, Fraction]:
        powers = self.after if when == "after" else self.before
        total = sum(powers.values())
        return {org: Fraction(p, total) if total else Fraction(0) for org, p in sorted(powers.items())}

    def ordered(self) -> tuple[PowerChange, ...]:
        """Additions and increases first, removals and decreases last: while the set changes, the power
        online only grows before it shrinks."""
        return tuple(sorted(self.changes, key=lambda c: (c.new_power <= c.old_power, c.node)))


def _org_powers(powers: Mapping[str, int], org_of: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for address, power in powers.items():
        if power > 0:
            org = org_of.get(address, "(unknown)")
            out[org] = out.get(org, 0) + power
    return out


def membership(plan: NetworkPlan) -> MembershipPlan:
    """The validator-set changes from the chain's set (genesis plus recorded changes) to the spec's."""
    lock = plan.lock
    strict = plan.loaded.tier is not Tier.development
    if lock is None:  # a new chain: its genesis holds the spec's validators, nothing to change on chain
        org = {n.keys.validator_address: n.node.org for n in plan.members if n.node.is_validator}
        now = {n.keys.validator_address: n.node.power for n in plan.members if n.node.is_validator}
        powers = _org_powers(now, org)
        return MembershipPlan((), powers, powers, len(now), len(now), strict=strict)
    current = lock.powers()
    org_of = {n.validator_address.upper(): n.organization for n in lock.nodes}
    org_of.update({c.validator_address.upper(): c.organization for c in lock.history})
    name_of = {n.validator_address.upper(): n.name for n in lock.nodes}
    pub_keys = lock.pub_keys()
    changes: list[PowerChange] = []
    desired: dict[str, int] = {}
    for p in plan.members:  # every member's nodes: the validator set is the consortium's
        pending = p.identity.value == "pending"
        address = "" if pending else p.keys.validator_address.upper()
        want = p.node.power if p.node.is_validator else 0
        have = current.get(address, 0) if address else 0
        if address:
            desired[address] = want
            org_of[address] = p.node.org
        if want != have:
            changes.append(PowerChange(p.name, p.node.org, address, "" if pending else p.keys.validator_pub_key,
                                       have, want))
    for address, have in sorted(current.items()):
        if address not in desired:
            changes.append(PowerChange(name_of.get(address, address[:12]), org_of.get(address, "(unknown)"),
                                       address, pub_keys.get(address, ""), have, 0))
    after = {a: p for a, p in current.items()}
    for c in changes:
        after[c.validator_address or f"pending:{c.node}"] = c.new_power
        org_of.setdefault(c.validator_address or f"pending:{c.node}", c.organization)
    after = {a: p for a, p in after.items() if p > 0}
    before_orgs, after_orgs = _org_powers(current, org_of), _org_powers(after, org_of)
    problems = judge(after, after_orgs) if changes else ()
    return MembershipPlan(tuple(changes), before_orgs, after_orgs, len(current), len(after), problems, strict)


def judge(after: Mapping[str, int], orgs: Mapping[str, int]) -> tuple[str, ...]:
    problems = []
    if len(after) < MIN_VALIDATORS:
        problems.append(f"the change leaves {len(after)} validator(s); BFT needs at least {MIN_VALIDATORS} "
                        "to tolerate a faulty one")
    total = sum(orgs.values())
    for org, power in sorted(orgs.items()):
        share = Fraction(power, total) if total else Fraction(0)
        if share >= MAX_ORG_SHARE and len(orgs) > 1:
            problems.append(f"organization {org} would hold {power}/{total} ({float(share):.0%}) of the voting "
                            "power; at 1/3 or more one organization can halt the chain on its own")
    return tuple(problems)


def describe(plan: MembershipPlan) -> list[str]:
    """Lines for ``hcops plan``: each change, then the shares per organization before -> after."""
    lines = [c.describe() for c in plan.ordered()]
    before, after = plan.shares("before"), plan.shares("after")
    for org in sorted(set(before) | set(after)):
        lines.append(f"  {org}: {float(before.get(org, 0)):.0%} -> {float(after.get(org, 0)):.0%} of voting power")
    lines.append(f"  validators: {plan.validators_before} -> {plan.validators_after}")
    return lines
