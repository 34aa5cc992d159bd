"""The compliance report as data: one row per catalogue control with the gate and runtime rules that
cover it (from their METADATA ``custom.control``), its status, evidence, open findings and waivers;
findings over time; a per-organization breakdown. Rendered to JSON, Markdown and HTML elsewhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcops.audit import catalogue
from hcops.audit.chain import Verification
from hcops.audit.evaluate import SEVERITY_RANK
from hcops.audit.log import AuditLog
from hcops.plan.desired import NetworkPlan
from hcops.policy.gate import GateReport
from hcops.policy.metadata import RuleMeta
from hcops.policy.waivers import Waiver

HISTORY_DAYS = 30
RECENT_SWEEPS = 15
STATUS_ORDER = ("fail", "warning", "waived", "pass", "not-covered")


@dataclass(frozen=True)
class GateEvidence:
    """The gate's part: evaluated now, or the last run recorded in the log, or nothing."""

    source: str  # "evaluated" | "recorded" | "unavailable"
    time: str | None
    passed: bool | None
    findings: tuple[Mapping[str, Any], ...] = ()
    waived: tuple[Mapping[str, Any], ...] = ()
    engine: str = ""
    note: str = ""

    @classmethod
    def from_report(cls, report: GateReport, time: str) -> GateEvidence:
        return cls(
            "evaluated",
            time,
            report.passed,
            tuple(f.to_dict() for f in report.findings),
            tuple(w.to_dict() for w in report.waived),
            report.engine,
        )

    @classmethod
    def from_record(cls, body: Mapping[str, Any], time: str, note: str) -> GateEvidence:
        return cls(
            "recorded",
            time,
            bool(body.get("passed")),
            tuple(body.get("findings") or ()),
            tuple(body.get("waived") or ()),
            note=note,
        )


def when(text: str | None) -> str:
    """``2026-11-25T19:50:05.969328Z`` -> ``2026-11-25 19:50:05 UTC``."""
    return f"{text[:19].replace('T', ' ')} UTC" if text and len(text) >= 19 else (text or "")


def _rule(m: RuleMeta) -> dict[str, Any]:
    return {"id": m.id, "title": m.title, "severity": m.severity, "level": m.level, "hipaa": list(m.hipaa)}


def _with_source(findings: Iterable[Mapping[str, Any]], source: str) -> list[dict[str, Any]]:
    return [{**f, "source": source} for f in findings]


def _waiver(w: Waiver, today: dt.date) -> dict[str, Any]:
    status = "invalid" if not w.valid else "expired" if w.expired(today) else "active"
    return {
        "id": w.id,
        "resource": w.resource,
        "justification": w.justification,
        "approver": w.approver,
        "expires": w.expires.isoformat() if w.expires else None,
        "environments": list(w.environments),
        "status": status,
    }


def failing(f: Mapping[str, Any], fail_on: str) -> bool:
    """Whether an open finding fails its control: one that fails the gate (a deny) or the audit sweep (a deny
    at or above the sweep's ``--fail-on`` severity). Warn-level findings, and runtime denies below that
    severity, call for attention without failing the control."""
    if f.get("level") != "deny":
        return False
    if f.get("source") == "runtime":
        return SEVERITY_RANK.get(str(f.get("severity")), 0) <= SEVERITY_RANK.get(fail_on, 0)
    return True


def _status(rules: int, open_findings: Sequence[Mapping[str, Any]], waived: int, fail_on: str) -> str:
    if rules == 0:
        return "not-covered"
    if any(failing(f, fail_on) for f in open_findings):
        return "fail"
    if open_findings:
        return "warning"
    return "waived" if waived else "pass"


def _control_rows(
    gate_rules: Sequence[RuleMeta],
    runtime_rules: Sequence[RuleMeta],
    findings: Sequence[Mapping[str, Any]],
    waived: Sequence[Mapping[str, Any]],
    last_sweep: Mapping[str, Any] | None,
    gate: GateEvidence,
    fail_on: str,
) -> list[dict[str, Any]]:
    rows = []
    for c in catalogue.controls():
        g = [_rule(m) for m in gate_rules if m.control == c.id]
        r = [_rule(m) for m in runtime_rules if m.control == c.id]
        open_f = [f for f in findings if f.get("control") == c.id]
        waived_f = [w for w in waived if w.get("control") == c.id]
        evidence = []
        if g:
            evidence.append(
                f"gate {gate.source}"
                + (f" {when(gate.time)}" if gate.time else "")
                + f": {sum(1 for f in open_f if f['source'] == 'gate')} open finding(s)"
            )
        if r:
            if last_sweep:
                evidence.append(
                    f"sweep {last_sweep['id']} at {when(last_sweep['finished'])}: "
                    f"{sum(1 for f in open_f if f['source'] == 'runtime')} open finding(s)"
                )
            else:
                evidence.append("no audit sweep recorded yet")
        rows.append(
            {
                "id": c.id,
                "citation": c.citation_label,
                "title": c.title,
                "gateCheck": c.gate,
                "runtimeCheck": c.runtime,
                "gateRules": g,
                "runtimeRules": r,
                "status": _status(len(g) + len(r), open_f, len(waived_f), fail_on),
                "findings": open_f,
                "waived": waived_f,
                "evidence": evidence,
            }
        )
    return rows


def _organizations(
    plan: NetworkPlan, findings: Sequence[Mapping[str, Any]], nodes: Sequence[Mapping[str, Any]], fail_on: str
) -> list[dict[str, Any]]:
    live = {n["name"]: n for n in nodes}
    out = []
    for org in plan.consortium.spec.organizations:
        names = {n.name for n in org.nodes}
        resources = {f"node/{n}" for n in names} | {f"org/{org.name}"}
        mine = [f for f in findings if f.get("resource") in resources]
        counts = {s: sum(1 for f in mine if f.get("severity") == s) for s in ("high", "medium", "low")}
        out.append(
            {
                "name": org.name,
                "role": org.role.value,
                "coveredEntity": org.covered_entity,
                "baaSigned": bool(org.baa and org.baa.signed),
                "nodes": [
                    {
                        "name": n.name,
                        "role": n.role.value,
                        "up": (live.get(n.name) or {}).get("up"),
                        "height": (live.get(n.name) or {}).get("height"),
                    }
                    for n in org.nodes
                ],
                "findings": counts,
                "openFindings": len(mine),
                "status": "fail"
                if any(failing(f, fail_on) for f in mine)
                else "warning"
                if mine
                else "pass",
            }
        )
    return out


def _log_evidence(log: AuditLog | None, verification: Verification | None) -> dict[str, Any]:
    if log is None or verification is None:
        return {"present": False}
    v = verification
    return {
        "present": True,
        "path": str(log.path),
        "intact": v.ok,
        "records": v.records,
        "head": {"seq": v.head_seq, "hash": v.head_hash},
        "prunedUpto": v.pruned_upto,
        "firstBreak": str(v.first_break) if v.first_break else None,
    }


def build_report(
    plan: NetworkPlan,
    *,
    environment: str | None,
    log: AuditLog | None,
    gate: GateEvidence,
    gate_rules: Sequence[RuleMeta],
    runtime_rules: Sequence[RuleMeta],
    waivers: Sequence[Waiver] = (),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    verification = log.verify() if log else None
    last = log.last("sweep") if log else None
    sweep = last.body if last else None
    runtime_open = _with_source(sweep.get("findings", []) if sweep else [], "runtime")
    findings = _with_source(gate.findings, "gate") + runtime_open
    waived = _with_source(gate.waived, "gate") + _with_source(sweep.get("waived", []) if sweep else [], "runtime")
    fail_on = str(sweep.get("failOn") or "high") if sweep else "high"
    controls = _control_rows(gate_rules, runtime_rules, findings, waived, sweep, gate, fail_on)
    counts = {s: sum(1 for c in controls if c["status"] == s) for s in STATUS_ORDER}
    nodes = list(sweep.get("nodes", [])) if sweep else []
    incidents = _incidents(log)
    gate_runs = [r for r in (log.records(newest_first=True, limit=2000) if log else []) if r.kind.startswith("gate")]
    return {
        "apiVersion": "hcops/v1alpha1",
        "kind": "ComplianceReport",
        "generated": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "network": plan.name,
        "environment": environment,
        "chainId": plan.consortium.spec.chain.chain_id,
        "specHash": plan.spec_hash(),
        "summary": {
            "controls": len(controls),
            "fail": counts["fail"],
            "warning": counts["warning"],
            "waived": counts["waived"],
            "pass": counts["pass"],
            "notCovered": counts["not-covered"],
            "openFindings": len(findings),
            "openIncidents": len(incidents["open"]),
            "verdict": "non-compliant" if counts["fail"] else "compliant",
        },
        "gate": {
            "source": gate.source,
            "time": gate.time,
            "passed": gate.passed,
            "engine": gate.engine,
            "note": gate.note,
        },
        "lastSweep": {
            "id": sweep["id"],
            "finished": sweep.get("finished"),
            "passed": sweep.get("passed"),
            "seconds": sweep.get("durationSeconds"),
            "seq": last.seq if last else None,
            "hash": last.hash if last else None,
            "height": (sweep.get("chain") or {}).get("height"),
            "engine": sweep.get("engine"),
        }
        if sweep
        else None,
        "log": _log_evidence(log, verification),
        "anchoring": plan.consortium.spec.audit.anchor_to_chain,
        "controls": controls,
        "findings": findings,
        "waivers": [_waiver(w, now.date()) for w in waivers],
        "waived": waived,
        "incidents": incidents,
        "history": log.daily(HISTORY_DAYS, now) if log else [],
        "recentSweeps": [
            {
                "id": r.body.get("id"),
                "finished": r.body.get("finished"),
                "passed": r.body.get("passed"),
                "findings": len(r.body.get("findings", [])),
                "seq": r.seq,
            }
            for r in (log.records("sweep", limit=RECENT_SWEEPS, newest_first=True) if log else [])
        ],
        "gateRuns": [
            {
                "kind": r.kind,
                "time": r.time,
                "passed": r.body.get("passed"),
                "command": r.body.get("command"),
                "reason": r.body.get("reason"),
                "seq": r.seq,
            }
            for r in gate_runs[:RECENT_SWEEPS]
        ],
        "organizations": _organizations(plan, findings, nodes, fail_on),
        "nodes": nodes,
    }


def _incidents(log: AuditLog | None) -> dict[str, list[dict[str, Any]]]:
    if log is None:
        return {"open": [], "recent": []}
    from hcops.audit.incidents import Tracker

    tracker = Tracker.from_records(log.records("incident"), log.last("sweep"))
    cleared = [r.body for r in log.records("incident", newest_first=True, limit=50) if r.body.get("event") == "cleared"]
    opened = sorted(tracker.open.values(), key=lambda i: i.first_seen)
    return {
        "open": [{**i.to_dict(), "sweeps": log.sweeps_with(i.rule, i.resource, i.first_seen[:19])} for i in opened],
        "recent": cleared[:RECENT_SWEEPS],
    }
