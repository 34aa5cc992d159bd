from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import HcopsError, InvalidInput, Location
from hcops.policy import EmbeddedEngine, builtin_policy_dir, list_rules, run_gate, run_policy_tests
from hcops.policy.gate import GateReport
from hcops.policy.waivers import WAIVER_UNUSED

from .conftest import FIXTURES, PACK, SELFTEST, UNSUPPORTED, USER, many_nodes

Locate = Callable[[str], Location | None]
TODAY = dt.date(2026, 3, 1)


def gate(doc: dict[str, Any], locate: Locate, **kwargs: Any) -> GateReport:
    args: dict[str, Any] = {
        "policy_dirs": [], "builtin_dir": PACK, "data_files": [], "waivers": None,
        "engine": EmbeddedEngine(), "locate": locate, "environment": "prod", "today": TODAY,
    }
    args.update(kwargs)
    return run_gate(doc, **args)


def test_compliant_input_passes(compliant: dict[str, Any], locate: Locate) -> None:
    report = gate(compliant, locate)
    assert report.passed
    assert report.findings == () and report.waived == ()
    assert report.summary.to_dict() == {"deny": 0, "warn": 0, "waived": 0}
    assert [r.id for r in report.rules] == [
        "HC-FX-POWER-SHARE", "HC-FX-RPC-PUBLIC", "HC-FX-STORAGE-UNENCRYPTED"]
    assert report.engine == "embedded" and report.environment == "prod"
    assert not any("runtime" in f for f in report.policy_files)


def test_deny_fails_and_findings_are_sorted_and_located(violating: dict[str, Any], locate: Locate) -> None:
    report = gate(violating, locate)
    assert not report.passed
    assert report.summary.to_dict() == {"deny": 3, "warn": 1, "waived": 0}
    assert [(f.level, f.id, f.resource) for f in report.findings] == [
        ("deny", "HC-FX-RPC-PUBLIC", "network/fixture-net"),
        ("deny", "HC-FX-STORAGE-UNENCRYPTED", "node/b-val-0"),
        ("deny", "HC-FX-STORAGE-UNENCRYPTED", "node/c-val-0"),
        ("warn", "HC-FX-POWER-SHARE", "node/d-val-0"),
    ]
    rpc, b_node, c_node, power = report.findings
    assert rpc.location == Location("network.yaml", 9, 7)
    assert b_node.location == Location("network.yaml", 20, 9)  # prefix spec.organizations[1].nodes[0]
    assert c_node.location == Location("network.yaml", 5, 1)  # only `spec` locates
    assert power.location == Location("network.yaml", 40, 11)


def test_warn_only_passes_unless_strict(compliant: dict[str, Any], locate: Locate) -> None:
    compliant["nodes"][0]["power"] = 100
    assert gate(compliant, locate).passed
    strict = gate(compliant, locate, strict=True)
    assert not strict.passed and strict.strict and strict.summary.warn == 1


def test_waivers_in_the_gate(violating: dict[str, Any], locate: Locate, tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - {id: HC-FX-STORAGE-UNENCRYPTED, resource: 'node/*', justification: encrypted by the SAN,\n"
        "     approver: ciso@example.org, expires: 2026-12-31}\n"
        "  - {id: HC-FX-RPC-PUBLIC, resource: 'network/other', justification: j, approver: a,\n"
        "     expires: 2026-12-31}\n")
    violating["spec"]["network"]["rpc"]["exposure"] = "internal"
    report = gate(violating, locate, waivers=waivers)
    assert report.passed
    assert report.summary.to_dict() == {"deny": 0, "warn": 2, "waived": 2}
    assert {f.id for f in report.findings} == {"HC-FX-POWER-SHARE", WAIVER_UNUSED}
    assert "HC-RA1-WAIVER-EXPIRED" in {r.id for r in report.rules}


def test_user_policies_and_data_files(violating: dict[str, Any], locate: Locate, tmp_path: Path) -> None:
    data = tmp_path / "limits.yaml"
    data.write_text("acme:\n  max_power: 50\n")
    report = gate(violating, locate, policy_dirs=[USER], data_files=[data])
    cap = [f for f in report.findings if f.id == "ACME-POWER-CAP"]
    assert [(f.resource, f.severity, f.control) for f in cap] == [("node/d-val-0", "high", "unknown")]


def test_conflicting_data_files(compliant: dict[str, Any], locate: Locate, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"acme": {"max_power": 50}}))
    (tmp_path / "b.yaml").write_text("acme:\n  max_power: 60\n")
    with pytest.raises(InvalidInput, match="conflicting policy data"):
        gate(compliant, locate, data_files=[tmp_path / "a.json", tmp_path / "b.yaml"])


def test_gate_fails_closed_on_unsupported_builtin(violating: dict[str, Any], locate: Locate) -> None:
    with pytest.raises(HcopsError):
        gate(violating, locate, policy_dirs=[UNSUPPORTED])


def test_builtin_pack_without_metadata_is_invalid(compliant: dict[str, Any], locate: Locate,
                                                  tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package fixture.bad\n\nimport rego.v1\n\nwarn contains 1\n")
    with pytest.raises(InvalidInput) as err:
        gate(compliant, locate, builtin_dir=tmp_path)
    assert err.value.diagnostics[0].location.line == 5  # type: ignore[union-attr]
    # the same file as a user policy is fine
    assert gate(compliant, locate, policy_dirs=[tmp_path]).summary.warn == 1


def test_list_rules_and_runtime(tmp_path: Path) -> None:
    ids = [r.id for r in list_rules(builtin_dir=PACK)]
    assert ids == ["HC-FX-POWER-SHARE", "HC-FX-RPC-PUBLIC", "HC-FX-STORAGE-UNENCRYPTED"]
    assert "HC-FX-RUNTIME" in [r.id for r in list_rules(builtin_dir=PACK, include_runtime=True)]


def test_builtin_policy_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCOPS_POLICY_DIR", raising=False)
    assert builtin_policy_dir() == Path(__file__).resolve().parents[2] / "policies"
    monkeypatch.setenv("HCOPS_POLICY_DIR", str(FIXTURES))
    assert builtin_policy_dir() == FIXTURES


def test_run_policy_tests_includes_user_dirs() -> None:
    results = run_policy_tests([SELFTEST], builtin_dir=PACK, engine=EmbeddedEngine())
    assert {r.name for r in results} >= {"test_public_rpc_denied", "test_double_wrong"}
    assert {r.status for r in results} == {"pass", "fail", "error", "skip"}


def test_thousand_nodes_find_the_one_unencrypted_node(locate: Locate) -> None:
    # How fast is bench/check.py's business (a table beside conftest), not a timed assertion's.
    doc = many_nodes(1000)
    doc["nodes"][7]["storage"]["encrypted"] = False
    report = gate(doc, locate, engine=EmbeddedEngine())
    assert [f.resource for f in report.findings] == ["node/n-7"]
