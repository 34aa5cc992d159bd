from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hcops.errors import InvalidInput, Location
from hcops.policy.findings import Finding
from hcops.policy.waivers import (
    WAIVER_EXPIRED,
    WAIVER_INVALID,
    WAIVER_UNUSED,
    apply_waivers,
    load_waivers,
)

TODAY = dt.date(2026, 3, 1)


def finding(rid: str, resource: str, level: str = "deny") -> Finding:
    return Finding(id=rid, level=level, severity="high", control="AC-1", hipaa=("164.312(a)(1)",),  # type: ignore[arg-type]
                   resource=resource, message=f"{rid} on {resource}", remediation="fix")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return path


VALID = """\
waivers:
  - id: HC-AC1-RPC-PUBLIC
    resource: "network/*"
    justification: De-identified research feed approved by the privacy board
    approver: privacy-officer@example.org
    expires: 2026-06-30
"""


def test_valid_waiver_moves_matching_findings(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID))
    (w,) = waivers
    assert w.valid and w.expires == dt.date(2026, 6, 30)
    assert w.location is not None and (w.location.line, w.location.column) == (2, 5)
    outcome = apply_waivers([finding("HC-AC1-RPC-PUBLIC", "network/rhn"), finding("HC-OTHER", "network/rhn")],
                            waivers, today=TODAY)
    assert [f.id for f in outcome.findings] == ["HC-OTHER"]
    (waived,) = outcome.waived
    assert waived.finding.resource == "network/rhn"
    assert waived.to_dict()["waiver"] == {
        "justification": "De-identified research feed approved by the privacy board",
        "approver": "privacy-officer@example.org", "expires": "2026-06-30"}


def test_glob_matches_resources_only(tmp_path: Path) -> None:
    text = VALID.replace('"network/*"', '"node/stmary-*"')
    outcome = apply_waivers(
        [finding("HC-AC1-RPC-PUBLIC", "node/stmary-val-0"), finding("HC-AC1-RPC-PUBLIC", "node/cityrx-val-0"),
         finding("HC-AC1-RPC-PUBLIC-2", "node/stmary-val-1")],
        load_waivers(write(tmp_path, text)), today=TODAY)
    assert [w.finding.resource for w in outcome.waived] == ["node/stmary-val-0"]
    assert sorted(f.resource for f in outcome.findings) == ["node/cityrx-val-0", "node/stmary-val-1"]


def test_expired_waiver_is_a_deny_and_not_applied(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID.replace("2026-06-30", "2026-02-28")))
    outcome = apply_waivers([finding("HC-AC1-RPC-PUBLIC", "network/rhn")], waivers, today=TODAY)
    assert outcome.waived == ()
    ids = sorted(f.id for f in outcome.findings)
    assert ids == ["HC-AC1-RPC-PUBLIC", WAIVER_EXPIRED]
    expired = next(f for f in outcome.findings if f.id == WAIVER_EXPIRED)
    assert (expired.level, expired.control, expired.hipaa) == ("deny", "RA-1", ("164.308(a)(1)(ii)(B)",))
    assert expired.location == Location(expired.location.file, 2, 5)  # type: ignore[union-attr]
    assert "expired on 2026-02-28" in expired.message


def test_waiver_expiring_today_still_applies(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID.replace("2026-06-30", "2026-03-01")))
    assert len(apply_waivers([finding("HC-AC1-RPC-PUBLIC", "network/x")], waivers, today=TODAY).waived) == 1


@pytest.mark.parametrize("drop", ["justification", "approver", "expires"])
def test_incomplete_waiver_is_a_deny(tmp_path: Path, drop: str) -> None:
    text = "\n".join(line for line in VALID.splitlines() if not line.strip().startswith(drop)) + "\n"
    outcome = apply_waivers([finding("HC-AC1-RPC-PUBLIC", "network/x")], load_waivers(write(tmp_path, text)),
                            today=TODAY)
    assert outcome.waived == ()
    invalid = next(f for f in outcome.findings if f.id == WAIVER_INVALID)
    assert invalid.level == "deny" and f"{drop} is missing" in invalid.message


def test_bad_date_and_unknown_field_are_incomplete(tmp_path: Path) -> None:
    text = VALID.replace("2026-06-30", "soon") + "    aprover: typo@example.org\n"
    (w,) = load_waivers(write(tmp_path, text))
    assert not w.valid
    assert "expires must be a date (YYYY-MM-DD)" in w.problems and "unknown field 'aprover'" in w.problems


def test_unused_waiver_is_a_warn(tmp_path: Path) -> None:
    outcome = apply_waivers([], load_waivers(write(tmp_path, VALID)), today=TODAY)
    (unused,) = outcome.findings
    assert (unused.id, unused.level, unused.control) == (WAIVER_UNUSED, "warn", "RA-1")


def test_environment_scoped_waiver(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID + "    environments: [staging]\n"))
    f = finding("HC-AC1-RPC-PUBLIC", "network/x")
    assert len(apply_waivers([f], waivers, today=TODAY, environment="staging").waived) == 1
    prod = apply_waivers([f], waivers, today=TODAY, environment="prod")
    assert prod.waived == () and [x.id for x in prod.findings] == ["HC-AC1-RPC-PUBLIC"]  # not "unused" either


def test_bare_list_and_empty_file(tmp_path: Path) -> None:
    bare = "\n".join(line[2:] for line in VALID.splitlines()[1:]) + "\n"
    assert len(load_waivers(write(tmp_path, bare))) == 1
    assert load_waivers(write(tmp_path, "")) == []


def test_malformed_yaml_has_file_line_column(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("approver: privacy", "approver: [privacy"))
    with pytest.raises(InvalidInput) as err:
        load_waivers(path)
    (diag,) = err.value.diagnostics
    assert diag.location is not None and diag.location.file.endswith("waivers.yaml")
    assert (diag.location.line, diag.location.column) == (6, 12)  # where YAML notices the unclosed [


def test_wrong_structure_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="malformed waivers file"):
        load_waivers(write(tmp_path, "waivers:\n  - just a string\n"))
    with pytest.raises(InvalidInput, match="malformed waivers file"):
        load_waivers(write(tmp_path, "waiver: []\n"))
