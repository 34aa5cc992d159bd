"""The Ansible provider: one node per host (a VM or server of a member organisation), reached over SSH.

``apply`` renders the ansible target into the state folder (keys read from the state folder, never copied
there) and runs the shipped ``cometbft_node`` role on every host through ansible-runner, in parallel: the
binary hcops was given, a system user, config, genesis and keys, a hardened systemd unit and an nftables
table matching the RPC exposure. A running node whose files changed is then restarted by hcops one at a
time (observers first), each waited for until it has caught up and, for a validator, signed again; a
network that was just started is waited for until every validator signs. Every run that can change a host
is recorded in the audit log (``ansible_run``).

``plan`` is the same role in check mode with --diff; ``observe`` runs the role's observe tasks and reads each
node's RPC through an SSH tunnel; ``destroy`` stops and removes the units and the firewall, keeping data,
keys, binary and user unless ``prune_volumes``.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

from hcops.clock import format_time, now
from hcops.errors import EnvironmentProblem
from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter, SilentReporter
from hcops.providers import events, quorum
from hcops.providers.ansible import readiness
from hcops.providers.ansible.observe import apply_observation, observe
from hcops.providers.ansible.runner import PROBE_TASK, REPORT_TASK, RunResult, run_playbook
from hcops.providers.ansible.tunnels import Tunnels
from hcops.providers.ansible.workspace import Binary, Workspace, find_binary
from hcops.providers.base import (
    Action,
    ApplyOptions,
    ApplyResult,
    Change,
    Changes,
    DestroyResult,
    FieldChange,
    Observation,
    register,
)
from hcops.providers.rpc import RpcClient
from hcops.providers.state import NodeRecord, StateStore
from hcops.render.ansible import unit_name

KIND = "host"
STARTED_TASK = "Start the node, now and at boot"
AUDIT_KIND = "ansible_run"


class AnsibleProvider:
    name: ClassVar[str] = "ansible"

    def __init__(self, reporter: Reporter | None = None) -> None:
        self._observe_reporter = reporter  # observe has no reporter argument in the protocol
        self._pool: Tunnels | None = None

    # ------------------------------------------------------------------ helpers
    def _workspace(self, plan: NetworkPlan, *, binary: bool) -> Workspace:
        return Workspace(plan, find_binary(plan) if binary else None).prepare()

    def _tunnels(self, ws: Workspace) -> Tunnels:
        """The provider's tunnel pool, kept between calls for the same network and connection settings."""
        pool = self._pool
        if pool is None or pool.ws.plan.name != ws.plan.name or pool.ws.settings != ws.settings:
            if pool is not None:
                pool.close()
            pool = self._pool = Tunnels(ws)
            weakref.finalize(self, pool.close)
        return pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @staticmethod
    def _expected_binary(plan: NetworkPlan) -> Binary | None:
        """The digest observe compares each host's binary with; unknown (None) when this machine has none."""
        try:
            return find_binary(plan)
        except EnvironmentProblem:
            return None

    @staticmethod
    def _record(plan: NetworkPlan, run: RunResult) -> None:
        events.record(plan.state_dir, AUDIT_KIND, run.audit_body(plan.name, plan.spec_hash()), plan.settings)

    @staticmethod
    def _fail(run: RunResult, what: str) -> EnvironmentProblem:
        lines = [f"{host}: {msg}" for host, msg in run.failures.items()] or [f"ansible-playbook {run.status}"]
        shown = lines[:6] + ([f"and {len(lines) - 6} more"] if len(lines) > 6 else [])
        return EnvironmentProblem(f"{what} failed on {len(run.failures) or 'some'} host(s): " + "; ".join(shown),
                                  hint=f"the run's output is in the state folder: ansible/runs/{run.ident}/stdout")

    @staticmethod
    def _changes(plan: NetworkPlan, run: RunResult) -> Changes:
        items = []
        for n in plan.nodes:
            probe = run.result(n.name, PROBE_TASK) or {}
            host = run.hosts.get(n.name)
            fields: tuple[FieldChange, ...] = host.changed if host else ()
            installed = bool((probe.get("unit") or {}).get("installed"))
            action = Action.create if not installed else Action.update if fields else Action.unchanged
            items.append(Change(KIND, n.name, action, fields, node=n.name))
        return Changes(tuple(items))

    # ------------------------------------------------------------------ plan / observe
    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        ws = self._workspace(plan, binary=True)
        run = run_playbook(ws, "apply", SilentReporter(), hosts=[n.name for n in plan.nodes], check=True)
        if not run.ok:
            raise self._fail(run, "planning (ansible check mode)")
        return self._changes(plan, run)

    def observe(self, plan: NetworkPlan) -> Observation:
        ws = self._workspace(plan, binary=False)
        return observe(ws, self._tunnels(ws), self._expected_binary(plan), self._observe_reporter)

    # ------------------------------------------------------------------ apply
    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult:
        ws = self._workspace(plan, binary=True)
        names = [n.name for n in plan.nodes]
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.spec_hash = "applying", plan.spec_hash()
        state.started_at, state.finished_at = format_time(now()), None
        state.extra = {**state.extra, "binarySha256": ws.binary.sha256 if ws.binary else None}
        store.save(state)

        reporter.step(f"ansible: role cometbft_node on {len(names)} host(s)")
        run = run_playbook(ws, "apply", reporter, hosts=names)
        self._record(plan, run)
        if not run.ok:
            raise self._fail(run, "apply")
        changes = self._changes(plan, run)
        state.extra["lastRun"] = run.ident
        state.nodes = {n.name: NodeRecord(container=f"{unit_name(plan)}.service",
                                          resource_id=ws.settings.host(n.name).address) for n in plan.nodes}
        store.save(state)

        started = [n for n, h in run.hosts.items() if any(f.field == STARTED_TASK for f in h.changed)]
        restart = [n for n in names if ((run.result(n, REPORT_TASK) or {}).get("msg") or {}).get("restart")]
        if not changes.pending and not restart:
            reporter.step("no changes: the hosts already match the spec")
        elif started or restart:
            tunnels = self._tunnels(ws).open(names)
            for n in names:
                if tunnels.url(n) is None:
                    reporter.warn(tunnels.error(n) or f"no tunnel to {n}")
            if started:
                readiness.wait_network(ws, tunnels, reporter, options)
            self._rolling_restart(ws, tunnels, restart, reporter, options)
        state.phase, state.finished_at = "applied", format_time(now())
        store.save(state)
        return ApplyResult(changes, apply_observation(plan, run))

    def _rolling_restart(self, ws: Workspace, tunnels: Tunnels, restart: list[str], reporter: Reporter,
                         options: ApplyOptions) -> None:
        """Observers first, then validators, one at a time: the chain keeps committing throughout."""
        plan = ws.plan
        ordered = sorted((plan.node(n) for n in restart), key=lambda n: (n.node.is_validator, n.node.index))
        for i, n in enumerate(ordered, 1):
            if n.node.is_validator:
                self._check_quorum(ws, tunnels, n.name)
            reporter.step(f"restarting {n.name} ({i}/{len(ordered)}): its files changed")
            before = readiness.height(tunnels, plan)
            run = run_playbook(ws, "restart", reporter, hosts=[n.name])
            self._record(plan, run)
            if not run.ok:
                raise self._fail(run, f"restarting {n.name}")
            readiness.wait_rejoined(ws, tunnels, n.name, reporter, options, min_height=before)

    @staticmethod
    def _check_quorum(ws: Workspace, tunnels: Tunnels, node: str) -> None:
        """Refuse to restart a validator when the power staying online would not exceed 2/3 (read from the
        chain: who signed the last commits); its restart mark stays, so the next apply tries again."""
        plan = ws.plan
        rpcs = [RpcClient(url, timeout=4.0, attempts=1) for n in plan.nodes if (url := tunnels.url(n.name))]
        names = {n.keys.validator_address: n.name for n in plan.nodes if n.node.is_validator}
        view = quorum.read_view(rpcs, names)
        if not view.safe_without([node]):
            raise quorum.refuse(view, [node], f"restart validator {node}")

    # ------------------------------------------------------------------ destroy
    def destroy(self, plan: NetworkPlan, reporter: Reporter, *, prune_volumes: bool = False) -> DestroyResult:
        self.close()
        ws = self._workspace(plan, binary=False)
        names = [n.name for n in plan.nodes]
        reporter.step(f"ansible: removing the node units from {len(names)} host(s)"
                      + (", with their data, keys and binary" if prune_volumes else " (data and keys are kept)"))
        run = run_playbook(ws, "destroy", reporter, hosts=names, extravars={"hcops_purge": prune_volumes})
        self._record(plan, run)
        if not run.ok:
            raise self._fail(run, "destroy")
        removed = tuple(Change(KIND, n, Action.delete, run.hosts[n].changed, node=n) for n in names
                        if run.hosts[n].changed)
        home = ws.settings.home
        kept = () if prune_volumes else tuple(f"{n}:{home}" for n in names
                                              if ((run.result(n, PROBE_TASK) or {}).get("user") or {}).get("exists"))
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.finished_at = "destroyed", format_time(now())
        state.nodes = {} if prune_volumes else {k: NodeRecord(volume=f"{v.resource_id}:{home}")
                                                for k, v in state.nodes.items()}
        store.save(state)
        return DestroyResult(removed, kept)


register("ansible", AnsibleProvider)
