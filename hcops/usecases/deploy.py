"""Use cases of the deploy stage: plan, apply, status and destroy a network through its provider.

The provider is the one the spec names (``spec.provider.type``) unless a caller passes one. Apply and
destroy hold the network's lock; apply runs the optional policy gate before anything is touched.

The lock file next to the spec (``hcops.plan.lock``) is the chain's public record: apply writes it before
the provider starts any node (a new chain's genesis is frozen from then on), records each validator-set
change as soon as it is committed, and lists the nodes once apply is done. Only apply creates keys, and only
for nodes that have no identity anywhere; everything else plans from the spec, the lock and whatever keys
the state folder holds. Before anything is changed, apply refuses (exit 2) a state folder that does not
match the lock, and infrastructure that holds another identity or chain (``StateGuard``).

With ``organization`` (``--org NAME``) each use case works on that member's share of a consortium only
(``hcops.plan.desired``): its nodes, its keys, its containers; the other members' nodes are remote peers
known from the lock file, which such an apply reads and never writes (it is the consortium's record, changed
by the genesis ceremony and by validator-set changes, which ``--org`` does not carry out yet). The Docker and
Kubernetes providers support it; on Kubernetes the organization needs a namespace of its own
(``spec.organizations[].kubernetes``), which its apply and destroy own, reached through its own kube context.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import InvalidInput
from hcops.plan.desired import Identity, KeyMode, NetworkPlan, build_plan
from hcops.plan.lock import NetworkLock, ValidatorChange, remove_lock, upgrade_problem, write_lock
from hcops.plan.membership import MembershipPlan, describe
from hcops.progress import Reporter, SilentReporter
from hcops.providers import events
from hcops.providers.base import (
    Action,
    ApplyOptions,
    ApplyResult,
    Change,
    Changes,
    DestroyResult,
    Observation,
    Provider,
    StateGuard,
    carries_validator_updates,
    get_provider,
)
from hcops.providers.state import DEFAULT_LOCK_TIMEOUT, STATE_FILE, network_lock
from hcops.settings import Settings, resolve
from hcops.spec.loader import load_spec


def _record_event(network_dir: Path, kind: str, body: Mapping[str, Any], settings: Settings) -> None:
    """Writes what a provider hands up (hcops.providers.events) to the network's audit log."""
    from hcops.audit.log import AuditLog

    with AuditLog(settings.audit_db or network_dir / "audit.db") as log:
        log.append(kind, dict(body))


events.install(_record_event)

Gate = Callable[[NetworkPlan], None]
# Shown the pending changes before apply touches anything; False declines them.
Confirm = Callable[[tuple[Change, ...]], bool]


@dataclass(frozen=True)
class PlanOutcome:
    plan: NetworkPlan
    changes: Changes

    @property
    def membership(self) -> MembershipPlan:
        return self.plan.membership


@dataclass(frozen=True)
class ApplyOutcome:
    plan: NetworkPlan
    result: ApplyResult | None  # None: the changes were declined, nothing was applied

    @property
    def changed(self) -> bool:
        return self.result is not None and bool(self.result.changes.pending)


@dataclass(frozen=True)
class StatusOutcome:
    plan: NetworkPlan
    observation: Observation


@dataclass(frozen=True)
class DestroyOutcome:
    plan: NetworkPlan
    result: DestroyResult
    purged_keys: bool = False
    removed_lock: Path | None = None  # the lock file of a chain whose data is gone


ORG_PROVIDERS = ("docker", "kubernetes")


def load_plan(spec_file: Path, environment: str | None, state_dir: Path | None, *,
              keys: KeyMode = KeyMode.existing, settings: Settings | None = None,
              organization: str | None = None) -> NetworkPlan:
    """The plan from the spec, its lock file and the state folder; creates no key unless ``keys`` says so."""
    p = build_plan(load_spec(spec_file, environment), state_dir, keys=keys, settings=resolve(settings),
                   organization=organization)
    check_org_provider(p)
    return p


def check_org_provider(p: NetworkPlan) -> None:
    kind = p.consortium.spec.provider.type
    if p.organization is not None and kind not in ORG_PROVIDERS:
        raise InvalidInput(f"--org is not supported by the {kind} provider yet (only: {', '.join(ORG_PROVIDERS)})",
                           hint="apply the whole network from one state folder, or deploy with the docker or "
                                "kubernetes provider")
    if p.organization is not None and kind == "kubernetes":
        context, ns = p.consortium.kube_place(p.organization)
        shared = sorted({n.node.org for n in p.members if n.node.org != p.organization
                         and p.consortium.kube_place(n.node.org)[1] == ns})  # whatever the context
        if shared:  # its apply and destroy own the namespace's objects (budget, policies, the namespace itself)
            index = next(i for i, o in enumerate(p.consortium.spec.organizations) if o.name == p.organization)
            raise InvalidInput(f"--org {p.organization} on Kubernetes needs a namespace of its own; namespace {ns} "
                               f"also holds the nodes of {', '.join(shared)}",
                               hint=f"declare spec.organizations[{index}].kubernetes: {{namespace: NAME, "
                                    "context: CONTEXT}} for each organization")


def check_org_membership(p: NetworkPlan) -> None:
    """One member's apply does not change the consortium's validator set: every member's nodes would have to
    agree, and the lock file (the consortium's record of it) is not one member's to rewrite."""
    m = p.membership
    if p.organization is not None and m.changes:
        raise InvalidInput(f"refusing to apply --org {p.organization}: the spec changes the validator set ("
                           + "; ".join(c.describe() for c in m.ordered()) + ")",
                           hint="`hcops apply --org` deploys the validator set the lock file records; a "
                                "validator-set change is applied from one state folder holding the keys "
                                "involved, without --org, for now")


def provider_for(plan: NetworkPlan, provider: Provider | None = None) -> Provider:
    return provider if provider is not None else get_provider(plan.consortium.spec.provider.type)


def check_membership(p: NetworkPlan, prov: Provider) -> None:
    """Refuse a validator-set change that breaks the consensus rules (outside the development tier), or that
    the provider cannot carry out on a live chain."""
    m = p.membership
    if not m.changes:
        return
    if m.errors:
        raise InvalidInput("refusing the validator-set change: " + "; ".join(m.errors),
                           hint="planned: " + "; ".join(describe(m)) + ". Keep at least 4 validators and every "
                                "organization under 1/3 of the power (spec.tier: development relaxes this)")
    if not carries_validator_updates(prov):
        raise InvalidInput(f"the {prov.name} provider cannot change the validator set of a live chain: "
                           + "; ".join(c.describe() for c in m.ordered()),
                           hint="apply it with the docker provider, or keep the validator set as it is")


def check_upgrade(p: NetworkPlan) -> None:
    """An engine upgrade stays within the chain's patch series (a quorum-aware rolling replacement)."""
    problem = upgrade_problem(p.lock, p.consortium.spec.chain.version) if p.lock is not None else None
    if problem:
        raise InvalidInput(f"refusing the upgrade: {problem}",
                           hint="upgrade within the series (e.g. 0.38.17 -> 0.38.19) with a rolling apply; across "
                                "series, follow CometBFT's upgrade guide: stop every validator at one agreed "
                                "height, migrate, and start the new version together")


def check_state_folder(p: NetworkPlan) -> None:
    """The state folder must hold the keys the lock file records: new keys for a locked node would be a
    stranger to the chain (its peers dial it by node ID, the genesis lists its validator key)."""
    missing = [n.name for n in p.nodes if n.identity is Identity.lock and not p.conflicts]
    if p.conflicts or missing:
        what = "; ".join(p.conflicts) if p.conflicts else (
            f"the lock file {p.lock_file} records node(s) {', '.join(missing)}, but their keys are not in the "
            f"state folder {p.state_dir}")
        raise InvalidInput(f"refusing to apply network {p.name}: {what}",
                           hint="restore the state folder from backup (or point --state-dir at it); to give up "
                                "the chain and start a new one instead, `hcops destroy --prune-volumes` it")


def check_plan(p: NetworkPlan, prov: Provider) -> None:
    """What apply refuses before it plans, plan reports the same way."""
    check_membership(p, prov)
    check_upgrade(p)
    if isinstance(prov, StateGuard):
        prov.check_state(p)


def plan(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
         prune_volumes: bool = False, provider: Provider | None = None, settings: Settings | None = None,
         organization: str | None = None) -> PlanOutcome:
    p = load_plan(spec_file, environment, state_dir, settings=settings, organization=organization)
    prov = provider_for(p, provider)
    check_org_membership(p)
    check_plan(p, prov)
    return PlanOutcome(p, prov.plan(p, prune_volumes=prune_volumes))


def apply(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
          reporter: Reporter | None = None, options: ApplyOptions | None = None, gate: Gate | None = None,
          provider: Provider | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
          confirm: Confirm | None = None, settings: Settings | None = None,
          organization: str | None = None) -> ApplyOutcome:
    """Bring the network (with ``organization``: that member's nodes) to the spec. ``gate`` (e.g. the policy
    check) runs first and raises to refuse; ``confirm``, before it, sees the pending changes and may decline
    them (the outcome has no result)."""
    options = options or ApplyOptions()
    settings = resolve(settings)
    loaded = load_spec(spec_file, environment)
    probe = build_plan(loaded, state_dir, keys=KeyMode.existing, settings=settings, organization=organization)
    check_org_provider(probe)
    check_org_membership(probe)
    prov = provider_for(probe, provider)
    if confirm is not None:
        # Outside the lock: a person answering a prompt must not hold up another apply of the network.
        check_plan(probe, prov)
        if not confirm(prov.plan(probe, prune_volumes=options.prune_volumes).pending):
            return ApplyOutcome(probe, None)
    with network_lock(probe.state_dir, probe.name, lock_timeout):
        # Read-only checks first: a refused apply leaves no key, lock or container behind.
        check_state_folder(probe)
        check_plan(probe, prov)
        p = build_plan(loaded, state_dir, keys=KeyMode.generate, settings=settings,
                       organization=organization) if probe.pending else probe
        check_membership(p, prov)  # the new nodes' identities are known now
        if gate is not None:  # under the lock: the gate records its outcome in the network's state
            gate(p)
        if p.organization is not None:  # the lock file is the consortium's: read here, never written
            return ApplyOutcome(p, prov.apply(p, reporter or SilentReporter(), options))
        recorder = LockRecorder(p)
        upgraded_from = p.lock.engine_version if p.lock is not None else ""
        result = prov.apply(p, reporter or SilentReporter(),
                            dataclasses.replace(options, on_validator_change=recorder.committed))
        recorder.finish(p)
        if upgraded_from and upgraded_from != p.consortium.spec.chain.version:
            _record_event(p.state_dir, "engine_upgrade", upgrade_record(p, upgraded_from, result), p.settings)
    return ApplyOutcome(p, result)


def upgrade_record(p: NetworkPlan, old: str, result: ApplyResult) -> dict[str, Any]:
    """What the audit log keeps of a rolling engine upgrade: the versions, the nodes replaced (in the order
    planned) and the height each node reported when apply finished."""
    return {"network": p.name, "from": old, "to": p.consortium.spec.chain.version,
            "image": sorted({n.node.image for n in p.nodes}),
            "replaced": list(dict.fromkeys(c.node for c in result.changes.pending
                                           if c.action is Action.update and c.node and c.kind != "volume")),
            "heights": {n.name: n.height for n in result.observation.nodes}}


class LockRecorder:
    """Keeps the lock file in step with the chain during one apply."""

    def __init__(self, p: NetworkPlan) -> None:
        assert p.lock_file is not None
        self.path = p.lock_file
        self.lock: NetworkLock = p.new_lock()
        write_lock(self.path, self.lock)  # before any node gets the genesis: from now on it is frozen

    def committed(self, change: ValidatorChange) -> None:
        self.lock = self.lock.with_change(change)
        write_lock(self.path, self.lock)

    def finish(self, p: NetworkPlan) -> None:
        self.lock = dataclasses.replace(self.lock.with_nodes(p.locked_nodes()),
                                        engine_version=p.consortium.spec.chain.version)
        write_lock(self.path, self.lock)


def status(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
           provider: Provider | None = None, settings: Settings | None = None,
           organization: str | None = None) -> StatusOutcome:
    p = load_plan(spec_file, environment, state_dir, settings=settings, organization=organization)
    return StatusOutcome(p, provider_for(p, provider).observe(p))


def destroy(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
            reporter: Reporter | None = None, prune_volumes: bool = False, purge_keys: bool = False,
            provider: Provider | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
            settings: Settings | None = None, organization: str | None = None) -> DestroyOutcome:
    """Remove the network's containers and network; volumes and keys only when asked. With
    ``organization``: that member's containers (and volumes, keys), the shared network once nobody's
    containers are attached to it, and never the lock file (the other members' chain goes on).

    Keys go only together with the volumes: a node's chain data is useless, and dangerous to restart,
    once the keys that signed it are gone."""
    if purge_keys and not prune_volumes:
        raise InvalidInput("--purge-keys needs --prune-volumes",
                           hint="the nodes' data volumes belong to the keys; remove both or neither")
    p = load_plan(spec_file, environment, state_dir, settings=settings, organization=organization)
    prov = provider_for(p, provider)
    removed_lock = None
    reporter = reporter or SilentReporter()
    with network_lock(p.state_dir, p.name, lock_timeout):
        result = prov.destroy(p, reporter, prune_volumes=prune_volumes)
        # With the volumes gone the chain is gone: its lock file would freeze a genesis nobody runs, and the
        # next apply starts a new chain (and writes a new lock file).
        if prune_volumes and p.organization is None and p.lock_file is not None and remove_lock(p.lock_file):
            removed_lock = p.lock_file
            reporter.step(f"removed the lock file {removed_lock}: its chain's data is gone (commit the removal; "
                          "the next apply starts a new chain)")
        if purge_keys:
            shutil.rmtree(p.keystore.root / "keys", ignore_errors=True)
            for name in ("genesis_time", STATE_FILE):
                (p.state_dir / name).unlink(missing_ok=True)
    return DestroyOutcome(p, result, purged_keys=purge_keys, removed_lock=removed_lock)
