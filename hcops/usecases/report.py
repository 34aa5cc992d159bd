"""Use case: the compliance report of a network from its spec, the gate and the audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from hcops.audit import attestations as attesting
from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.log import AuditLog
from hcops.audit.render import render
from hcops.audit.report import GateEvidence, build_report
from hcops.clock import now_text
from hcops.errors import HcopsError
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines import make_engine
from hcops.policy.gate import list_rules, run_gate
from hcops.policy.metadata import RuleMeta
from hcops.policy.sources import builtin_policy_dir
from hcops.policy.waivers import WAIVER_RULES, Waiver, load_waivers
from hcops.settings import Settings, resolve
from hcops.usecases.audit import AuditOptions, log_path
from hcops.usecases.deploy import load_plan


@dataclass(frozen=True)
class ReportResult:
    path: Path
    summary: str


def gate_evidence(
    plan: NetworkPlan, environment: str | None, waivers: Path | None, log: AuditLog | None
) -> tuple[GateEvidence, list[RuleMeta]]:
    """Evaluate the gate now; when that is impossible, fall back to the last gate run in the log."""
    settings = plan.settings
    try:
        rules = [*list_rules(builtin_dir=builtin_policy_dir(settings)), *WAIVER_RULES]  # waiver rules cover RA-1
    except HcopsError:
        rules = list(WAIVER_RULES)
    try:
        from hcops.policy.input import build_input

        report = run_gate(
            build_input(plan),
            policy_dirs=(),
            builtin_dir=builtin_policy_dir(settings),
            data_files=(),
            waivers=waivers,
            engine=make_engine(settings=settings),
            locate=plan.loaded.locate,
            environment=environment,
        )
        return GateEvidence.from_report(report, now_text()), rules
    except (HcopsError, ImportError, NotImplementedError) as exc:
        note = f"the gate could not be evaluated now ({getattr(exc, 'message', exc)})"
    last = log.last("gate_run") if log else None
    if last is not None:
        return GateEvidence.from_record(last.body, last.time, note), rules
    return GateEvidence("unavailable", None, None, note=note), rules


def write_report(
    spec_file: Path,
    environment: str | None,
    state_dir: Path | None,
    *,
    audit_db: Path | None,
    fmt: str,
    out: Path,
    waivers: Path | None = None,
    now: dt.datetime | None = None,
    attestations: Path | None = None,
    settings: Settings | None = None,
) -> ReportResult:
    settings = resolve(settings)
    plan = load_plan(spec_file, environment, state_dir, settings=settings)
    attested = attesting.load(attestations or attesting.default_path(spec_file))
    path = log_path(plan, AuditOptions(environment=environment, state_dir=state_dir, audit_db=audit_db,
                                       settings=settings))
    log = AuditLog(path, create=False) if path.exists() else None
    try:
        gate, gate_rules = gate_evidence(plan, environment, waivers, log)
        waiver_list: list[Waiver] = load_waivers(waivers) if waivers else []
        doc = build_report(
            plan,
            environment=environment,
            log=log,
            gate=gate,
            gate_rules=gate_rules,
            runtime_rules=list(load_runtime_pack(settings=settings).rules.values()),
            waivers=waiver_list,
            attestations=attested,
            now=now,
        )
    finally:
        if log is not None:
            log.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(doc, fmt), encoding="utf-8")
    s, ev = doc["summary"], doc["summary"]["evidence"]
    return ReportResult(
        out,
        f"{s['verdict']}: {s['pass']} pass, {s['declared']} declared only, {s['fail']} fail, {s['warning']} warning, "
        f"{s['waived']} waived, {s['notCovered']} not covered of {s['controls']} controls "
        f"(evidence: {ev['verified']} verified, {ev['attested']} attested, {ev['declared']} declared, "
        f"{ev['none']} none)",
    )
