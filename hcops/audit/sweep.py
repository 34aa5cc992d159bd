"""One audit sweep: observe through the provider, build the fact document, evaluate the runtime pack,
track incidents and record everything in the audit log in one transaction (then anchor and prune)."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hcops.audit import anchor as anchoring
from hcops.audit import chainscan, evidence
from hcops.audit.attestations import Attestations
from hcops.audit.chain import GENESIS, Break, Record, verify_segment
from hcops.audit.evaluate import Locate, RuntimePack, evaluate, with_findings
from hcops.audit.facts import Previous, build_facts, nodes_summary, summary
from hcops.audit.incidents import Changes, Tracker
from hcops.audit.log import AuditLog
from hcops.audit.phi import Detectors
from hcops.backup.evidence import backup_facts
from hcops.clock import Clock, now_text, stamp
from hcops.clock import now as clock_now
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines.base import Engine
from hcops.policy.findings import Finding
from hcops.policy.gate import GateReport
from hcops.policy.waivers import Waiver
from hcops.providers.base import NodeStatus, Observation, Provider
from hcops.providers.rpc import RpcClient, RpcUnavailable

Event = Callable[[Mapping[str, Any]], None]
ChainReader = Callable[[Observation], Sequence[tuple[NodeStatus, RpcClient]]]
VERIFY_WINDOW = 2000  # older records re-verified before each sweep


def new_sweep_id(now: dt.datetime) -> str:
    return stamp(now) + "-" + secrets.token_hex(2)


def finding_json(f: Finding) -> dict[str, Any]:
    return {**f.to_dict(), "title": f.title}


@dataclass(frozen=True)
class AuditSettings:
    environment: str | None = None
    fail_on: str = "high"
    waivers: tuple[Waiver, ...] = ()
    anchor: bool = False
    retention_days: int | None = None
    attestations: Attestations = Attestations(None)
    detectors: Detectors = Detectors()  # identifier detectors of the transaction scan (--mrn-pattern)


@dataclass(frozen=True)
class Sweep:
    id: str
    started: dt.datetime
    finished: dt.datetime
    seconds: float
    facts: dict[str, Any]
    report: GateReport
    changes: Changes
    records: tuple[Record, ...]
    anchor: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    phases: Mapping[str, float] = field(default_factory=dict)  # seconds: observe, phi, evaluate, record
    evidence_records: Mapping[str, evidence.Record] = field(default_factory=dict)  # see hcops.audit.evidence
    classes: Mapping[str, str] = field(default_factory=dict)  # control id -> evidence class

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def head(self) -> tuple[int, str]:
        r = self.records[-1]
        return r.seq, r.hash

    def nodes(self) -> list[dict[str, Any]]:
        return nodes_summary(self.facts)


@dataclass
class Auditor:
    """Runs sweeps of one network; keeps the open incidents and the verified head of the log."""

    plan: NetworkPlan
    provider: Provider
    log: AuditLog
    engine: Engine
    pack: RuntimePack
    locate: Locate
    settings: AuditSettings = field(default_factory=AuditSettings)
    clock: Clock = clock_now
    chain_reader: ChainReader | None = None  # RPC clients to read blocks from; default: the best nodes
    tracker: Tracker = field(init=False)
    _verified: tuple[int, str] | None = field(init=False, default=None)
    _log_break: str | None = field(init=False, default=None)
    _cursor: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.tracker = Tracker.from_records(self.log.records("incident"), self.log.last("sweep"))

    # ------------------------------------------------------------------ log integrity
    def check_log(self) -> str | None:
        """The first break of the audit log: verified in full once, then, before each sweep, the records
        appended since plus a window of older ones that cycles through the whole log (so that a long log
        costs a bounded time per sweep and an edit anywhere is still found within a cycle)."""
        if self._log_break is None:
            breaks = self._check_log()
            self._log_break = str(breaks[0]) if breaks else None
        return self._log_break

    def _check_log(self) -> list[Break]:
        if self._verified is not None:
            seq, digest = self._verified
            rec = self.log.record(seq) if seq else None
            if seq == 0 or (rec is not None and rec.hash == digest):
                breaks = verify_segment(self.log.records(since_seq=seq), seq, digest if seq else GENESIS)
                breaks += self._check_window()
                if not breaks:
                    self._verified = self.log.head()
                return breaks
        v = self.log.verify()
        self._verified = (v.head_seq, v.head_hash)
        return list(v.breaks)

    def _check_window(self) -> list[Break]:
        window = self.log.records(since_seq=self._cursor - 1, limit=VERIFY_WINDOW)
        if len(window) < 2:
            self._cursor = 0
            return (
                []
                if not window or window[0].computed_hash() == window[0].hash
                else [Break(window[0].seq, "content does not match its hash (the record was edited)")]
            )
        first = window[0]
        breaks = (
            []
            if first.computed_hash() == first.hash
            else [Break(first.seq, "content does not match its hash (the record was edited)")]
        )
        breaks += verify_segment(window[1:], first.seq, first.hash)
        self._cursor = window[-1].seq  # windows overlap by one record, so every link is checked
        return breaks

    # ------------------------------------------------------------------ sweep
    def run(self, emit: Event | None = None, recorded: Callable[[Sweep], None] | None = None) -> Sweep:
        """One sweep. ``recorded`` sees the sweep before ``audit_finished`` is emitted, so that whoever acts
        on that event (a scrape of the watch's metrics) finds the sweep's effects already there."""
        emit = emit or (lambda _e: None)
        started = self.clock()
        sweep_id = new_sweep_id(started)
        t0 = time.perf_counter()
        emit(
            {
                "event": "audit_started",
                "audit_id": sweep_id,
                "network": self.plan.name,
                "time": now_text(started),
            }
        )
        log_break = self.check_log()
        obs = self.provider.observe(self.plan)
        t_observed = time.perf_counter()
        last = self.log.last("sweep")
        previous = Previous.from_summary(last.body if last else None)
        scan = self._scan(obs, previous)
        t_scanned = time.perf_counter()
        today = started.astimezone(dt.UTC).date()
        attested = self.settings.attestations
        facts = build_facts(
            self.plan,
            obs,
            sweep_id=sweep_id,
            now=started,  # block ages are measured from when observation began
            environment=self.settings.environment,
            previous=previous,
            audit_log={"intact": log_break is None, "break": log_break},
            extra={"phi": scan.facts(), "attestations": attested.facts(today),
                   "backup": backup_facts(self.plan, self.log, started)},
        )
        report = evaluate(
            facts,
            self.pack,
            self.engine,
            locate=self.locate,
            waivers=self.settings.waivers,
            environment=self.settings.environment,
            fail_on=self.settings.fail_on,
        )
        report = with_findings(report, attested.findings(today), self.settings.fail_on)
        records_now = evidence.records(facts)
        basis = evidence.Basis(records_now, self._gate_judged(), attested.active(today), facts["tier"])
        classes = evidence.control_classes(basis)
        findings = [finding_json(f) for f in report.findings]
        finished = self.clock()
        t_evaluated = time.perf_counter()
        seconds = t_evaluated - t0
        tracker, changes = self.tracker.preview(findings, sweep_id=sweep_id, time=now_text(finished))
        body = self._body(sweep_id, started, finished, seconds, facts, report, findings, tracker)
        body.update(phiCursor=scan.cursor.to_record() if scan.cursor else None,
                    phi={k: v for k, v in facts["phi"].items() if k != "hits"},
                    evidence=records_now, evidenceClasses=classes)
        records = tuple(self.log.append_many([("sweep", body), *changes.events()], now=finished))
        self.tracker = tracker  # only once the sweep is recorded
        phases = {
            "observe": t_observed - t0,
            "phi": t_scanned - t_observed,
            "evaluate": t_evaluated - t_scanned,
            "record": time.perf_counter() - t_evaluated,
        }
        for f in findings:
            emit({"event": "violation_audited", "audit_id": sweep_id, **f})
        warnings: list[str] = []
        anchor = self._anchor(obs, records[-1], warnings) if self.settings.anchor else None
        if self.settings.retention_days:
            self.log.prune(self.settings.retention_days)
        if self._verified is not None and not log_break:
            self._verified = self.log.head()
        sweep = Sweep(
            sweep_id,
            started,
            finished,
            seconds,
            facts,
            report,
            changes,
            records,
            anchor,
            tuple(warnings),
            phases,
            records_now,
            classes,
        )
        if recorded is not None:
            recorded(sweep)
        emit(
            {
                "event": "audit_finished",
                "audit_id": sweep_id,
                "passed": report.passed,
                "findings": len(findings),
                "seconds": round(seconds, 3),
                "head": records[-1].hash,
            }
        )
        return sweep

    def _scan(self, obs: Observation, previous: Previous | None) -> chainscan.Scan:
        """Read the transactions committed since the previous sweep (hcops.audit.chainscan)."""
        policy = self.plan.consortium.spec.data.phi_on_chain
        cursor = chainscan.Cursor.from_record(previous.phi_cursor if previous else None)
        reader = self.chain_reader or (lambda o: chainscan.clients(self.provider, self.plan, o))
        return chainscan.scan_observed(obs, reader(obs), cursor=cursor, policy=policy,
                                       detectors=self.settings.detectors)

    def _gate_judged(self) -> bool:
        """Whether the gate judged the spec this sweep audits: one of the recent gate runs (check or apply) in
        the log was of its hash. The report, which evaluates the gate itself, decides this on its own."""
        spec = self.plan.spec_hash()
        return any(r.body.get("specHash") == spec for r in self.log.records("gate_run", newest_first=True, limit=50))

    def _body(
        self,
        sweep_id: str,
        started: dt.datetime,
        finished: dt.datetime,
        seconds: float,
        facts: dict[str, Any],
        report: GateReport,
        findings: Sequence[Mapping[str, Any]],
        tracker: Tracker,
    ) -> dict[str, Any]:
        by_sev: dict[str, int] = {}
        for f in report.findings:
            by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
        return {
            **summary(facts),
            "network": self.plan.name,
            "environment": self.settings.environment,
            "specHash": self.plan.spec_hash(),
            "started": now_text(started),
            "finished": now_text(finished),
            "durationSeconds": round(seconds, 4),
            "passed": report.passed,
            "failOn": self.settings.fail_on,
            "engine": report.engine,
            **({"pack": report.pack.to_dict()} if report.pack else {}),
            "summary": {**report.summary.to_dict(), "bySeverity": by_sev},
            "findings": list(findings),
            "waived": [w.to_dict() for w in report.waived],
            "nodes": nodes_summary(facts),
            "openIncidents": len(tracker.open),
            "chainDetail": {
                k: facts["chain"][k]
                for k in ("height", "latestBlockAgeNs", "heightAdvanced", "validatorSetFrom")
            },
            "undeclared": [
                {"kind": u["kind"], "name": u["name"], "state": u["state"]} for u in facts["undeclared"]
            ],
        }

    def _anchor(self, obs: Observation, head: Record, warnings: list[str]) -> dict[str, Any]:
        key = anchoring.anchor_key(self.plan.name, head.seq)
        body: dict[str, Any] = {"seq": head.seq, "hash": head.hash, "key": key, "ok": False}
        errors = []
        # The same clients the chain scan reads with: HTTPS verified against the network CA when TLS is on,
        # the API server's pod proxy on Kubernetes.
        reader = self.chain_reader or (lambda o: chainscan.clients(self.provider, self.plan, o, len(o.nodes)))
        for n, rpc in reader(obs):
            try:
                body.update(anchoring.broadcast(rpc, key, head.hash), ok=True, node=n.name)
                break
            except RpcUnavailable as exc:
                errors.append(f"{n.name}: {exc}")
        if not body["ok"]:
            body["error"] = "; ".join(errors) or "no node answered over RPC"
            warnings.append(f"could not anchor the audit head on chain: {body['error']}")
        self.log.append("anchor", body)
        return body
