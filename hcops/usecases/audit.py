"""Use cases of the audit: one sweep, the continuous watch, and verification of the audit log."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.audit import attestations as attesting
from hcops.audit import chainscan
from hcops.audit.anchor import AnchorCheck, verify_anchored
from hcops.audit.chain import Verification
from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.log import AuditLog, default_path
from hcops.audit.metrics import AuditMetrics, MetricsServer
from hcops.audit.phi import Detectors
from hcops.audit.sweep import Auditor, AuditSettings, Event, Sweep
from hcops.audit.watch import WatchResult, watch
from hcops.errors import HcopsError, InvalidInput
from hcops.plan.desired import NetworkPlan
from hcops.policy import formats
from hcops.policy.engines import make_engine
from hcops.policy.waivers import load_waivers
from hcops.providers.base import Provider
from hcops.providers.rpc import RpcUnavailable
from hcops.settings import Settings, resolve
from hcops.usecases.deploy import load_plan, provider_for

SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class AuditOptions:
    environment: str | None = None
    state_dir: Path | None = None
    audit_db: Path | None = None
    fail_on: str = "high"
    waivers: Path | None = None
    opa_url: str | None = None
    engine: str = "auto"  # hcops.policy.engines.ENGINES
    attestations: Path | None = None  # default: attestations.yaml next to the spec, when present
    mrn_pattern: str | None = None  # medical record number format for the transaction scan
    settings: Settings | None = None  # the CLI's; None: the environment's
    # One member's audit (``--org``): its own nodes, read with its own state folder; the chain-level facts
    # (validator set, commits) are the consortium's, as its nodes see them.
    organization: str | None = None


def log_path(plan: NetworkPlan, options: AuditOptions) -> Path:
    return options.audit_db or default_path(plan.name, options.state_dir, plan.settings)


def make_auditor(spec_file: Path, options: AuditOptions, *, provider: Provider | None = None) -> Auditor:
    if options.fail_on not in SEVERITIES:
        raise InvalidInput(f"--fail-on must be one of {', '.join(SEVERITIES)}")
    plan = load_plan(spec_file, options.environment, options.state_dir, settings=resolve(options.settings),
                     organization=options.organization)
    spec_audit = plan.consortium.spec.audit
    sweep_settings = AuditSettings(
        environment=options.environment,
        fail_on=options.fail_on,
        waivers=tuple(load_waivers(options.waivers)) if options.waivers else (),
        anchor=spec_audit.anchor_to_chain,
        retention_days=spec_audit.retention_days,
        attestations=attesting.load(options.attestations or attesting.default_path(spec_file)),
        detectors=detectors(options.mrn_pattern),
    )
    return Auditor(
        plan=plan,
        provider=provider_for(plan, provider),
        log=AuditLog(log_path(plan, options)),
        engine=make_engine(options.opa_url, engine=options.engine, settings=plan.settings),
        pack=load_runtime_pack(settings=plan.settings),
        locate=plan.loaded.locate,
        settings=sweep_settings,
    )


def detectors(mrn_pattern: str | None) -> Detectors:
    try:
        return Detectors.with_mrn(mrn_pattern)
    except re.error as exc:
        raise InvalidInput(f"--mrn-pattern is not a valid regular expression: {exc}") from None


def audit_once(
    spec_file: Path, options: AuditOptions, *, provider: Provider | None = None, emit: Event | None = None
) -> Sweep:
    auditor = make_auditor(spec_file, options, provider=provider)
    try:
        return auditor.run(emit)
    finally:
        auditor.log.close()
        auditor.engine.close()


def audit_watch(
    spec_file: Path,
    options: AuditOptions,
    *,
    interval: float | None,
    serve: str | None,
    max_sweeps: int | None,
    emit: Event,
    on_sweep: Callable[[Sweep], None],
    on_error: Callable[[HcopsError], None],
    on_serving: Callable[[str], None] | None = None,
    provider: Provider | None = None,
    stop: threading.Event | None = None,
) -> WatchResult:
    auditor = make_auditor(spec_file, options, provider=provider)
    every = interval if interval is not None else auditor.plan.consortium.spec.audit.interval.total_seconds()
    if every <= 0:
        raise InvalidInput("--interval must be positive")
    metrics = AuditMetrics()

    try:
        with contextlib.ExitStack() as stack:
            if serve is not None:
                server = stack.enter_context(MetricsServer(metrics, serve, stale_after=3 * every))
                if on_serving:
                    on_serving(server.address)
            return watch(
                auditor,
                every,
                emit=emit,
                on_sweep=on_sweep,
                on_error=on_error,
                max_sweeps=max_sweeps,
                stop=stop,
                on_recorded=metrics.observe,  # scraped after audit_finished: the sweep must be in already
            )
    finally:
        auditor.log.close()
        auditor.engine.close()


# ---------------------------------------------------------------------------------------- output
def sweep_json(sweep: Sweep, network: str) -> dict[str, Any]:
    """``hcops check``'s JSON shape plus the sweep, the nodes' facts summary and incident changes."""
    doc: dict[str, Any] = json.loads(formats.to_json(sweep.report))
    seq, head = sweep.head
    doc.update(
        network=network,
        sweep={
            "id": sweep.id,
            "started": sweep.started.isoformat(),
            "finished": sweep.finished.isoformat(),
            "seconds": round(sweep.seconds, 3),
            "seq": sweep.records[0].seq,
            "head": {"seq": seq, "hash": head},
        },
        nodes=sweep.nodes(),
        incidents={
            "opened": [i.to_dict() for i in sweep.changes.opened],
            "cleared": [i.to_dict() for i in sweep.changes.cleared],
            "open": len(sweep.changes.opened) + len(sweep.changes.persisting),
        },
        anchor=sweep.anchor,
        phi={k: v for k, v in sweep.facts["phi"].items() if k != "hits"},
        evidence=dict(sweep.evidence_records),
        controls=[{"id": cid, "evidence": cls} for cid, cls in sweep.classes.items()],
    )
    return doc


# ---------------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class VerifyOutcome:
    path: Path
    verification: Verification
    anchors: AnchorCheck | None = None

    @property
    def ok(self) -> bool:
        return self.verification.ok and (self.anchors is None or self.anchors.ok)


def verify(spec_file: Path | None, options: AuditOptions, *, anchored: bool = False) -> VerifyOutcome:
    settings = resolve(options.settings)
    plan = load_plan(spec_file, options.environment, options.state_dir, settings=settings) if spec_file else None
    if plan is None and options.audit_db is None:
        raise InvalidInput("name the audit log: -f SPEC (its network's log) or --audit-db PATH")
    if anchored and plan is None:
        raise InvalidInput("--anchored needs -f SPEC (to reach the network's nodes)")
    path = options.audit_db or log_path(plan, options)  # type: ignore[arg-type]
    with AuditLog(path, create=False) as log:
        result = log.verify()
        anchors = None
        if anchored and plan is not None:
            # Reached as the sweeps reach them: HTTPS verified against the network CA when TLS is on, the
            # API server's pod proxy on Kubernetes, SSH tunnels to hosts.
            prov = provider_for(plan)
            obs = prov.observe(plan)
            rpcs = [(node.name, rpc) for node, rpc in chainscan.clients(prov, plan, obs, len(obs.nodes))]
            try:
                anchors = verify_anchored(log, plan.name, rpcs)
            except RpcUnavailable as exc:
                anchors = AnchorCheck(checked=0, problems=(f"cannot check anchors: {exc}",), node="")
    return VerifyOutcome(path, result, anchors)
