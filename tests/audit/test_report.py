"""The compliance report: one row per catalogue control, statuses, JSON/Markdown/HTML rendering; and the
HTML opened in headless Chromium (the matrix renders, the screenshot is not blank)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from hcops.audit import catalogue
from hcops.audit.attestations import Attestations
from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.log import AuditLog
from hcops.audit.render import render, to_html
from hcops.audit.report import GateEvidence, build_report, failing
from hcops.audit.sweep import Auditor, AuditSettings
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines import EmbeddedEngine
from hcops.policy.gate import list_rules
from hcops.policy.sources import builtin_policy_dir
from tests.audit import fakes
from tests.audit.conftest import NOW
from tests.audit.test_sweep import ScriptedProvider

GATE_FINDING = {
    "id": "HC-AC3-BREAK-GLASS-MISSING",
    "severity": "medium",
    "level": "warn",
    "control": "AC-3",
    "hipaa": ["164.312(a)(2)(ii)"],
    "resource": "org/org-b",
    "message": "no break-glass contact",
    "remediation": "Set a contact.",
    "location": None,
}


def report_doc(
    plan: NetworkPlan,
    tmp_path: Path,
    *,
    down: set[str] | None = None,
    gate_findings: tuple[dict[str, Any], ...] = (GATE_FINDING,),
    encrypted: bool | None = None,
    attestations: Attestations | None = None,
    txs: dict[int, list[bytes]] | None = None,
    now: dt.datetime = NOW + dt.timedelta(minutes=1),
) -> dict[str, Any]:
    clock = [NOW]
    prov = ScriptedProvider(plan, clock)
    prov.encrypted = encrypted
    prov.chain.txs = dict(txs or {})
    log = AuditLog(tmp_path / "audit.db")
    a = Auditor(
        plan=plan,
        provider=prov,
        log=log,
        engine=EmbeddedEngine(),
        pack=load_runtime_pack(),  # type: ignore[arg-type]
        locate=plan.loaded.locate,
        settings=AuditSettings(attestations=attestations or Attestations(None)),
        clock=lambda: clock[0],
        chain_reader=fakes.chain_reader(prov.chain),
    )
    a.run()
    prov.down = down or set()
    clock[0] = NOW + dt.timedelta(seconds=30)
    a.run()
    passed = not any(f["level"] == "deny" for f in gate_findings)
    gate = GateEvidence("evaluated", "2026-11-25T12:00:00Z", passed, gate_findings)
    doc = build_report(
        plan,
        environment=None,
        log=log,
        gate=gate,
        gate_rules=list_rules(builtin_dir=builtin_policy_dir()),
        runtime_rules=list(load_runtime_pack().rules.values()),
        attestations=attestations,
        now=now,
    )
    log.close()
    return doc


def test_one_row_per_control_with_rules_and_status(plan: NetworkPlan, tmp_path: Path) -> None:
    doc = report_doc(plan, tmp_path, down={"b-val-0"})
    rows = {c["id"]: c for c in doc["controls"]}
    assert list(rows) == list(catalogue.ids())
    assert rows["CP-1"]["status"] == "fail"
    assert "HC-RT-CP1-NODE-DOWN" in {r["id"] for r in rows["CP-1"]["runtimeRules"]}
    assert rows["AC-3"]["status"] == "warning"  # only the gate's warn-level finding
    # key files measured, but storage encryption only declared (no storage facts): declared, never pass
    assert rows["AC-5"]["status"] == "declared" and rows["AC-5"]["runtimeRules"] and rows["AC-5"]["gateRules"]
    assert rows["AC-4"]["status"] == "not-covered" and rows["AC-4"]["evidence"] == "none"
    assert doc["summary"]["verdict"] == "non-compliant"
    assert doc["lastSweep"]["id"] and doc["log"]["intact"]
    org_b = next(o for o in doc["organizations"] if o["name"] == "org-b")
    assert org_b["status"] == "fail" and org_b["findings"]["high"] >= 1
    assert org_b["nodes"][0]["up"] is False
    assert doc["incidents"]["open"] and doc["history"][0]["sweeps"] == 2
    assert doc["summary"]["fail"] >= 1 and doc["summary"]["warning"] == 1


def test_warn_only_controls_are_warnings_not_failures(plan: NetworkPlan, tmp_path: Path) -> None:
    digest = {**GATE_FINDING, "id": "HC-IN1-IMAGE-NO-DIGEST", "control": "IN-1", "resource": "node/a-val-0",
              "severity": "high", "message": "image without digest"}
    doc = report_doc(plan, tmp_path, gate_findings=(GATE_FINDING, digest))
    rows = {c["id"]: c for c in doc["controls"]}
    assert rows["AC-3"]["status"] == "warning" and rows["IN-1"]["status"] == "warning"
    assert doc["summary"]["fail"] == 0 and doc["summary"]["warning"] == 2
    assert doc["summary"]["verdict"] == "compliant"
    org_b = next(o for o in doc["organizations"] if o["name"] == "org-b")
    assert org_b["status"] == "warning"
    assert "| AC-3 |" in render(doc, "md") and "WARNING" in render(doc, "md")
    assert 'data-control="AC-3" data-status="warning"' in to_html(doc)


def test_deny_findings_fail_their_control(plan: NetworkPlan, tmp_path: Path) -> None:
    deny = {**GATE_FINDING, "level": "deny", "severity": "medium"}
    doc = report_doc(plan, tmp_path, gate_findings=(deny,))
    assert {c["id"]: c for c in doc["controls"]}["AC-3"]["status"] == "fail"
    assert doc["summary"]["verdict"] == "non-compliant"


def test_runtime_denies_below_fail_on_are_warnings() -> None:
    medium = {"level": "deny", "severity": "medium", "source": "runtime"}
    assert not failing(medium, "high") and failing(medium, "medium")
    assert failing({**medium, "severity": "high"}, "high")
    assert failing({**medium, "source": "gate"}, "high")  # any gate deny fails the gate
    assert not failing({**medium, "level": "warn", "severity": "high"}, "low")


def test_formats(plan: NetworkPlan, tmp_path: Path) -> None:
    doc = report_doc(plan, tmp_path)
    md = render(doc, "md")
    assert all(f"| {cid} |" in md for cid in catalogue.ids())
    assert '"kind": "ComplianceReport"' in render(doc, "json")
    html = to_html(doc)
    assert html.count('class="control-row"') == len(catalogue.ids())
    # self-contained: nothing is fetched (URLs may appear as text: attestation evidence, node addresses)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|<script|<link|@import|url\(""", html)
    assert "priv_validator_key.json" not in html


def _png_is_not_blank(path: Path) -> bool:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    sample = {raw[y * stride + 1 : (y + 1) * stride][::97] for y in range(0, height, max(1, height // 50))}
    return width > 0 and len(sample) > 5


@pytest.mark.integration
def test_html_renders_in_headless_chromium(plan: NetworkPlan, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        from tests.integration.requirements import missing

        missing("Debian's chromium", "chromium")
    page = tmp_path / "report.html"
    page.write_text(to_html(report_doc(plan, tmp_path, down={"c-val-0"})))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, env=env
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for cid in catalogue.ids():
        assert f'data-control="{cid}"' in dom.stdout
    assert 'data-control="AC-3" data-status="warning"' in dom.stdout  # warn-only: not failing
    assert 'data-control="CP-1" data-status="fail"' in dom.stdout
    # a control only the spec speaks for is shown as declared, not as passing
    assert 'data-control="AC-5" data-status="declared" data-evidence="declared"' in dom.stdout
    assert 'data-control="AU-1" data-status="pass" data-evidence="verified"' in dom.stdout
    assert 'id="evidence-legend"' in dom.stdout and "only the spec says so" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
        env=env,
        check=True,
    )
    assert shot.stat().st_size > 20_000 and _png_is_not_blank(shot)
