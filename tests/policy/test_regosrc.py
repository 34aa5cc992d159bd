from __future__ import annotations

from hcops.policy.regosrc import offset_to_position, rego_ref, scan

SOURCE = '''# header comment with deny contains f if { fake }
package hcops.hipaa.example

import rego.v1
import data.hcops.hipaa.lib
import data.other.thing as t

default allow := false

msg := "deny contains x if { not a rule } # not a comment"

raw := `multi
deny contains y if {
line`

# METADATA
# title: t
deny contains f if {
	some n in input.nodes
	lib.port_matches(n.port, "26657")
	not net.cidr_contains("10.0.0.0/8",
		n.address)
	f := {"id": "X", "msg": sprintf("%s", [n.name]), "resource": "r"}
}

helper(x) := y if {
	y := x
} else := 0

warn contains f if
	f := "w"
'''


def test_scan_finds_package_imports_and_rules() -> None:
    info = scan("example.rego", SOURCE)
    assert info.package == ("hcops", "hipaa", "example")
    assert info.package_name == "hcops.hipaa.example"
    assert [(i.path, i.alias) for i in info.imports] == [
        (("rego", "v1"), "v1"),
        (("data", "hcops", "hipaa", "lib"), "lib"),
        (("data", "other", "thing"), "t"),
    ]
    rules = [(r.name, r.line, r.default, r.function) for r in info.rules]
    assert rules == [
        ("allow", 8, True, False),
        ("msg", 10, False, False),
        ("raw", 12, False, False),
        ("deny", 18, False, False),
        ("helper", 26, False, True),
        ("warn", 30, False, False),
    ]


def test_scan_ignores_strings_and_comments() -> None:
    info = scan("example.rego", SOURCE)
    assert sum(1 for r in info.rules if r.name == "deny") == 1
    assert info.comments[0].line == 1 and info.comments[0].own_line
    assert [c.text for c in info.comments if c.line in (16, 17)] == [" METADATA", " title: t"]


def test_scan_finds_calls_with_positions() -> None:
    info = scan("example.rego", SOURCE)
    calls = {(c.name, c.line, c.col) for c in info.calls}
    assert ("lib.port_matches", 20, 2) in calls
    assert ("net.cidr_contains", 21, 6) in calls
    assert ("sprintf", 23, 26) in calls
    assert not any(c.name == "helper" for c in info.calls)  # the definition is not a call


def test_test_modules_and_missing_package() -> None:
    assert scan("a_test.rego", "package p_test\n").is_test
    assert not scan("a.rego", "package p\n").is_test
    assert scan("a.rego", "# nothing\n").package is None


def test_rego_ref_quotes_non_identifiers() -> None:
    assert rego_ref(("hcops", "hipaa", "ac")) == "data.hcops.hipaa.ac"
    assert rego_ref(("a", "b-c")) == 'data.a["b-c"]'


def test_offset_to_position_counts_utf8_bytes() -> None:
    source = "é\nab\ncd"
    assert offset_to_position(source, 0) == (1, 1)
    assert offset_to_position(source, 3) == (2, 1)
    assert offset_to_position(source, 4) == (2, 2)
    assert offset_to_position(source, 6) == (3, 1)
