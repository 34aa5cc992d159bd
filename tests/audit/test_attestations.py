"""The attestations file: validated like the spec (FILE:LINE:COL), statuses by date, the default file next
to the spec, and the --attestations / --mrn-pattern options of `hcops audit` and `hcops report`."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from hcops.audit.attestations import ATTESTATION_EXPIRED, default_path, load
from hcops.errors import InvalidInput
from tests.cli_helpers import run_cli
from tests.conftest import SpecDir

GOOD = """\
attestations:
  - control: DR-1
    statement: >-
      Compliance reports, waivers and audit logs are retained
      for six years.
    attestedBy: "Compliance officer, org-a"
    attestedOn: 2026-01-31
    expires: 2027-01-31
    evidence: "Records retention schedule RS-2"
  - control: AZ-1
    statement: org-b countersigned the consortium BAA.
    attestedBy: "Privacy officer, org-b"
    attestedOn: "2024-01-01"
    expires: "2025-12-31"
  - control: AC-4
    statement: Sessions expire after 15 minutes of inactivity.
    attestedBy: "Infrastructure lead"
    attestedOn: 2027-06-01
    expires: 2028-06-01
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "attestations.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_file_statuses_and_findings(tmp_path: Path) -> None:
    atts = load(_write(tmp_path, GOOD))
    today = dt.date(2026, 11, 25)
    assert [e.status(today) for e in atts.entries] == ["active", "expired", "pending"]
    assert atts.entries[0].attestation.statement.startswith("Compliance reports, waivers and audit logs are retained for")
    assert atts.active(today) == {"DR-1"} and atts.facts(today) == {"active": ["DR-1"], "expired": ["AZ-1"]}
    (f,) = atts.findings(today)
    assert (f.id, f.control, f.level, f.severity, f.resource) == (ATTESTATION_EXPIRED, "AZ-1", "deny", "medium",
                                                                  "attestation/1")
    assert f.location is not None and f.location.line == 10
    assert load(_write(tmp_path, "attestations: []\n")).entries == ()
    assert load(_write(tmp_path, "# only comments\n")).entries == ()


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("attestations:\n  - control: AC-33\n    statement: A long enough statement.\n    attestedBy: abc\n"
         "    attestedOn: 2026-01-01\n    expires: 2027-01-01\n", ":2:14:", 'unknown control "AC-33"; did you mean'),
        ("attestations:\n  - control: AC-3\n    statement: A long enough statement.\n    attestedBy: abc\n"
         "    attestedOn: 20260101\n    expires: 2027-01-01\n", ":5:17:", "expected a date (YYYY-MM-DD)"),
        ("attestations:\n  - control: AC-3\n    statement: A long enough statement.\n    attestedBy: abc\n"
         "    attestedOn: 2026-01-01\n    expires: 2025-01-01\n", ":2:5:", "is before attestedOn"),
        ("attestations:\n  - control: AC-3\n    statement: A long enough statement.\n    attestedBy: abc\n"
         "    attestedOn: 2026-01-01\n    expires: 2027-01-01\n    signedBy: x\n", ":7:5:", 'unknown field "signedBy"'),
        ("attestations:\n  - control: AC-3\n    attestedBy: abc\n    attestedOn: 2026-01-01\n"
         "    expires: 2027-01-01\n", ":2:5:", "statement: required field is missing"),
        ("attestations:\n  - control: AC-3\n    statement: \"A statement with \\u202e bidi.\"\n    attestedBy: abc\n"
         "    attestedOn: 2026-01-01\n    expires: 2027-01-01\n", ":3:16:", "without control or bidirectional"),
        ("- control: AC-3\n", "attestations.yaml:1:1:", "expected a mapping with `attestations:`"),
        ("attestations: [\n", "attestations.yaml:", ""),
    ],
)
def test_errors_point_into_the_file(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load(_write(tmp_path, text))
    shown = "\n".join(d.format() for d in info.value.diagnostics)
    assert where in shown and message in shown, shown


def test_default_file_sits_next_to_the_spec(spec_dir: SpecDir) -> None:
    assert default_path(spec_dir.spec) is None
    (spec_dir.root / "attestations.yaml").write_text("attestations: []\n")
    assert default_path(spec_dir.spec) == spec_dir.root / "attestations.yaml"


def test_report_reads_the_attestations_next_to_the_spec(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir,
                                                        state_dir: Path, tmp_path: Path) -> None:
    (spec_dir.root / "attestations.yaml").write_text(GOOD)
    out = tmp_path / "report.json"
    r = run_cli(capsys, "report", "-f", str(spec_dir.spec), "--format", "json", "-o", str(out))
    assert r.code == 0, r.err
    assert "declared only" in r.out and "evidence:" in r.out
    doc = json.loads(out.read_text())
    rows = {c["id"]: c for c in doc["controls"]}
    assert rows["DR-1"]["evidence"] in ("attested", "none")  # attested until 2027-01-31
    assert doc["attestations"]["file"].endswith("attestations.yaml") and len(doc["attestations"]["entries"]) == 3
    assert any(f["id"] == ATTESTATION_EXPIRED and f["control"] == "AZ-1" for f in doc["findings"])


def test_bad_attestations_are_input_errors(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path,
                                           tmp_path: Path) -> None:
    bad = _write(tmp_path, "attestations:\n  - control: XX-1\n")
    for cmd in (["report", "--format", "json", "-o", str(tmp_path / "r.json")], ["audit"]):
        r = run_cli(capsys, cmd[0], "-f", str(spec_dir.spec), "--attestations", str(bad), *cmd[1:])
        assert r.code == 2 and "attestations.yaml:2:14" in r.err and 'unknown control "XX-1"' in r.err, r.err


def test_invalid_mrn_pattern_is_an_input_error(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir,
                                               state_dir: Path) -> None:
    r = run_cli(capsys, "audit", "-f", str(spec_dir.spec), "--mrn-pattern", "(unclosed")
    assert r.code == 2 and "--mrn-pattern is not a valid regular expression" in r.err


def test_the_init_template_and_its_examples_validate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    r = run_cli(capsys, "init", str(tmp_path / "net"), "--orgs", "4", "--yes")
    assert r.code == 0, r.err
    path = tmp_path / "net" / "attestations.yaml"
    assert load(path).entries == ()
    head, _, tail = path.read_text().partition("attestations: []\n")
    examples = "\n".join(line[1:] if line.startswith("#  ") else "" if line == "#" else line
                         for line in tail.splitlines())
    path.write_text(head + "attestations:\n" + examples + "\n")
    assert {e.attestation.control for e in load(path).entries} == {"AC-3", "AC-4", "DR-1", "AZ-1"}
