"""The compliance report as data: one row per catalogue control with the gate and runtime rules that
cover it (from their METADATA ``custom.control``), its evidence class (``hcops.audit.evidence``: verified,
attested, declared, none) part by part, its status, open findings, waivers and attestations; findings over
time; a per-organization breakdown. Rendered to JSON, Markdown and HTML elsewhere.

A control passes only on verified or attested evidence: one that only the spec speaks for is
``declared``, one that nothing speaks for ``not-covered``, whatever the gate says about the spec."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcops.audit import catalogue
from hcops.audit.attestations import ATTESTATION_EXPIRED, Attestations
from hcops.audit.chain import Verification
from hcops.audit.evaluate import SEVERITY_RANK
from hcops.audit.evidence import EVIDENCE_CLASSES, Basis, classify, production_gaps
from hcops.audit.log import AuditLog
from hcops.clock import format_time, parse_time
from hcops.clock import now as clock_now
from hcops.plan.desired import NetworkPlan
from hcops.policy.gate import GateReport
from hcops.policy.metadata import RuleMeta
from hcops.policy.waivers import Waiver

HISTORY_DAYS = 30
RECENT_SWEEPS = 15
STATUS_ORDER = ("fail", "warning", "waived", "pass", "declared", "not-covered")
FRESH_AFTER = dt.timedelta(hours=1)  # a sweep's records count while younger than this or 2 audit intervals


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


def _status(open_findings: Sequence[Mapping[str, Any]], waived: int, fail_on: str, evidence: str,
            gaps: Sequence[str]) -> str:
    """Findings first (fail, warning, waived); then the evidence: only verified or attested passes."""
    if any(failing(f, fail_on) for f in open_findings) or gaps:
        return "fail"
    if open_findings:
        return "warning"
    if waived:
        return "waived"
    if evidence in ("verified", "attested"):
        return "pass"
    return "declared" if evidence == "declared" else "not-covered"


def _control_rows(
    gate_rules: Sequence[RuleMeta],
    runtime_rules: Sequence[RuleMeta],
    findings: Sequence[Mapping[str, Any]],
    waived: Sequence[Mapping[str, Any]],
    last_sweep: Mapping[str, Any] | None,
    gate: GateEvidence,
    fail_on: str,
    basis: Basis,
    attestations: Attestations,
    today: dt.date,
) -> list[dict[str, Any]]:
    rows = []
    gate_ids = [m.id for m in gate_rules]
    runtime_ids = [m.id for m in runtime_rules]
    for c in catalogue.controls():
        g = [_rule(m) for m in gate_rules if m.control == c.id]
        r = [_rule(m) for m in runtime_rules if m.control == c.id]
        open_f = [f for f in findings if f.get("control") == c.id]
        waived_f = [w for w in waived if w.get("control") == c.id]
        sources = []
        if g:
            sources.append(
                f"gate {gate.source}"
                + (f" {when(gate.time)}" if gate.time else "")
                + f": {sum(1 for f in open_f if f['source'] == 'gate')} open finding(s)"
            )
        if r:
            if last_sweep:
                sources.append(
                    f"sweep {last_sweep['id']} at {when(last_sweep['finished'])}: "
                    f"{sum(1 for f in open_f if f['source'] == 'runtime')} open finding(s)"
                )
            else:
                sources.append("no audit sweep recorded yet")
        evidence, parts = classify(c, basis, gate_ids, runtime_ids)
        gaps = production_gaps(parts, basis.tier)
        rows.append(
            {
                "id": c.id,
                "citation": c.citation_label,
                "title": c.title,
                "gateCheck": c.gate,
                "runtimeCheck": c.runtime,
                "gateRules": g,
                "runtimeRules": r,
                "status": _status(open_f, len(waived_f), fail_on, evidence, gaps),
                "evidence": evidence,
                "evidenceParts": [p.to_dict() for p in parts],
                "productionGaps": gaps,
                "attestations": [a.to_dict(today) for a in attestations.of(c.id)],
                "findings": open_f,
                "waived": waived_f,
                "sources": sources,
            }
        )
    return rows


def _basis(plan: NetworkPlan, sweep: Mapping[str, Any] | None, gate: GateEvidence, attested: frozenset[str],
           now: dt.datetime) -> Basis:
    """The last sweep's evidence records count when that sweep audited this very spec and is recent."""
    tier = plan.loaded.tier.value if plan.loaded.tier else None
    judged = gate.source != "unavailable"
    if not sweep:
        return Basis(None, judged, attested, tier, "no audit sweep recorded")
    if sweep.get("specHash") != plan.spec_hash():
        return Basis(None, judged, attested, tier, f"sweep {sweep.get('id')} audited another revision of the spec")
    if "evidence" not in sweep:
        return Basis(None, judged, attested, tier, f"sweep {sweep.get('id')} recorded no evidence records")
    fresh = max(FRESH_AFTER, 2 * plan.consortium.spec.audit.interval)
    finished = sweep.get("finished")
    if finished and now - (parse_time(finished) or dt.datetime.fromtimestamp(0, dt.UTC)) > fresh:
        return Basis(None, judged, attested, tier,
                     f"sweep {sweep.get('id')} is older than {int(fresh.total_seconds())}s (run `hcops audit`)")
    return Basis(dict(sweep["evidence"]), judged, attested, tier)


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
    attestations: Attestations | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    now = now or clock_now()
    today = now.astimezone(dt.UTC).date()
    attestations = attestations or Attestations(None)
    verification = log.verify() if log else None
    last = log.last("sweep") if log else None
    sweep = last.body if last else None
    # expired attestations are judged on the report's date and file (the sweep's copies may be stale)
    runtime_open = _with_source(
        [f for f in (sweep.get("findings", []) if sweep else []) if f.get("id") != ATTESTATION_EXPIRED]
        + [{**f.to_dict(), "title": f.title} for f in attestations.findings(today)], "runtime")
    findings = _with_source(gate.findings, "gate") + runtime_open
    waived = _with_source(gate.waived, "gate") + _with_source(sweep.get("waived", []) if sweep else [], "runtime")
    fail_on = str(sweep.get("failOn") or "high") if sweep else "high"
    basis = _basis(plan, sweep, gate, attestations.active(today), now)
    controls = _control_rows(gate_rules, runtime_rules, findings, waived, sweep, gate, fail_on, basis,
                             attestations, today)
    counts = {s: sum(1 for c in controls if c["status"] == s) for s in STATUS_ORDER}
    classes = {e: sum(1 for c in controls if c["evidence"] == e) for e in EVIDENCE_CLASSES}
    nodes = list(sweep.get("nodes", [])) if sweep else []
    incidents = _incidents(log)
    gate_runs = [r for r in (log.records(newest_first=True, limit=2000) if log else []) if r.kind.startswith("gate")]
    return {
        "apiVersion": "hcops/v1alpha1",
        "kind": "ComplianceReport",
        "generated": format_time(now),
        "network": plan.name,
        "environment": environment,
        "chainId": plan.consortium.spec.chain.chain_id,
        "specHash": plan.spec_hash(),
        "tier": plan.loaded.tier.value if plan.loaded.tier else None,
        "summary": {
            "controls": len(controls),
            "fail": counts["fail"],
            "warning": counts["warning"],
            "waived": counts["waived"],
            "pass": counts["pass"],
            "declared": counts["declared"],
            "notCovered": counts["not-covered"],
            "evidence": classes,
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
            "phi": sweep.get("phi"),
        }
        if sweep
        else None,
        "log": _log_evidence(log, verification),
        "anchoring": plan.consortium.spec.audit.anchor_to_chain,
        "controls": controls,
        "findings": findings,
        "waivers": [_waiver(w, now.date()) for w in waivers],
        "attestations": {
            "file": str(attestations.path) if attestations.path else None,
            "entries": [a.to_dict(today) for a in attestations.entries],
        },
        "evidenceBasis": {"sweepUsed": basis.records is not None, "note": basis.sweep_note,
                          "gateJudged": basis.gate_judged},
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
