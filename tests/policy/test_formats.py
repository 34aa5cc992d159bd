from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from rich.console import Console
from rich.table import Table

from hcops.errors import InvalidInput, Location
from hcops.policy import EmbeddedEngine, run_gate
from hcops.policy.formats import (
    escape_data,
    escape_property,
    findings_table,
    policy_tests_junit,
    policy_tests_table,
    render,
    rules_table,
    to_github,
)
from hcops.policy.gate import GateReport

from .conftest import PACK, SELFTEST, USER

SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
Locate = Callable[[str], Location | None]


@pytest.fixture
def report(violating: dict[str, Any], locate: Locate, tmp_path: Path) -> GateReport:
    """3 deny (one without location), 2 warn (one from a user rule without metadata), 1 waived."""
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - id: HC-FX-STORAGE-UNENCRYPTED\n"
        "    resource: node/b-*\n"
        "    justification: 'SAN-level encryption, see risk register #12'\n"
        "    approver: ciso@example.org\n"
        "    expires: 2026-12-31\n")
    violating["nodes"][0]["name"] = "rogue,node:0"
    violating["nodes"][0]["org"] = "acme"
    violating["nodes"][0]["storage"]["encrypted"] = False
    return run_gate(violating, policy_dirs=[USER], builtin_dir=PACK, data_files=[], waivers=waivers,
                    engine=EmbeddedEngine(), locate=lambda p: None if p == "spec" else locate(p),
                    environment="prod", today=dt.date(2026, 3, 1))


def test_json_shape(report: GateReport) -> None:
    doc = json.loads(render(report, "json"))
    assert list(doc) == ["passed", "summary", "findings", "waived", "engine", "pack"]
    assert doc["pack"]["rulesEvaluated"] == {"hcops.fixture.access": 3} and len(doc["pack"]["digest"]) == 64
    assert doc["passed"] is False
    assert doc["summary"] == {"deny": 3, "warn": 2, "waived": 1}
    keys = ["id", "severity", "level", "control", "hipaa", "resource", "message", "remediation", "location"]
    assert all(list(f) == keys for f in doc["findings"])
    first = doc["findings"][0]
    assert first == {
        "id": "HC-FX-RPC-PUBLIC", "severity": "high", "level": "deny", "control": "AC-1",
        "hipaa": ["164.312(a)(1)"], "resource": "network/fixture-net", "message": "RPC exposure is `public`",
        "remediation": "Set spec.network.rpc.exposure to `internal`.",
        "location": {"file": "network.yaml", "line": 9},
    }
    user = next(f for f in doc["findings"] if f["id"] == "ACME-NAMING")
    assert (user["severity"], user["control"], user["hipaa"], user["level"]) == (
        "high", "unknown", [], "warn")
    assert any(f["location"] is None for f in doc["findings"])
    (waived,) = doc["waived"]
    assert list(waived) == [*keys, "waiver"]
    assert waived["resource"] == "node/b-val-0"
    assert waived["waiver"] == {"justification": "SAN-level encryption, see risk register #12",
                                "approver": "ciso@example.org", "expires": "2026-12-31"}


def test_sarif_is_valid_and_complete(report: GateReport) -> None:
    doc = json.loads(render(report, "sarif"))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft4Validator,
                        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(ids) and "HC-FX-RPC-PUBLIC" in ids and "ACME-NAMING" in ids
    rpc = rules[ids.index("HC-FX-RPC-PUBLIC")]
    assert rpc["name"] == "RPCExposedToThePublic"
    assert rpc["shortDescription"]["text"] == "RPC exposed to the public"
    assert rpc["help"]["text"] == "Set spec.network.rpc.exposure to `internal`."
    assert rpc["defaultConfiguration"]["level"] == "error"
    assert rpc["properties"]["control"] == "AC-1" and rpc["properties"]["hipaa"] == ["164.312(a)(1)"]
    assert rules[ids.index("HC-FX-POWER-SHARE")]["defaultConfiguration"]["level"] == "warning"
    results = run["results"]
    assert len(results) == 6
    assert all(r["ruleId"] == ids[r["ruleIndex"]] for r in results)
    located = next(r for r in results if r["ruleId"] == "HC-FX-RPC-PUBLIC")
    assert located["level"] == "error"
    assert located["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "network.yaml"}, "region": {"startLine": 9, "startColumn": 7}}
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"][0]["kind"] == "external"
    assert suppressed[0]["suppressions"][0]["justification"].startswith("SAN-level")


def test_sarif_uri_is_relative_to_cwd(report: GateReport, tmp_path: Path) -> None:
    from dataclasses import replace

    spec = tmp_path / "specs" / "my net.yaml"
    moved = replace(report, findings=tuple(
        replace(f, location=Location(str(spec), 3, 2)) for f in report.findings))
    doc = json.loads(render(moved, "sarif", cwd=tmp_path))
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"] for loc in r.get("locations", []) if "physicalLocation" in loc}
    assert "specs/my%20net.yaml" in uris


def test_junit(report: GateReport) -> None:
    root = ET.fromstring(render(report, "junit"))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert int(root.get("tests", "0")) == len(cases)
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert root.get("failures") == str(len(failures)) == "3"
    assert root.get("skipped") == str(len(skipped)) == "2"
    by = {(c.get("classname"), c.get("name")): c for c in cases}
    assert by[("HC-FX-STORAGE-UNENCRYPTED", "node/c-val-0")].find("failure") is not None
    waived = by[("HC-FX-STORAGE-UNENCRYPTED", "node/b-val-0")]
    assert waived.find("failure") is None and "waived" in (waived.findtext("system-out") or "")
    # rules without findings are passing testcases named after the rule
    assert ("HC-RA1-WAIVER-EXPIRED", "Waiver expired") in by
    suites = {s.get("name") for s in root.findall("testsuite")}
    assert {"AC-1", "AC-5", "CP-1", "RA-1", "unknown"} <= suites


def test_github_annotations(report: GateReport) -> None:
    lines = render(report, "github").splitlines()
    assert len(lines) == 5
    assert lines[0] == (
        "::error file=network.yaml,line=9,col=7,title=HC-FX-RPC-PUBLIC::RPC exposure is `public`")
    assert any(line.startswith("::warning ") for line in lines)
    unlocated = "::error title=HC-FX-STORAGE-UNENCRYPTED::node rogue,node:0"  # data: `,` and `:` kept
    assert any(line.startswith(unlocated) for line in lines)


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    from hcops.policy.findings import Finding
    from hcops.policy.gate import GateReport, Summary

    f = Finding(id="X,1", level="warn", severity="low", control="c", hipaa=(), resource="r",
                message="two\nlines", remediation="", location=Location("dir,x/f:1.yaml", 2, 3))
    rep = GateReport(passed=True, findings=(f,), waived=(), summary=Summary(0, 1, 0), rules=())
    assert to_github(rep) == "::warning file=dir%2Cx/f%3A1.yaml,line=2,col=3,title=X%2C1::two%0Alines\n"


def test_tables(report: GateReport) -> None:
    table = findings_table(report)
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == [
        "Level", "Severity", "Rule", "Control", "Resource", "Message", "Location"]
    assert table.row_count == 6
    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert "FAILED" in text and "HC-FX-RPC-PUBLIC" in text and "network.yaml:9" in text
    assert rules_table(report.rules).row_count == len(report.rules)


def test_policy_test_renderers() -> None:
    results = EmbeddedEngine().run_tests(
        {p.name: p.read_text() for p in SELFTEST.glob("*.rego")}, {})
    assert policy_tests_table(results).row_count == 5
    root = ET.fromstring(policy_tests_junit(results))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5", "1", "1", "1")


def test_unknown_format(report: GateReport) -> None:
    with pytest.raises(InvalidInput):
        render(report, "yaml")
