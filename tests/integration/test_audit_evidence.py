"""Evidence classes on a real network (fails under CI=true without an engine): after `hcops apply` (which
records its gate run), the sweep's evidence records make the measured controls verified; attestations.yaml
next to the spec makes AC-3/AC-4 attested; AC-5 (plain volumes) stays declared and CP-1 (no backup, no
restore drill yet) has no evidence, in the audit's JSON, in /metrics and in every report format, and Chromium
shows them so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

ATTESTATIONS = """\
attestations:
  - control: AC-3
    statement: The break-glass procedure is documented and was exercised this year.
    attestedBy: "Security officer, St Mary"
    attestedOn: 2026-01-31
    expires: 2099-01-31
    evidence: "Procedure BG-2, exercise record 2026-03"
  - control: AC-4
    statement: Operator sessions and API tokens expire after 15 minutes of inactivity.
    attestedBy: "Infrastructure lead, St Mary"
    attestedOn: 2026-01-31
    expires: 2099-01-31
"""


@pytest.fixture(scope="module")
def net(module_network: TestNetwork) -> TestNetwork:
    (module_network.root / "attestations.yaml").write_text(ATTESTATIONS)
    module_network.hcops("apply", "--yes", check=True, timeout=600)
    return module_network


def _audit_until_caught_up(net: TestNetwork) -> dict[str, Any]:
    for _ in range(10):
        proc = net.hcops("audit", "--format", "json")
        doc: dict[str, Any] = json.loads(proc.stdout)
        if doc["phi"]["caughtUp"]:
            return doc
    raise AssertionError(f"the transaction scan did not catch up: {doc['phi']}")


def test_the_sweep_records_evidence_and_classes(net: TestNetwork) -> None:
    doc = _audit_until_caught_up(net)
    ev, classes = doc["evidence"], {c["id"]: c["evidence"] for c in doc["controls"]}
    for probe in ("ports", "identity", "keyFiles", "image", "peers", "liveness", "validatorSet", "phi"):
        assert ev[probe]["measured"] is True, (probe, ev[probe])
    assert ev["storageEncryption"]["measured"] is False  # plain Docker volumes
    assert classes["AC-1"] == classes["AC-2"] == classes["PHI-1"] == classes["IN-1"] == "verified", classes
    assert classes["AC-3"] == classes["AC-4"] == "attested"
    assert classes["AC-5"] == "declared" and classes["CP-1"] == classes["DR-1"] == "none"
    assert ev["backups"]["measured"] is False and ev["restoreDrill"]["measured"] is False


def test_metrics_carry_the_evidence_class(net: TestNetwork) -> None:
    proc = net.popen("audit", "--watch", "--interval", "3s", "--format", "json", "--serve", "127.0.0.1:0")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # the address bound (a port the system picked) is printed before the first sweep starts
        listen = next(line for line in proc.stderr if line.startswith("serving /metrics")).strip().rsplit("//", 1)[1]
        for line in proc.stdout:
            if '"audit_finished"' in line:
                break
        text = urllib.request.urlopen(f"http://{listen}/metrics", timeout=5).read().decode()
    finally:
        proc.terminate()
        proc.wait(30)
    fam = {f.name: f for f in text_string_to_metric_families(text)}["hcops_control_evidence"]
    current = {s.labels["control"]: s.labels["evidence"] for s in fam.samples if s.value == 1}
    assert current["AC-1"] == "verified" and current["AC-4"] == "attested" and current["CP-1"] == "none"


def test_reports_show_each_class_and_never_pass_a_declaration(net: TestNetwork, tmp_path: Path) -> None:
    _audit_until_caught_up(net)
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("json", "md", "html")}
    for fmt, path in out.items():
        proc = net.hcops("report", "--format", fmt, "-o", str(path))
        assert proc.returncode == 0, proc.stderr
    assert "declared only" in proc.stdout and "verified" in proc.stdout
    doc = json.loads(out["json"].read_text())
    rows = {c["id"]: c for c in doc["controls"]}
    assert (rows["CP-1"]["evidence"], rows["CP-1"]["status"]) in {("none", "not-covered"), ("none", "fail")}
    assert (rows["AC-5"]["status"], rows["AC-5"]["evidence"]) == ("declared", "declared")
    assert (rows["AC-4"]["status"], rows["AC-4"]["evidence"]) == ("pass", "attested")
    assert rows["PHI-1"]["evidence"] == "verified" and rows["AC-2"]["evidence"] == "verified"
    assert not any(c["status"] == "pass" and c["evidence"] == "declared" for c in doc["controls"])
    s = doc["summary"]
    assert s["evidence"]["verified"] >= 6 and s["evidence"]["attested"] == 2 and s["declared"] >= 1
    md = out["md"].read_text()
    assert "| AC-5 |" in md and "**Evidence:**" in md and "Security officer, St Mary" in md

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        from tests.integration.requirements import missing

        missing("Debian's chromium", "chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run([chromium, *flags, "--dump-dom", out["html"].as_uri()], capture_output=True, text=True,
                         timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-control="AC-5" data-status="declared" data-evidence="declared"' in dom.stdout
    assert 'data-control="AC-4" data-status="pass" data-evidence="attested"' in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1400,1800", out["html"].as_uri()],
                   capture_output=True, timeout=120, env=env, check=True)
    assert shot.stat().st_size > 20_000
