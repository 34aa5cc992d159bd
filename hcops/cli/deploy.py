"""The deploy commands: ``plan``, ``apply``, ``status`` and ``destroy``."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hcops import output
from hcops.cli.app import (
    env_option,
    lock_timeout_option,
    output_option,
    pass_settings,
    run,
    spec_option,
    state_option,
    timeout_option,
)
from hcops.cli.check import check_options, gate_options, gate_verdict, warn_pack, warn_recording
from hcops.errors import InvalidInput
from hcops.settings import Settings

if TYPE_CHECKING:
    from hcops.policy.gate import GateReport
    from hcops.providers.base import Change, Changes
    from hcops.usecases.check import Recording

CHANGE_COLUMNS = ["action", "kind", "name", "node", "changed fields"]

org_option = click.option(
    "--org", "organization", default=None, metavar="NAME",
    help="Only this organization's nodes (its own state folder and keys); the other members' nodes are remote "
         "peers from the lock file. Needs the lock file of the genesis ceremony (docker and kubernetes providers).")


def _change_rows(changes: Iterable[Change]) -> list[list[Any]]:
    rows = []
    for c in changes:
        fields = ", ".join(f"{f.field}: {f.old} -> {f.new}" for f in c.fields)
        rows.append([c.action.value, c.kind, c.name, c.node, fields or None])
    return rows


def _changes_json(changes: Changes) -> list[dict[str, Any]]:
    return [{"kind": c.kind, "name": c.name, "action": c.action.value, "node": c.node,
             "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in c.fields]}
            for c in changes.items]


def _summary(changes: Changes) -> dict[str, int]:
    from hcops.providers.base import Action

    return {a.value: changes.count(a) for a in Action}


@click.command(name="plan")
@spec_option
@env_option
@state_option
@click.option("--prune-volumes", is_flag=True,
              help="Also plan removing the volumes of nodes no longer declared.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending (0 when none).")
@org_option
@output_option("text", "json")
@pass_settings
@run
def plan_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                 prune_volumes: bool, detailed_exitcode: bool, organization: str | None, fmt: str) -> int:
    """Show what apply would do: per network, volume and container, create/update/delete/unchanged."""
    from hcops.plan.membership import describe
    from hcops.usecases.deploy import plan as plan_changes

    outcome = plan_changes(spec_file, environment, state_dir, prune_volumes=prune_volumes, settings=settings,
                           organization=organization)
    changes, members, p = outcome.changes, outcome.membership, outcome.plan
    if fmt == "json":
        output.as_json({"network": p.name, "provider": p.consortium.spec.provider.type,
                        "spec_hash": p.spec_hash(), "pending": len(changes.pending) + len(members.changes),
                        "summary": _summary(changes), "changes": _changes_json(changes),
                        "genesis": {"sha256": p.genesis_sha256, "frozen": p.genesis_frozen,
                                    "lockFile": str(p.lock_file) if p.lock_file else None},
                        "pendingIdentities": list(p.pending),
                        "validatorSetChanges": [
                            {"node": c.node, "organization": c.organization, "change": c.kind.value,
                             "validatorAddress": c.validator_address or None, "oldPower": c.old_power,
                             "newPower": c.new_power} for c in members.ordered()],
                        "votingPowerShares": {org: {"before": float(members.shares("before").get(org, 0)),
                                                    "after": float(share)}
                                              for org, share in members.shares("after").items()},
                        "warnings": list(members.warnings)})
    else:
        output.wide_table(output.simple_table(CHANGE_COLUMNS, _change_rows(changes.items),
                                              title=f"plan for network {p.name}"))
        if members.changes:
            output.text("validator-set changes (transactions on the live chain; the genesis stays frozen):")
            for line in describe(members):
                output.text(f"  {line}")
        for warning in members.warnings:
            output.text(f"warning: {warning}", err=True)
        if p.pending:
            output.text(f"no identity yet: {', '.join(p.pending)} (apply generates their keys)")
        s = _summary(changes)
        if changes.pending or members.changes:
            output.text(f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
                        f"{s['unchanged']} unchanged, {len(members.changes)} validator-set change(s)")
        else:
            output.text("no changes: the network matches the spec")
    return 2 if detailed_exitcode and (changes.pending or members.changes) else 0


def _confirm(pending: tuple[Change, ...]) -> bool:
    if not pending:
        return True
    if not sys.stdin.isatty():
        raise InvalidInput(f"{len(pending)} change(s) pending and no terminal to confirm them",
                           hint="review them with `hcops plan`, then pass --yes")
    output.wide_table(output.simple_table(CHANGE_COLUMNS, _change_rows(pending)))
    return click.confirm("apply these changes?", default=False, err=True)


@click.command(name="apply")
@spec_option
@env_option
@state_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--prune-volumes", is_flag=True, help="Also remove the volumes of nodes no longer declared.")
@timeout_option(180.0, "Seconds to wait for the network (or each replaced node) to be ready.")
@lock_timeout_option
@gate_options
@click.option("--skip-gate", is_flag=True, help="Apply without the policy gate (needs --reason; recorded).")
@click.option("--reason", default=None, help="Why the gate is skipped (kept in the state and the audit log).")
@org_option
@output_option("text", "json")
@pass_settings
@run
def apply_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None, yes: bool,
                  prune_volumes: bool, timeout: float, lock_timeout: float, policy_dirs: tuple[Path, ...],
                  data_files: tuple[Path, ...], waivers: Path | None, strict: bool, engine: str, opa_url: str | None,
                  manifests: str, engine_timeout: float, engine_memory: int, skip_gate: bool, reason: str | None,
                  organization: str | None, fmt: str) -> int:
    """Create or update the network so that it matches the spec, then wait until every validator signs.

    The policy gate (as `hcops check`) runs first; on a deny finding nothing is touched (exit 1). With
    --org NAME only that organization's nodes are deployed, and the wait depends on the voting power online:
    blocks signed by every validator once all members run, by this member's validators above 2/3, none below.
    """
    from hcops.providers.base import ApplyOptions
    from hcops.usecases.check import make_gate, make_skip
    from hcops.usecases.deploy import apply as apply_spec

    if reason is not None and not skip_gate:
        raise InvalidInput("--reason goes with --skip-gate")
    if skip_gate and not (reason or "").strip():
        raise InvalidInput('--skip-gate needs --reason "..." (recorded in the state and the audit log)')
    gate_settings = check_options(settings, environment, state_dir, policy_dirs, data_files, waivers, strict, engine,
                                  opa_url, manifests, engine_timeout, engine_memory)

    def gate_report(report: GateReport, recording: Recording) -> None:
        from hcops.policy import formats

        warn_recording(recording)
        warn_pack(report.pack)
        if not report.passed:
            output.wide_table(formats.findings_table(report, show_waived=False))
        gate_verdict(report)

    def skip_recorded(recording: Recording) -> None:
        warn_recording(recording)
        output.text(f"warning: policy gate skipped: {reason}", err=True)

    gate = make_skip(gate_settings, reason or "", on_record=skip_recorded) if skip_gate \
        else make_gate(gate_settings, on_report=gate_report)
    outcome = apply_spec(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                         options=ApplyOptions(timeout=timeout, prune_volumes=prune_volumes),
                         lock_timeout=lock_timeout, gate=gate, confirm=None if yes else _confirm, settings=settings,
                         organization=organization)
    res = outcome.result
    if res is None:
        output.text("nothing applied", err=True)
        return 1
    nodes = res.observation.nodes
    if fmt == "json":
        output.as_json({"network": outcome.plan.name, "changed": outcome.changed,
                        "summary": _summary(res.changes), "changes": _changes_json(res.changes),
                        "nodes": [{"node": n.name, "org": n.org, "role": n.role, "container": n.resource,
                                   "state": n.state, "rpc": n.rpc_address, "height": n.height}
                                  for n in nodes]})
        return 0
    output.wide_table(output.simple_table(
        ["node", "org", "role", "container", "RPC", "height"],
        [[n.name, n.org, n.role, n.resource, n.rpc_address, n.height] for n in nodes],
        title=f"network {outcome.plan.name}"))
    if outcome.changed:
        s = _summary(res.changes)
        output.text(f"applied: {s['create']} created, {s['update']} updated, {s['delete']} deleted")
    else:
        output.text("no changes: the network already matches the spec")
    return 0


@click.command(name="status")
@spec_option
@env_option
@state_option
@org_option
@output_option("text", "json")
@pass_settings
@run
def status_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                   organization: str | None, fmt: str) -> int:
    """Live state of every node: container, health, height, peers, voting power."""
    import dataclasses

    from hcops.usecases.deploy import status as observe_network

    outcome = observe_network(spec_file, environment, state_dir, settings=settings, organization=organization)
    obs = outcome.observation
    if fmt == "json":
        output.as_json({"network": obs.network, "nodes": [dataclasses.asdict(n) for n in obs.nodes],
                        "undeclared": list(obs.undeclared), "facts": dict(obs.facts)})
        return 0
    output.wide_table(output.simple_table(
        ["node", "org", "role", "container", "health", "RPC", "height", "catching up", "peers", "power",
         "last block"],
        [[n.name, n.org, n.role, n.state, n.health, (n.rpc.url if n.rpc else None) or n.rpc_address,
          n.height, n.catching_up, n.peers, n.voting_power, n.last_block_time] for n in obs.nodes],
        title=f"network {obs.network}"))
    for u in obs.undeclared:
        output.text(f"undeclared: {u.get('kind')} {u.get('name')} carries this network's labels", err=True)
    return 0


@click.command(name="destroy")
@spec_option
@env_option
@state_option
@click.option("--prune-volumes", is_flag=True, help="Also remove the nodes' data volumes (chain data).")
@click.option("--purge-keys", is_flag=True, help="Also delete the node and validator keys (needs --yes).")
@click.option("--yes", "-y", is_flag=True, help="Confirm --purge-keys.")
@lock_timeout_option
@org_option
@pass_settings
@run
def destroy_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                    prune_volumes: bool, purge_keys: bool, yes: bool, lock_timeout: float,
                    organization: str | None) -> int:
    """Remove the network's containers and network; volumes and keys survive unless asked."""
    from hcops.usecases.deploy import destroy as destroy_network

    if purge_keys and not yes:
        raise InvalidInput("--purge-keys deletes the validators' keys for good; add --yes to confirm")
    outcome = destroy_network(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                              prune_volumes=prune_volumes, purge_keys=purge_keys, lock_timeout=lock_timeout,
                              settings=settings, organization=organization)
    r = outcome.result
    kinds: dict[str, int] = {}
    for c in r.removed:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    done = ", ".join(f"{n} {k}(s)" for k, n in kinds.items()) or "nothing"
    output.text(f"network {outcome.plan.name}: removed {done}")
    if r.kept:
        output.text(f"kept {len(r.kept)} volume(s) (use --prune-volumes to remove them)")
    if outcome.purged_keys:
        output.text(f"deleted the keys under {outcome.plan.state_dir}")
    return 0


COMMANDS = (plan_command, apply_command, status_command, destroy_command)
