"""The sealed gate, through the real CLI in a subprocess: nothing a user supplies (data, policies, the
built-in pack's folder) can switch the gate off, and an engine asked for unbounded work stops at its
limits with exit 2."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hcops.policy.seal import REGENERATE, build_manifest, load_manifest
from hcops.resources import bundled
from tests.conftest import SpecDir

ROOT = Path(__file__).resolve().parents[2]

# Public RPC without TLS, unsafe RPC, PEX on: several deny findings from different packages.
UNSAFE = """\
  network:
    rpc: {exposure: public, tls: false, unsafe: true}
    p2p: {pex: true}
"""

RULE_META = """\
# METADATA
# title: t
# description: t
# custom:
#   id: {id}
#   control: AC-1
#   hipaa: ["164.312(a)(1)"]
#   severity: high
#   remediation: none
"""


def hcops(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("HCOPS_POLICY_DIR", "HCOPS_OPA_URL")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "hcops", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.fixture
def unsafe(spec_dir: SpecDir, state_dir: Path) -> SpecDir:
    spec_dir.write(spec_dir.spec.read_text().replace("  organizations:\n", UNSAFE + "  organizations:\n", 1))
    return spec_dir


def check(d: SpecDir, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return hcops("check", "-f", str(d.spec), *args, cwd=d.root,
                 env={"HCOPS_STATE_DIR": str(d.root / "state"), **(env or {})})


def deny_count(d: SpecDir, *args: str) -> int:
    proc = check(d, "--format", "json", *args)
    assert proc.returncode == 1, proc.stderr
    return int(json.loads(proc.stdout)["summary"]["deny"])


def test_baseline_denies(unsafe: SpecDir) -> None:
    assert deny_count(unsafe) >= 4


def test_data_cannot_empty_the_builtin_packages(unsafe: SpecDir) -> None:
    packages = load_manifest().gate
    doc = {"hcops": {"hipaa": {p.rsplit(".", 1)[1]: {"deny": [], "warn": []} for p in packages}}}
    (unsafe.root / "off.json").write_text(json.dumps(doc))
    proc = check(unsafe, "--data", "off.json")
    assert proc.returncode == 2
    assert "off.json" in proc.stderr and "data.hcops is reserved" in proc.stderr


def test_data_cannot_override_a_helper(unsafe: SpecDir) -> None:
    (unsafe.root / "tls.yaml").write_text("acme: {x: 1}\nhcops:\n  hipaa:\n    lib:\n      rpc_tls: true\n")
    proc = check(unsafe, "--data", "tls.yaml")
    assert proc.returncode == 2
    assert "tls.yaml:2:1" in proc.stderr  # the offending key, with its position


@pytest.mark.parametrize("package", ["hcops.hipaa.lib", "data.hcops.hipaa.lib", 'hcops["hipaa"].lib', "hcops",
                                     "hcops_engine_entry"])
def test_user_policy_cannot_extend_a_builtin_package(unsafe: SpecDir, package: str) -> None:
    pol = unsafe.root / "pol"
    pol.mkdir()
    (pol / "weaken.rego").write_text(f"package {package}\n\nimport rego.v1\n\nrpc_tls if true\n")
    proc = check(unsafe, "--policy", "pol")
    assert proc.returncode == 2
    assert "pol/weaken.rego:1:1" in proc.stderr and "reserved for the built-in policy pack" in proc.stderr


def test_user_policy_under_its_own_package_adds_findings(unsafe: SpecDir) -> None:
    base = deny_count(unsafe)
    pol = unsafe.root / "pol"
    pol.mkdir()
    (pol / "extra.rego").write_text("package acme.extra\n\nimport rego.v1\n\n" + RULE_META.format(id="ACME-1")
                                    + 'deny contains {"id": "ACME-1", "msg": "always"} if true\n')
    assert deny_count(unsafe, "--policy", "pol") == base + 1


@pytest.mark.parametrize("content", [None, "notes.txt", "empty.rego"])
def test_empty_or_wrong_policy_dir_fails_closed(unsafe: SpecDir, content: str | None) -> None:
    pack = unsafe.root / "pack"
    pack.mkdir()
    if content == "notes.txt":
        (pack / content).write_text("package hcops.hipaa.x\n")
    elif content == "empty.rego":
        (pack / content).write_text("package hcops.hipaa.empty\n")
    proc = check(unsafe, env={"HCOPS_POLICY_DIR": str(pack)})
    assert proc.returncode == 2, proc.stdout
    assert "fails closed" in proc.stderr and "no built-in rule was evaluated" in proc.stderr


def test_pack_missing_a_file_fails_closed(unsafe: SpecDir) -> None:
    pack = unsafe.root / "pack"
    shutil.copytree(bundled("policies"), pack)
    (pack / "transmission.rego").unlink()
    proc = check(unsafe, env={"HCOPS_POLICY_DIR": str(pack)})
    assert proc.returncode == 2
    assert "hcops.hipaa.transmission of the shipped pack was not evaluated" in proc.stderr


def test_pack_missing_a_rule_fails_closed(unsafe: SpecDir) -> None:
    pack = unsafe.root / "pack"
    shutil.copytree(bundled("policies"), pack)
    rego = pack / "transmission.rego"
    text = rego.read_text()
    ids = load_manifest().gate["hcops.hipaa.transmission"]
    rego.write_text(text.replace(ids[0], "HC-RENAMED"))
    proc = check(unsafe, env={"HCOPS_POLICY_DIR": str(pack)})
    assert proc.returncode == 2
    assert f"lacks 1 rule(s) of the shipped pack: {ids[0]}" in proc.stderr


def test_a_modified_but_complete_pack_is_flagged(unsafe: SpecDir) -> None:
    pack = unsafe.root / "pack"
    shutil.copytree(bundled("policies"), pack)
    (pack / "lib.rego").write_text((pack / "lib.rego").read_text() + "\n# a comment\n")
    proc = check(unsafe, "--format", "json", env={"HCOPS_POLICY_DIR": str(pack)})
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["pack"]["shipped"] is False
    assert "is not the one shipped with this hcops" in proc.stderr


def test_every_report_carries_the_pack(unsafe: SpecDir) -> None:
    manifest = load_manifest()
    doc = json.loads(check(unsafe, "--format", "json").stdout)
    assert doc["pack"]["digest"] == manifest.gate_digest and doc["pack"]["shipped"] is True
    assert doc["pack"]["rulesEvaluated"] == {p: len(ids) for p, ids in manifest.gate.items()}
    sarif = json.loads(check(unsafe, "--format", "sarif").stdout)
    assert sarif["runs"][0]["properties"]["pack"]["digest"] == manifest.gate_digest
    table = check(unsafe)
    assert f"pack {manifest.gate_digest[:12]}" in table.stdout
    db = unsafe.root / "state" / "small-net" / "audit.db"
    if not db.exists():
        db = next((unsafe.root / "state").rglob("*.db"))
    with sqlite3.connect(db) as conn:
        bodies = [json.loads(b) for (b,) in conn.execute("SELECT body FROM records WHERE kind = 'gate_run'")]
    assert bodies and all(b["pack"]["digest"] == manifest.gate_digest for b in bodies)


def test_engine_memory_limit(unsafe: SpecDir) -> None:
    pol = unsafe.root / "pol"
    pol.mkdir()
    (pol / "bomb.rego").write_text("package acme.bomb\n\nimport rego.v1\n\n" + RULE_META.format(id="ACME-BOMB")
                                   + 'deny contains {"id": "ACME-BOMB", "msg": "n"} if count(numbers.range(1, 100000000)) > 0\n')
    proc = check(unsafe, "--policy", "pol", "--engine", "embedded", "--engine-memory", "300")
    assert proc.returncode == 2
    assert "memory limit of 300 MB" in proc.stderr and "bad_alloc" not in proc.stderr
    # Whatever engine evaluates, the gate fails closed (exit 2), never passes.
    assert check(unsafe, "--policy", "pol", "--engine-memory", "300").returncode == 2


def test_engine_time_limit(unsafe: SpecDir) -> None:
    pol = unsafe.root / "pol"
    pol.mkdir()
    (pol / "slow.rego").write_text("package acme.slow\n\nimport rego.v1\n\n" + RULE_META.format(id="ACME-SLOW")
                                   + 'deny contains {"id": "ACME-SLOW", "msg": "n"} if {\n'
                                   "\tsome i in numbers.range(1, 3000)\n\tsome j in numbers.range(1, 3000)\n"
                                   "\ti * j == -1\n}\n")
    proc = check(unsafe, "--policy", "pol", "--engine", "embedded", "--engine-timeout", "1")
    assert proc.returncode == 2
    assert "time limit of 1 s" in proc.stderr


def test_shipped_manifest_is_current() -> None:
    current = build_manifest(bundled("policies"))
    shipped = json.loads((bundled("policies") / "pack.json").read_text())
    assert shipped == current, f"policies/pack.json is stale; regenerate it: {REGENERATE}"
