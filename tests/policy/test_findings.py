from __future__ import annotations

from hcops.errors import Location
from hcops.policy.engines.base import EngineResult, PackageResult
from hcops.policy.findings import build_findings, locate_path, parent_path
from hcops.policy.metadata import RuleMeta

from .conftest import SPEC_LINES

META = RuleMeta(id="HC-A", title="A", description="a", hipaa=("164.312(a)(1)",), control="AC-1",
                severity="medium", remediation="fix a", package="hcops.x", rule="deny", file="x.rego", line=3)


def result(deny: tuple[object, ...] = (), warn: tuple[object, ...] = ()) -> EngineResult:
    return EngineResult("embedded", (PackageResult("hcops.x", tuple(deny), tuple(warn)),))


def test_join_with_metadata_and_locate() -> None:
    raw = {"id": "HC-A", "msg": "bad rpc", "resource": "network/n", "path": "spec.network.rpc.exposure"}
    (f,) = build_findings(result(deny=(raw,)), {"HC-A": META}, SPEC_LINES.get)
    assert (f.id, f.level, f.severity, f.control, f.hipaa) == (
        "HC-A", "deny", "medium", "AC-1", ("164.312(a)(1)",))
    assert (f.resource, f.message, f.remediation, f.path) == (
        "network/n", "bad rpc", "fix a", "spec.network.rpc.exposure")
    assert f.location == Location("network.yaml", 9, 7)
    assert f.to_dict() == {
        "id": "HC-A", "severity": "medium", "level": "deny", "control": "AC-1", "hipaa": ["164.312(a)(1)"],
        "resource": "network/n", "message": "bad rpc", "remediation": "fix a",
        "location": {"file": "network.yaml", "line": 9},
    }


def test_unknown_ids_and_odd_values_are_never_dropped() -> None:
    raws = ({"id": "NOPE", "msg": "m", "resource": "r"}, "a plain string", {"msg": "no id"})
    findings = build_findings(result(warn=raws), {}, SPEC_LINES.get)
    assert len(findings) == 3
    assert all(f.severity == "high" and f.control == "unknown" and f.level == "warn" for f in findings)
    assert {f.id for f in findings} == {"NOPE", "hcops.x.warn"}
    assert "a plain string" in {f.message for f in findings}


def test_locate_falls_back_to_the_longest_prefix() -> None:
    assert locate_path(SPEC_LINES.get, "spec.organizations[1].nodes[0].storage.encrypted") == Location(
        "network.yaml", 20, 9)
    assert locate_path(SPEC_LINES.get, "spec.network.rpc.tls") == Location("network.yaml", 8, 5)
    assert locate_path(SPEC_LINES.get, "manifests.docker") is None
    assert locate_path(SPEC_LINES.get, None) is None


def test_parent_path() -> None:
    assert parent_path("spec.a[1].b") == "spec.a[1]"
    assert parent_path("spec.a[1]") == "spec.a"
    assert parent_path('spec.labels["x.y"]') == "spec.labels"
    assert parent_path("spec") == ""


def test_findings_are_sorted_and_deduplicated() -> None:
    low = RuleMeta(**{**META.__dict__, "id": "HC-B", "severity": "low"})
    raws = (
        {"id": "HC-B", "msg": "b", "resource": "node/2"},
        {"id": "HC-A", "msg": "a", "resource": "node/2"},
        {"id": "HC-A", "msg": "a", "resource": "node/1"},
    )
    findings = build_findings(
        EngineResult("x", (PackageResult("p", raws, ()), PackageResult("q", raws[:1], raws[:1]))),
        {"HC-A": META, "HC-B": low}, SPEC_LINES.get)
    assert [(f.level, f.id, f.resource) for f in findings] == [
        ("deny", "HC-A", "node/1"), ("deny", "HC-A", "node/2"), ("deny", "HC-B", "node/2"),
        ("warn", "HC-B", "node/2")]
