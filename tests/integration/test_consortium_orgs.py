"""A consortium run across organizations on the real engine, through the CLI: 4 organizations each create
their keys in their own state folder (`hcops org init`), one assembles the genesis from the 4 join requests,
and each applies its own nodes (`hcops apply --org`) from its own folder, which holds its own private keys
only. The first two members' nodes cannot commit (2/3 of the power or less), the third's apply sees blocks,
the last one's blocks signed by every validator; then each member destroys its own nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hcops.providers.rpc import RpcClient
from tests.integration.test_lifecycle_consortium import secrets
from tests.providers.docker_support import TestNetwork, leftovers

pytestmark = pytest.mark.integration

ORGS = {  # organization -> its nodes, in spec order (the example without its regulator, an observer added)
    "st-mary-hospital": ["stmary-val-0"],
    "northside-clinic": ["northside-val-0"],
    "bluecross-payer": ["bluecross-val-0"],
    "cityrx-pharmacy": ["cityrx-val-0", "cityrx-obs-0"],
}
NODES = [n for nodes in ORGS.values() for n in nodes]
CITYRX_VAL = "        - {name: cityrx-val-0, role: validator, power: 10}\n"


def four_organizations(net: TestNetwork) -> None:
    text = net.spec.read_text()
    regulator = text[text.index("    - name: state-health-dept"):text.index("  network:\n")]
    net.spec.write_text(text.replace(regulator, "").replace(
        CITYRX_VAL, CITYRX_VAL + "        - {name: cityrx-obs-0, role: observer}\n"))


def hcops(net: TestNetwork, command: str, *argv: str, org: str | None = None,
          timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``hcops COMMAND -f SPEC --env test [--state-dir <org's folder>] ARGV`` (COMMAND may be two words)."""
    state = ["--state-dir", str(net.root / f"state-{org}")] if org else []
    cmd = [sys.executable, "-m", "hcops", *command.split(), "-f", str(net.spec), "--env", "test", *state, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=net.root,
                          env={**os.environ, "COLUMNS": "200"})
    if proc.returncode != 0:
        raise AssertionError(f"{command} {' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def key_owners(state: Path) -> set[str]:
    """The nodes whose private key files a state folder holds."""
    return {f.parent.name for f in state.rglob("*.json")
            if f.name in ("node_key.json", "priv_validator_key.json")}


def test_each_organization_applies_its_own_nodes(make_network: Any, docker_engine: Any) -> None:
    net = make_network("orgs", nodes=len(NODES))
    four_organizations(net)
    for org in ORGS:
        hcops(net, "org init", "--org", org, org=org)
    hcops(net, "genesis assemble", *[str(net.root / f"join-{org}.json") for org in ORGS])
    lock_file = net.root / "network.test.lock.json"
    lock = json.loads(lock_file.read_text())
    assert [n["name"] for n in lock["nodes"]] == NODES
    folders = {org: net.root / f"state-{org}" for org in ORGS}
    every_secret = {org: secrets(folder) for org, folder in folders.items()}

    def only_own_keys() -> None:
        for org, folder in folders.items():
            assert key_owners(folder) == set(ORGS[org]), org
            others = [s for o, keys in every_secret.items() if o != org for s in keys]
            text = "".join(f.read_text(errors="replace") for f in folder.rglob("*") if f.is_file())
            assert not [s for s in others if s in text], f"{org}'s folder holds another member's key"

    only_own_keys()
    outputs = {}
    for org in ORGS:
        outputs[org] = hcops(net, "apply", "--org", org, "--yes", org=org).stderr
        only_own_keys()  # apply created no key, and no member's folder got another's
    text = lock_file.read_text()
    assert json.loads(text) == lock  # the consortium's record is read by each member, never rewritten
    assert not [s for keys in every_secret.values() for s in keys if s in text]

    first, second, third, last = (outputs[o] for o in ORGS)
    assert "10 of 40 voting power online" in first and "not waiting for blocks" in first
    assert "20 of 40 voting power online" in second and "not waiting for blocks" in second
    assert "30 of 40 voting power online" in third and "blocks signed by bluecross-val-0" in third
    assert "40 of 40 voting power online" in last and "blocks signed by every validator" in last

    # Each member's containers carry its organization; all are on the one consortium network.
    containers = docker_engine.containers.list(filters={"label": f"hcops.network={net.name}"})
    assert {c.labels["hcops.node"]: c.labels["hcops.org"] for c in containers} == {
        n: org for org, nodes in ORGS.items() for n in nodes}

    # Read the signatures from the chain: a recent commit carries every validator's.
    validators = {n["validatorAddress"] for n in lock["nodes"] if n["power"]}
    rpc = RpcClient(f"http://127.0.0.1:{net.port_base + NODES.index('stmary-val-0')}", timeout=3, attempts=3)
    height = rpc.status().height
    signed = [h for h in range(max(1, height - 8), height + 1) if rpc.commit(h).signers >= validators]
    assert len(validators) == 4 and signed, f"no commit up to {height} carries all 4 signatures"

    status = json.loads(hcops(net, "status", "--org", "cityrx-pharmacy", "-o", "json", org="cityrx-pharmacy").stdout)
    assert [n["name"] for n in status["nodes"]] == ORGS["cityrx-pharmacy"]
    # Each member audits its own nodes, with its own state folder and audit log; the validator set the
    # chain reports is judged against the whole consortium's (the other members' validators are not "unknown").
    for org in ("st-mary-hospital", "cityrx-pharmacy"):
        sweep = json.loads(hcops(net, "audit", "--org", org, "--format", "json", org=org).stdout)
        assert sorted(n["name"] for n in sweep["nodes"]) == sorted(ORGS[org]), org
        assert sweep["passed"] and not [f for f in sweep["findings"] if f["severity"] == "high"], sweep["findings"]
        assert sweep["anchor"]["ok"] and sweep["anchor"]["node"] in ORGS[org]
        assert list((net.root / f"state-{org}").rglob("audit*")), f"{org}'s audit log is not in its folder"
    # Applying again changes nothing; a member whose state folder is lost is refused, without touching
    # anything and without asking for any other member's key.
    assert "no changes" in hcops(net, "apply", "--org", "st-mary-hospital", "--yes", org="st-mary-hospital").stdout
    lost = subprocess.run([sys.executable, "-m", "hcops", "apply", "-f", str(net.spec), "--env", "test", "--state-dir",
                           str(net.root / "lost"), "--org", "northside-clinic", "--yes"],
                          capture_output=True, text=True, timeout=120, cwd=net.root)
    assert lost.returncode == 2, lost.stdout + lost.stderr
    assert "records node(s) northside-val-0, but their keys are not in the state folder" in lost.stderr
    assert not key_owners(net.root / "lost")

    # Each member removes its own nodes; the shared network goes with the last member's containers.
    for i, org in enumerate(ORGS):
        out = hcops(net, "destroy", "--org", org, "--prune-volumes", org=org).stderr
        assert ("keeping network" in out) == (i < len(ORGS) - 1), out
        left = leftovers(docker_engine, net.name)
        assert not [item for item in left if any(n in item for n in ORGS[org])], left
    assert leftovers(docker_engine, net.name) == [] and lock_file.exists()
