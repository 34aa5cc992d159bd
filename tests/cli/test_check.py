"""`hcops check`, `hcops policy test|list`, and the gate of `hcops apply` (over the in-memory provider).

The gate runs on the embedded engine here; the example consortium (and the overlays the Docker tests
use) must pass it, a non-compliant overlay must fail it before anything is applied.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest

from hcops.policy.seal import load_manifest
from hcops.providers.state import StateStore
from hcops.usecases import deploy
from tests.cli_helpers import Result, run_cli
from tests.conftest import EXAMPLE
from tests.providers.fake import FakeProvider

FINDING_KEYS = {"id", "severity", "level", "control", "hipaa", "resource", "message", "remediation", "location"}

CONTACTS_REGO = '''\
package rhn.contacts

import rego.v1

# The mail domain each organization must use.
domains := {
	"st-mary-hospital": "stmary.example",
	"northside-clinic": "northside.example",
}

# METADATA
# title: Break-glass contact outside the organization's domain
# description: >-
#   The break-glass contact must be an address of the organization's own mail domain. Deny.
# scope: rule
# custom:
#   id: RHN-BREAK-GLASS-DOMAIN
#   control: AC-3
#   hipaa:
#     - 164.312(a)(2)(ii)
#   severity: medium
#   remediation: Use an on-call address of the organization's own domain.
deny contains f if {
	some o in input.organizations
	domain := domains[o.name]
	contact := object.get(o, ["contact", "breakGlass"], "")
	is_string(contact)
	contact != ""
	not endswith(contact, concat("", ["@", domain]))
	f := {
		"id": "RHN-BREAK-GLASS-DOMAIN",
		"msg": sprintf("break-glass contact %s of %s is not an address of %s", [contact, o.name, domain]),
		"resource": sprintf("org/%s", [o.name]),
		"path": sprintf("%s.contact.breakGlass", [o.path]),
	}
}
'''

CONTACTS_TEST_REGO = '''\
package rhn.contacts_test

import rego.v1

import data.rhn.contacts

org(contact) := {
	"name": "st-mary-hospital", "path": "spec.organizations[0]",
	"contact": {"breakGlass": contact},
}

findings(orgs) := r if {
	r := contacts.deny with input.organizations as orgs
}

test_break_glass_domain_fires if {
	some f in findings([org("help@vendor.example")])
	f.id == "RHN-BREAK-GLASS-DOMAIN"
	f.path == "spec.organizations[0].contact.breakGlass"
}

test_break_glass_domain_passes if {
	count(findings([org("oncall@stmary.example")])) == 0
}
'''


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example consortium (spec and overlays)."""
    root = tmp_path / "rhn"
    shutil.copytree(EXAMPLE.parent, root)
    return root / "network.yaml"


def overlay(spec: Path, env: str, text: str) -> None:
    (spec.parent / "environments" / f"{env}.yaml").write_text(textwrap.dedent(text))


def check(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path, *args: str) -> Result:
    return run_cli(capsys, "check", "-f", str(spec), "--state-dir", str(tmp_path / "state"), *args)


def gate_records(db: Path) -> list[tuple[str, dict[str, object]]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, body FROM records WHERE kind LIKE 'gate%' ORDER BY seq").fetchall()
    return [(kind, json.loads(body)) for kind, body in rows]


# ------------------------------------------------------------------------------------------ check
@pytest.mark.parametrize("env", [None, "dev", "prod"])
def test_example_passes(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path, env: str | None) -> None:
    r = check(capsys, example, tmp_path, *(["--env", env] if env else []))
    assert r.code == 0, r.out + r.err
    assert "gate passed" in r.out


def test_docker_test_overlay_passes(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    """The overlay the Docker integration tests apply (RPC published on host ports) passes the gate."""
    overlay(example, "test", """\
        metadata: {name: gate-test-net}
        spec:
          chain: {blockInterval: 300ms}
          provider:
            docker: {rpcHostPortBase: 23000, subnet: 10.201.3.0/24}
        """)
    assert check(capsys, example, tmp_path, "--env", "test").code == 0


def test_json_shape_and_deny_exit_code(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    r = check(capsys, example, tmp_path, "--env", "leaky", "--format", "json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert set(doc) == {"passed", "summary", "findings", "waived", "engine", "pack"}
    assert doc["passed"] is False
    assert set(doc["summary"]) == {"deny", "warn", "waived"}
    assert doc["summary"]["deny"] >= 1 and doc["waived"] == []
    for f in doc["findings"]:
        assert set(f) == FINDING_KEYS
    phi = next(f for f in doc["findings"] if f["id"] == "HC-PHI1-PHI-ON-CHAIN")
    assert phi["level"] == "deny" and phi["resource"] == "network/regional-health-net"
    assert phi["location"]["file"].endswith("leaky.yaml") and phi["location"]["line"] == 2


def test_sarif_output_file(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    out = tmp_path / "reports" / "hcops.sarif"
    r = check(capsys, example, tmp_path, "--env", "leaky", "--format", "sarif", "--output-file", str(out))
    assert r.code == 1 and r.out == ""
    assert "gate FAILED" in r.err and str(out) in r.err
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert any(res["ruleId"] == "HC-PHI1-PHI-ON-CHAIN" and res["level"] == "error" for res in results)


def test_junit_and_github_formats(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    junit = check(capsys, example, tmp_path, "--env", "leaky", "--format", "junit")
    assert junit.code == 1 and junit.out.startswith("<?xml") and "HC-PHI1-PHI-ON-CHAIN" in junit.out
    gh = check(capsys, example, tmp_path, "--env", "leaky", "--format", "github")
    assert gh.code == 1 and any(line.startswith("::error ") and "HC-PHI1-PHI-ON-CHAIN" in line
                                for line in gh.out.splitlines())


def test_waivers_file(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(textwrap.dedent("""\
        waivers:
          - id: HC-PHI1-PHI-ON-CHAIN
            resource: "network/*"
            justification: Synthetic test records only, approved by the privacy board
            approver: privacy-officer@example.org
            expires: 2999-12-31
        """))
    r = check(capsys, example, tmp_path, "--env", "leaky", "--waivers", str(waivers), "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["passed"] is True and doc["summary"]["waived"] == 1
    assert doc["waived"][0]["id"] == "HC-PHI1-PHI-ON-CHAIN"
    assert doc["waived"][0]["waiver"]["approver"] == "privacy-officer@example.org"
    assert not any(f["id"] == "HC-PHI1-PHI-ON-CHAIN" for f in doc["findings"])


def test_missing_waivers_file_is_invalid_input(capsys: pytest.CaptureFixture[str], example: Path,
                                               tmp_path: Path) -> None:
    r = check(capsys, example, tmp_path, "--waivers", str(tmp_path / "nope.yaml"))
    assert r.code == 2 and "nope.yaml" in r.err


def test_strict_fails_on_warnings(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    r = check(capsys, example, tmp_path, "--strict", "--format", "json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["passed"] is False and doc["summary"]["deny"] == 0 and doc["summary"]["warn"] > 0


def test_custom_policy_dir_from_the_readme(capsys: pytest.CaptureFixture[str], example: Path,
                                           tmp_path: Path) -> None:
    policies = tmp_path / "my-policies"
    policies.mkdir()
    (policies / "contacts.rego").write_text(CONTACTS_REGO)
    (policies / "contacts_test.rego").write_text(CONTACTS_TEST_REGO)
    assert check(capsys, example, tmp_path, "--policy", str(policies)).code == 0

    text = example.read_text().replace("oncall@stmary.example", "help@vendor.example")
    example.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "help@vendor.example" in s)
    r = check(capsys, example, tmp_path, "--policy", str(policies), "--format", "json")
    assert r.code == 1
    f = next(f for f in json.loads(r.out)["findings"] if f["id"] == "RHN-BREAK-GLASS-DOMAIN")
    assert f["resource"] == "org/st-mary-hospital" and f["control"] == "AC-3" and f["severity"] == "medium"
    assert f["location"] == {"file": str(example), "line": line}


def test_rego_syntax_error_is_exit_2_with_file_and_line(capsys: pytest.CaptureFixture[str], example: Path,
                                                        tmp_path: Path) -> None:
    policies = tmp_path / "broken"
    policies.mkdir()
    (policies / "broken.rego").write_text("package broken\n\nimport rego.v1\n\ndeny contains f if {\n\tf := \n")
    r = check(capsys, example, tmp_path, "--policy", str(policies))
    assert r.code == 2
    assert "broken.rego:" in r.err
    assert any(f"broken.rego:{n}" in r.err for n in (5, 6, 7)), r.err


def test_invalid_spec_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: hcops/v1alpha1\nkind: Consortium\nmetadata: {name: x}\nspec: {}\n")
    assert check(capsys, spec, tmp_path).code == 2


def test_unreachable_opa_server_fails_closed(capsys: pytest.CaptureFixture[str], example: Path,
                                             tmp_path: Path) -> None:
    r = check(capsys, example, tmp_path, "--opa-url", "http://127.0.0.1:9")
    assert r.code == 2 and "not reachable" in r.err


def test_gate_runs_are_recorded_in_the_audit_log(capsys: pytest.CaptureFixture[str], example: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "audit.db"
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(db))
    assert check(capsys, example, tmp_path).code == 0
    [(kind, body)] = gate_records(db)
    assert kind == "gate_run" and body["passed"] is True and body["command"] == "check"
    assert body["network"] == "regional-health-net" and body["specHash"]


def test_unwritable_audit_log_warns_but_keeps_the_verdict(capsys: pytest.CaptureFixture[str], example: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(blocker / "audit.db"))
    r = check(capsys, example, tmp_path)
    assert r.code == 0
    assert "warning:" in r.err and "could not record the gate run" in r.err


# ------------------------------------------------------------------------------------------ policy
def test_policy_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "policy", "list", "--output", "json")
    assert r.code == 0
    rules = json.loads(r.out)
    shipped = sum(len(ids) for ids in load_manifest().gate.values())
    assert len(rules) == shipped and len({x["id"] for x in rules}) == shipped
    phi = next(x for x in rules if x["id"] == "HC-PHI1-PHI-ON-CHAIN")
    assert phi["level"] == "deny" and phi["control"] == "PHI-1" and phi["location"]["file"].endswith("phi.rego")


def test_policy_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "policy", "list")
    assert r.code == 0 and "HC-AC2-DUPLICATE-NODE-NAME" in r.out


def test_policy_test_pass_and_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policies = tmp_path / "my-policies"
    policies.mkdir()
    (policies / "contacts.rego").write_text(CONTACTS_REGO)
    (policies / "contacts_test.rego").write_text(CONTACTS_TEST_REGO)
    ok = run_cli(capsys, "policy", "test", str(policies), "--no-builtin")
    assert ok.code == 0, ok.out + ok.err
    assert "2/2 policy tests passed" in ok.out and "test_break_glass_domain_fires" in ok.out

    (policies / "wrong_test.rego").write_text(
        "package rhn.wrong_test\n\nimport rego.v1\n\nimport data.rhn.contacts\n\n"
        "test_wrong if {\n\tcount(contacts.domains) == 3\n}\n")
    bad = run_cli(capsys, "policy", "test", str(policies), "--no-builtin")
    assert bad.code == 1
    assert "2/3 policy tests passed" in bad.out and "FAIL" in bad.out and "test_wrong" in bad.out


# ------------------------------------------------------------------------------------------ apply
@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    prov = FakeProvider()
    monkeypatch.setattr(deploy, "get_provider", lambda name: prov)
    return prov


def test_apply_refuses_on_deny(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path,
                               fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(tmp_path / "audit.db"))
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    r = run_cli(capsys, "apply", "-f", str(example), "--env", "leaky", "--state-dir", str(tmp_path / "st"), "--yes")
    assert r.code == 1
    assert fake.applied == [] and fake.networks == {}
    assert "HC-PHI1-PHI-ON-CHAIN" in r.out and "refused" in r.err
    [(kind, body)] = gate_records(tmp_path / "audit.db")
    assert kind == "gate_run" and body["passed"] is False and body["command"] == "apply"


def test_apply_passes_the_gate(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path,
                               fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(tmp_path / "audit.db"))
    state = tmp_path / "st"
    r = run_cli(capsys, "apply", "-f", str(example), "--env", "dev", "--state-dir", str(state), "--yes")
    assert r.code == 0, r.err
    assert fake.applied == ["regional-health-net"] and "policy gate passed" in r.err
    gate = StateStore(state / "regional-health-net").load("regional-health-net", "docker").extra["gate"]
    assert gate["skipped"] is False and gate["passed"] is True


def test_apply_skip_gate_records_the_reason(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path,
                                            fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(tmp_path / "audit.db"))
    overlay(example, "leaky", "spec:\n  data: {phiOnChain: allowed}\n")
    state = tmp_path / "st"
    r = run_cli(capsys, "apply", "-f", str(example), "--env", "leaky", "--state-dir", str(state), "--yes",
                "--skip-gate", "--reason", "hotfix INC-42 approved by the CISO")
    assert r.code == 0, r.err
    assert fake.applied == ["regional-health-net"] and "policy gate skipped" in r.err
    gate = StateStore(state / "regional-health-net").load("regional-health-net", "docker").extra["gate"]
    assert gate["skipped"] is True and gate["reason"] == "hotfix INC-42 approved by the CISO"
    [(kind, body)] = gate_records(tmp_path / "audit.db")
    assert kind == "gate_skipped" and body["reason"] == "hotfix INC-42 approved by the CISO"


@pytest.mark.parametrize("extra", [("--skip-gate",), ("--skip-gate", "--reason", "  "), ("--reason", "why")])
def test_apply_skip_gate_needs_a_reason(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path,
                                        fake: FakeProvider, extra: tuple[str, ...]) -> None:
    r = run_cli(capsys, "apply", "-f", str(example), "--state-dir", str(tmp_path / "st"), "--yes", *extra)
    assert r.code == 2 and "--reason" in r.err
    assert fake.applied == []


def test_an_engine_limit_is_reported_with_its_hint(capsys: pytest.CaptureFixture[str], example: Path,
                                                   tmp_path: Path) -> None:
    policies = tmp_path / "unsupported"
    policies.mkdir()
    (policies / "net.rego").write_text(textwrap.dedent("""\
        package custom.net

        import rego.v1

        deny contains "inside" if net.cidr_contains("10.0.0.0/8", "10.1.2.3")
    """))
    r = check(capsys, example, tmp_path, "--policy", str(policies), "--engine", "embedded")
    assert r.code == 2
    assert "net.rego:5:" in r.err and "hint: " in r.err and "--opa-url" in r.err
    assert "Traceback" not in r.err
