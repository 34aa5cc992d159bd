"""Sweeps with a fake provider: findings, incidents across sweeps, the JSON shape, metrics, the watch."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.log import AuditLog
from hcops.audit.metrics import AuditMetrics, MetricsServer
from hcops.audit.sweep import Auditor, AuditSettings
from hcops.audit.watch import watch
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines import EmbeddedEngine
from hcops.providers.base import Observation
from hcops.usecases.audit import sweep_json
from tests.audit import fakes
from tests.audit.conftest import NOW


class ScriptedProvider:
    name: ClassVar[str] = "scripted"

    def __init__(self, plan: NetworkPlan, clock: list[dt.datetime]) -> None:
        self.plan, self.clock = plan, clock
        self.down: set[str] = set()
        self.height = 100
        self.chain = fakes.FakeChain(head=self.height)  # what the sweeps read blocks from
        self.encrypted: bool | None = None  # storage facts: measured encrypted / plain; None: none reported

    def observe(self, plan: NetworkPlan) -> Observation:
        self.height += 10
        self.chain.head = self.height
        obs = fakes.observation(plan, self.clock[0], self.height)
        if self.encrypted is not None:
            obs = Observation(obs.network, obs.nodes, obs.undeclared,
                              {**obs.facts, "storage": fakes.storage_facts(plan, encrypted=self.encrypted)})
        for name in self.down:
            obs = fakes.stopped(obs, name)
        return obs


def auditor(plan: NetworkPlan, tmp_path: Path, clock: list[dt.datetime]) -> tuple[Auditor, ScriptedProvider]:
    prov = ScriptedProvider(plan, clock)
    a = Auditor(
        plan=plan,
        provider=prov,
        log=AuditLog(tmp_path / "audit.db"),
        engine=EmbeddedEngine(),  # type: ignore[arg-type]
        pack=load_runtime_pack(),
        locate=plan.loaded.locate,
        settings=AuditSettings(),
        clock=lambda: clock[0],
        chain_reader=fakes.chain_reader(prov.chain),
    )
    return a, prov


def test_clean_sweep_is_recorded(plan: NetworkPlan, tmp_path: Path) -> None:
    a, _ = auditor(plan, tmp_path, [NOW])
    events: list[str] = []
    sweep = a.run(lambda e: events.append(e["event"]))
    assert sweep.passed and sweep.report.findings == ()
    assert events == ["audit_started", "audit_finished"]
    assert a.log.last("sweep").body["id"] == sweep.id  # type: ignore[union-attr]
    doc = sweep_json(sweep, plan.name)
    assert set(doc) >= {"passed", "summary", "findings", "waived", "nodes", "sweep"}
    assert {n["name"] for n in doc["nodes"]} == {n.name for n in plan.nodes}
    assert "priv_validator_key" not in str(doc["nodes"])


def test_stopped_node_opens_and_clears_one_incident(plan: NetworkPlan, tmp_path: Path) -> None:
    clock = [NOW]
    a, prov = auditor(plan, tmp_path, clock)
    a.run()
    prov.down = {"b-val-0"}
    for i in (1, 2):
        clock[0] = NOW + dt.timedelta(seconds=30 * i)
        s = a.run()
        assert not s.passed
        assert ("HC-RT-CP1-NODE-DOWN", "node/b-val-0") in {(f.id, f.resource) for f in s.report.findings}
    opened = [r for r in a.log.records("incident") if r.body["event"] == "opened"]
    assert [r.body["rule"] for r in opened] == ["HC-RT-CP1-NODE-DOWN"]
    prov.down = set()
    clock[0] = NOW + dt.timedelta(seconds=90)
    s = a.run()
    assert s.passed
    (cleared,) = s.changes.cleared
    assert cleared.id == opened[0].body["incident"]
    assert cleared.first_seen < cleared.last_seen < str(cleared.cleared)
    assert a.log.verify().ok


def test_overdue_sweep_and_tampered_log_are_findings(plan: NetworkPlan, tmp_path: Path) -> None:
    clock = [NOW]
    a, _ = auditor(plan, tmp_path, clock)
    a.run()
    clock[0] = NOW + dt.timedelta(hours=1)
    ids = {f.id for f in a.run().report.findings}
    assert "HC-RT-AR1-SWEEP-OVERDUE" in ids
    import sqlite3

    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("DROP TRIGGER records_no_update")
    db.execute("UPDATE records SET time = 'x' WHERE seq = 1")
    clock[0] += dt.timedelta(seconds=30)
    report = a.run().report
    assert "HC-RT-AU1-LOG-BROKEN" in {f.id for f in report.findings}


def test_metrics_carry_findings_and_heights(plan: NetworkPlan, tmp_path: Path) -> None:
    a, prov = auditor(plan, tmp_path, [NOW])
    prov.down = {"c-val-0"}
    metrics = AuditMetrics()
    metrics.observe(a.run())
    with MetricsServer(metrics, "127.0.0.1:0", stale_after=60) as server:
        text = urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5).read().decode()
        health = urllib.request.urlopen(f"http://{server.address}/healthz", timeout=5).status
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rules = {s.labels["rule"] for s in families["hcops_findings"].samples}
    assert "HC-RT-CP1-NODE-DOWN" in rules
    up = {s.labels["node"]: s.value for s in families["hcops_node_up"].samples}
    assert up["c-val-0"] == 0 and up["a-val-0"] == 1
    assert {"hcops_node_height", "hcops_audit_sweep_seconds", "hcops_audit_last_success_timestamp"} <= set(
        families
    )
    assert health == 200


def test_watch_runs_fixed_number_of_sweeps_and_stops(plan: NetworkPlan, tmp_path: Path) -> None:
    a, _ = auditor(plan, tmp_path, [NOW])
    seen: list[str] = []
    result = watch(
        a,
        0.05,
        emit=lambda e: None,
        on_sweep=lambda s: seen.append(s.id),
        on_error=lambda e: None,
        max_sweeps=3,
    )
    assert result.sweeps == 3 and len(set(seen)) == 3
    stop = threading.Event()
    stop.set()
    assert (
        watch(
            a, 0.05, emit=lambda e: None, on_sweep=lambda s: None, on_error=lambda e: None, stop=stop
        ).sweeps
        == 0
    )


def test_metrics_hold_the_sweep_when_its_audit_finished_event_is_out(plan: NetworkPlan, tmp_path: Path) -> None:
    """A scrape prompted by ``audit_finished`` (the watch's JSON line) sees that sweep, not the one before."""
    a, prov = auditor(plan, tmp_path, [NOW])
    prov.down = {"c-val-0"}
    metrics = AuditMetrics()
    at_finish: list[tuple[float, set[str]]] = []

    def emit(e: Mapping[str, Any]) -> None:
        if e["event"] == "audit_finished":
            families = {f.name: f for f in text_string_to_metric_families(metrics.text().decode())}
            rules = {s.labels["rule"] for s in families["hcops_findings"].samples}
            at_finish.append((families["hcops_audit_sweeps"].samples[0].value, rules))

    result = watch(a, 0.01, emit=emit, on_sweep=lambda s: None, on_error=lambda e: None, max_sweeps=2,
                   on_recorded=metrics.observe)
    assert result.sweeps == 2
    assert [n for n, _ in at_finish] == [1, 2]
    assert all("HC-RT-CP1-NODE-DOWN" in rules for _, rules in at_finish)


def test_bad_listen_address_is_input_error() -> None:
    from hcops.errors import InvalidInput

    with pytest.raises(InvalidInput):
        MetricsServer(AuditMetrics(), "nonsense", stale_after=1)
