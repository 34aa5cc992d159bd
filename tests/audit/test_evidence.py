"""Evidence classes: the catalogue's model is consistent with the rule packs, the classes are computed from
evidence records, gate and attestations, and the report, the sweep and the metrics show them."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hcops.audit import attestations as attesting
from hcops.audit import catalogue
from hcops.audit.catalogue import EVIDENCE_CLASSES, Part
from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.evidence import PENDING, PROBES, Basis, classify_part, weakest
from hcops.audit.metrics import AuditMetrics
from hcops.audit.render import render
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.policy.gate import list_rules
from hcops.policy.sources import builtin_policy_dir
from hcops.policy.waivers import WAIVER_RULES
from hcops.spec.loader import load_spec
from tests.audit.conftest import NOW
from tests.audit.test_report import report_doc
from tests.audit.test_sweep import auditor
from tests.conftest import SMALL_SPEC, SpecDir


def _rules() -> tuple[dict[str, str], dict[str, str]]:
    gate = {m.id: m.control for m in [*list_rules(builtin_dir=builtin_policy_dir()), *WAIVER_RULES]}
    runtime = {m.id: m.control for m in load_runtime_pack().rules.values()}
    return gate, runtime


def test_every_pattern_names_rules_of_its_control_and_every_rule_is_modelled() -> None:
    gate, runtime = _rules()
    for c in catalogue.controls():
        assert c.parts, c.id
        for rules, attr in ((gate, "gate_rules"), (runtime, "runtime_rules")):
            mine = {r for r, ctl in rules.items() if ctl == c.id}
            covered: set[str] = set()
            for p in c.parts:
                for pattern in getattr(p, attr):
                    found = p.judges(rules, (pattern,))
                    assert found, f"{c.id}/{p.id}: {pattern} matches no rule"
                    assert set(found) <= mine, f"{c.id}/{p.id}: {pattern} matches rules of other controls"
                    covered |= set(found)
            assert mine <= covered, f"{c.id}: rules in no part: {sorted(mine - covered)}"


def test_every_measure_has_a_probe_or_is_a_documented_hook() -> None:
    for c in catalogue.controls():
        for p in c.parts:
            assert set(p.measures) <= set(PROBES) | set(PENDING), (c.id, p.id)
            assert set(p.production) <= set(EVIDENCE_CLASSES)


HOUR = 3_600_000_000_000


@pytest.mark.parametrize(
    ("backup", "measured", "says"),
    [
        ({}, False, "not enabled"),
        ({"enabled": True, "overdueAfterNs": 48 * HOUR}, False, "no successful backup"),
        ({"enabled": True, "overdueAfterNs": 48 * HOUR, "archives": [{"id": "b1", "verified": True}],
          "lastSuccess": {"id": "b1", "node": "n", "height": 9, "ageNs": HOUR}}, True, "1/1 retained"),
        ({"enabled": True, "overdueAfterNs": 48 * HOUR, "archives": [{"id": "b1", "verified": False}],
          "lastSuccess": {"id": "b1", "node": "n", "height": 9, "ageNs": HOUR}}, False, "(not: b1)"),
        ({"enabled": True, "overdueAfterNs": 48 * HOUR, "archives": [],
          "lastSuccess": {"id": "b1", "node": "n", "height": 9, "ageNs": 49 * HOUR}}, False, "overdue"),
    ],
)
def test_backups_are_measured_from_the_sweeps_backup_facts(backup: dict, measured: bool, says: str) -> None:  # type: ignore[type-arg]
    rec = PROBES["backups"]({"backup": backup})
    assert rec["measured"] is measured and says in rec["detail"]


def test_a_drill_counts_for_ninety_days() -> None:
    limit = 90 * 24 * HOUR
    fresh = {"backup": {"drill": {"maxAgeNs": limit, "lastSuccess": {"ageNs": HOUR, "backupId": "b1"}}}}
    assert PROBES["restoreDrill"](fresh)["measured"] is True
    stale = {"backup": {"drill": {"maxAgeNs": limit, "lastSuccess": {"ageNs": limit + 1, "backupId": "b1"}}}}
    assert PROBES["restoreDrill"](stale)["measured"] is False
    assert PROBES["restoreDrill"]({})["detail"] == "no successful restore drill recorded"


PART = Part("p", "a part", gate_rules=("HC-X-*",), measures=("ports",), attestable=True)
MEASURED = {"ports": {"measured": True, "detail": "5/5"}}


@pytest.mark.parametrize(
    ("part", "basis", "expected"),
    [
        (PART, Basis(MEASURED, True), "verified"),
        (PART, Basis(MEASURED, False), "declared"),  # measured, but the gate never judged that spec
        (PART, Basis({"ports": {"measured": False, "detail": "4/5"}}, True, {"AC-9"}), "attested"),
        (PART, Basis(None, True, (), None, "no sweep"), "declared"),
        (Part("p", "x", measures=("ports",)), Basis(MEASURED, False), "verified"),  # no gate rule to judge it
        (Part("p", "x", attestable=True), Basis(None, True), "none"),
        (Part("p", "x", attestable=True), Basis(None, True, {"AC-9"}), "attested"),
        (Part("p", "x", gate_rules=("HC-X-*",), measures=("backups",)), Basis(MEASURED, True), "declared"),
    ],
)
def test_part_classes(part: Part, basis: Basis, expected: str) -> None:
    assert classify_part(part, basis, "AC-9").evidence == expected


def test_weakest_part_decides() -> None:
    assert weakest(["verified", "declared", "attested"]) == "declared"
    assert weakest(["verified", "none"]) == "none" and weakest([]) == "none"


def _rows(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["id"]: c for c in doc["controls"]}


def test_json_report_carries_id_status_and_evidence(plan: NetworkPlan, tmp_path: Path) -> None:
    doc = json.loads(render(report_doc(plan, tmp_path), "json"))
    for c in doc["controls"]:
        assert {"id", "status", "evidence", "evidenceParts"} <= set(c) and c["evidence"] in EVIDENCE_CLASSES
    ev = doc["summary"]["evidence"]
    assert sum(ev.values()) == doc["summary"]["controls"] and ev["declared"] >= 1 and ev["verified"] >= 1
    rows = _rows(doc)
    backup = next(p for p in rows["CP-1"]["evidenceParts"] if p["part"] == "backup")
    assert backup["evidence"] == "declared" and any("backup" in d for d in backup["detail"])
    # No restore drill yet: CP-1's testing part has nothing for it, so the control is not covered.
    drill = next(p for p in rows["CP-1"]["evidenceParts"] if p["part"] == "testing")
    assert drill["evidence"] == "none" and any("no successful restore drill" in d for d in drill["detail"])
    assert rows["CP-1"]["evidence"] == "none" and rows["CP-1"]["status"] == "not-covered"
    assert rows["PHI-1"]["evidence"] == "verified" and rows["PHI-1"]["status"] == "pass"


def test_measured_encryption_verifies_ac5(plan: NetworkPlan, tmp_path: Path) -> None:
    rows = _rows(report_doc(plan, tmp_path, encrypted=True))
    assert (rows["AC-5"]["status"], rows["AC-5"]["evidence"]) == ("pass", "verified")
    rows = _rows(report_doc(plan, tmp_path / "plain", encrypted=False))
    assert (rows["AC-5"]["status"], rows["AC-5"]["evidence"]) == ("declared", "declared")


def _attestations(tmp_path: Path, entries: str) -> attesting.Attestations:
    path = tmp_path / "attestations.yaml"
    path.write_text("attestations:\n" + textwrap.indent(textwrap.dedent(entries), "  "))
    return attesting.load(path)


AC5_ATTESTED = """\
- control: AC-5
  statement: The hosts' data disks are LUKS volumes; checked on every host.
  attestedBy: "Infrastructure lead, org-a"
  attestedOn: 2026-01-31
  expires: 2027-01-31
  evidence: "Change ticket CHG-1207"
"""


@pytest.fixture
def production_plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    spec_dir.write(SMALL_SPEC.replace("spec:\n", "spec:\n  tier: production\n", 1))
    return build_plan(load_spec(spec_dir.spec, None), tmp_path / "state")


def test_production_needs_measured_or_attested_storage_encryption(production_plan: NetworkPlan,
                                                                  tmp_path: Path) -> None:
    doc = report_doc(production_plan, tmp_path / "declared")
    ac5 = _rows(doc)["AC-5"]
    assert ac5["status"] == "fail" and ac5["productionGaps"] and doc["tier"] == "production"
    assert "HC-RT-AC5-STORAGE-UNVERIFIED" in {f["id"] for f in ac5["findings"]}
    attested = _attestations(tmp_path, AC5_ATTESTED)
    ac5 = _rows(report_doc(production_plan, tmp_path / "attested", attestations=attested))["AC-5"]
    assert (ac5["status"], ac5["evidence"]) == ("pass", "attested") and not ac5["productionGaps"]
    assert ac5["attestations"][0]["attestedBy"] == "Infrastructure lead, org-a"
    ac5 = _rows(report_doc(production_plan, tmp_path / "measured", encrypted=True))["AC-5"]
    assert (ac5["status"], ac5["evidence"]) == ("pass", "verified")


def test_attestations_cover_what_nothing_measures_and_expire(plan: NetworkPlan, tmp_path: Path) -> None:
    atts = _attestations(tmp_path, """\
        - control: AC-4
          statement: Operator sessions and API tokens expire after 15 minutes of inactivity.
          attestedBy: "Infrastructure lead, org-a"
          attestedOn: 2026-01-31
          expires: 2027-01-31
        - control: AC-3
          statement: The break-glass procedure is documented and was exercised.
          attestedBy: "Security officer, org-a"
          attestedOn: 2025-01-31
          expires: 2026-01-31
        """)
    doc = report_doc(plan, tmp_path, attestations=atts, gate_findings=())
    rows = _rows(doc)
    assert (rows["AC-4"]["status"], rows["AC-4"]["evidence"]) == ("pass", "attested")
    ac3 = rows["AC-3"]
    assert ac3["evidence"] == "declared" and ac3["status"] == "warning"  # medium: below --fail-on high
    expired = [f for f in ac3["findings"] if f["id"] == "HC-RT-ATTESTATION-EXPIRED"]
    assert len(expired) == 1 and "expired on 2026-01-31" in expired[0]["message"]
    assert expired[0]["location"]["file"].endswith("attestations.yaml") and expired[0]["location"]["line"] == 7
    assert [a["status"] for a in doc["attestations"]["entries"]] == ["active", "expired"]
    assert "| AC-4 |" in render(doc, "md") and "Security officer, org-a" in render(doc, "html")


def test_a_stale_sweep_verifies_nothing(plan: NetworkPlan, tmp_path: Path) -> None:
    doc = report_doc(plan, tmp_path, now=NOW + dt.timedelta(hours=3))
    assert doc["summary"]["evidence"]["verified"] == 0
    assert "older than" in doc["evidenceBasis"]["note"] and not doc["evidenceBasis"]["sweepUsed"]
    assert _rows(doc)["AC-1"]["status"] == "declared"


def test_identifier_on_chain_fails_phi1_and_no_format_shows_the_value(plan: NetworkPlan, tmp_path: Path) -> None:
    doc = report_doc(plan, tmp_path, txs={105: [b"patient=123-45-6789"]})
    phi1 = _rows(doc)["PHI-1"]
    assert phi1["status"] == "fail" and "at height 105" in phi1["findings"][0]["message"]
    for fmt in ("json", "md", "html"):
        assert "123-45-6789" not in render(doc, fmt)


def test_metrics_export_one_evidence_class_per_control(plan: NetworkPlan, tmp_path: Path) -> None:
    a, _ = auditor(plan, tmp_path, [NOW])
    m = AuditMetrics()
    m.observe(a.run())
    fam = {f.name: f for f in text_string_to_metric_families(m.text().decode())}["hcops_control_evidence"]
    current = {s.labels["control"]: s.labels["evidence"] for s in fam.samples if s.value == 1}
    assert set(current) == set(catalogue.ids()) and len(fam.samples) == 4 * len(current)
    assert current["AC-4"] == "none" and current["AC-5"] == "declared"
    # no gate run of this spec in the log: parts judged by gate rules cannot be verified by the sweep alone
    assert current["AC-1"] == "declared" and current["AZ-1"] == "declared"


def test_a_recorded_gate_run_of_the_same_spec_lets_the_sweep_verify(plan: NetworkPlan, tmp_path: Path) -> None:
    from hcops.audit.log import record_gate_run

    a, _ = auditor(plan, tmp_path, [NOW])
    record_gate_run(a.log.path, network=plan.name, passed=True, summary={}, spec_hash="another-spec")
    assert a.run().classes["AC-1"] == "declared"
    record_gate_run(a.log.path, network=plan.name, passed=True, summary={}, spec_hash=plan.spec_hash())
    record_gate_run(a.log.path, network=plan.name, passed=True, summary={}, spec_hash="a-staging-spec")
    sweep = a.run()
    assert sweep.classes["AC-1"] == "verified" and sweep.classes["AC-5"] == "declared"
    body = a.log.last("sweep").body  # type: ignore[union-attr]
    assert body["evidenceClasses"] == dict(sweep.classes) and body["evidence"]["ports"]["measured"] is True
