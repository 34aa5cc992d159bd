from __future__ import annotations

import pytest

from hcops.errors import InvalidInput
from hcops.policy.metadata import collect_metadata, parse_metadata
from hcops.policy.regosrc import scan

from .conftest import PACK

GOOD = """package hcops.hipaa.demo

import rego.v1

# METADATA
# title: Demo rule
# description: >-
#   A demo, on
#   two lines.
# scope: rule
# custom:
#   id: HC-DEMO-1
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#     - 164.312(e)(1)
#   severity: medium
#   remediation: Fix it.

deny contains f if {
	f := {"id": "HC-DEMO-1", "msg": "m", "resource": "r"}
}

# METADATA
#title: Warn rule
#description: d
#custom:
#  id: HC-DEMO-2
#  control: AU-1
#  hipaa: "164.312(b)"
#  severity: low
#  remediation: r
warn contains f if {
	f := {"id": "HC-DEMO-2", "msg": "m", "resource": "r"}
}

# Helpers need no metadata.
helper := 1
"""


def test_parse_good_metadata() -> None:
    first, second = parse_metadata("demo.rego", GOOD)
    assert first.id == "HC-DEMO-1"
    assert first.title == "Demo rule"
    assert first.description == "A demo, on two lines."
    assert first.hipaa == ("164.312(a)(1)", "164.312(e)(1)")
    assert (first.control, first.severity, first.remediation) == ("AC-1", "medium", "Fix it.")
    assert (first.package, first.rule, first.level, first.file, first.line) == (
        "hcops.hipaa.demo", "deny", "deny", "demo.rego", 20)
    assert second.id == "HC-DEMO-2" and second.level == "warn" and second.hipaa == ("164.312(b)",)
    assert second.line == 33


def _problems(source: str, *, require: bool = True) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        parse_metadata("bad.rego", source, require=require)
    return [d.format() for d in err.value.diagnostics]


def test_rule_without_metadata_in_builtin_pack() -> None:
    source = "package hcops.x\n\nimport rego.v1\n\ndeny contains f if {\n\tf := 1\n}\n"
    assert _problems(source) == ["bad.rego:5:1: error: rule hcops.x.deny has no METADATA block"]
    assert parse_metadata("user.rego", source, require=False) == []


def test_malformed_yaml_points_at_file_line_column() -> None:
    source = GOOD.replace("#   control: AC-1", "#   control: [AC-1")
    (problem,) = _problems(source)
    assert problem.startswith("bad.rego:14:10:")  # where YAML notices the unclosed [
    assert "malformed METADATA block" in problem


def test_missing_and_invalid_fields() -> None:
    source = GOOD.replace("#   id: HC-DEMO-1\n", "").replace("#   severity: medium", "#   severity: critical")
    problems = _problems(source)
    assert any(p.startswith("bad.rego:5:1:") and "custom.id missing" in p for p in problems)
    assert any(p.startswith("bad.rego:16:5:") and "custom.severity must be one of high, medium, low" in p
               for p in problems)


def test_hipaa_must_be_a_list_and_custom_a_mapping() -> None:
    bad_hipaa = GOOD.replace("#   hipaa:\n#     - 164.312(a)(1)\n#     - 164.312(e)(1)\n", "#   hipaa: []\n")
    assert any("custom.hipaa must be a non-empty list" in p for p in _problems(bad_hipaa))
    no_custom = "package p\n\n# METADATA\n# title: t\n# description: d\n# custom: 3\ndeny contains 1\n"
    assert any("custom must be a mapping" in p for p in _problems(no_custom))


def test_metadata_block_must_annotate_something() -> None:
    source = "package p\n\nimport rego.v1\n\n# METADATA\n# title: x\n"
    assert _problems(source, require=False) == [
        "bad.rego:5:1: error: METADATA block is not followed by a rule or package"]


def test_user_metadata_without_custom_id_is_ignored() -> None:
    source = "package p\n\nimport rego.v1\n\n# METADATA\n# title: only a title\ndeny contains 1\n"
    assert parse_metadata("user.rego", source, require=False) == []
    assert any("custom must be a mapping" in p for p in _problems(source, require=True))


def test_conflicting_duplicate_ids_are_rejected() -> None:
    other = GOOD.replace("package hcops.hipaa.demo", "package hcops.hipaa.other").replace(
        "#   severity: medium", "#   severity: high")
    with pytest.raises(InvalidInput) as err:
        collect_metadata([(scan("a.rego", GOOD), True), (scan("b.rego", other), True)])
    assert "HC-DEMO-1 is also declared at a.rego:20" in err.value.diagnostics[0].message
    same = GOOD.replace("package hcops.hipaa.demo", "package hcops.hipaa.same")
    assert len(collect_metadata([(scan("a.rego", GOOD), True), (scan("b.rego", same), True)])) == 4


def test_fixture_pack_metadata() -> None:
    source = (PACK / "access.rego").read_text()
    ids = [m.id for m in parse_metadata("access.rego", source)]
    assert ids == ["HC-FX-RPC-PUBLIC", "HC-FX-STORAGE-UNENCRYPTED", "HC-FX-POWER-SHARE"]
