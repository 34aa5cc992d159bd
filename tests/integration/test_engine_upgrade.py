"""Engine upgrades on the real engine, through the CLI: the example (4 validators in 4 organizations + 1
observer, 300 ms blocks) runs CometBFT 0.38.17; `hcops apply` of the spec naming 0.38.19 (built from source
by `scripts/bootstrap image-next`) replaces the nodes one at a time under the quorum rules while the chain
keeps committing, every node then runs and reports the new version, every validator signs, the lock file
records the version and the audit log the upgrade. A change across the minor series is refused before
anything is touched."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hcops.audit.log import AuditLog
from tests.integration.requirements import missing
from tests.integration.test_lifecycle_consortium import MAX_GAP, heights_and_gaps, lock, rpc
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

OLD, NEW = "0.38.17", "0.38.19"
CHAIN_LINE = re.compile(r"^  chain: \{(?P<body>[^}]*)\}$", re.M)


def set_engine(net: TestNetwork, version: str) -> None:
    """Name ``version`` (and hcops' image of it) in the test overlay's chain section."""
    overlay = net.root / "environments" / "test.yaml"
    text = overlay.read_text()
    line = f'  chain: {{blockInterval: {net.block_interval}, version: "{version}", image: hcops/cometbft:{version}}}'
    overlay.write_text(CHAIN_LINE.sub(line, text, count=1))


def images(docker_engine: Any, net: TestNetwork) -> dict[str, str]:
    found = docker_engine.containers.list(all=True, filters={"label": f"hcops.network={net.name}"})
    return {c.labels["hcops.node"]: c.attrs["Config"]["Image"] for c in found
            if c.labels.get("hcops.component", "node") == "node"}


@pytest.fixture(scope="module")
def net(module_network: TestNetwork, docker_engine: Any) -> TestNetwork:
    from docker.errors import ImageNotFound

    try:
        docker_engine.images.get(f"hcops/cometbft:{NEW}")
    except ImageNotFound:
        missing(f"the node image hcops/cometbft:{NEW}", "image-next")
    set_engine(module_network, OLD)
    module_network.hcops("apply", "--yes", check=True, timeout=600)
    return module_network


def test_a_patch_upgrade_rolls_through_with_every_height_committed(net: TestNetwork, docker_engine: Any) -> None:
    assert set(images(docker_engine, net).values()) == {f"hcops/cometbft:{OLD}"}
    assert lock(net)["engineVersion"] == OLD
    set_engine(net, NEW)
    planned = net.hcops("plan", check=True).stdout
    assert "image" in planned, planned
    start = rpc(net).status().height
    proc = net.hcops("apply", "--yes", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    end = rpc(net).status().height
    assert end > start
    _, worst = heights_and_gaps(net, start, end)
    assert worst < MAX_GAP, f"the chain stalled for {worst:.1f} s during the upgrade"

    assert set(images(docker_engine, net).values()) == {f"hcops/cometbft:{NEW}"}
    for i in range(5):
        assert rpc(net, i).status().version == NEW, f"node {i} does not run {NEW}"
    validators = {v["address"] for v in lock(net)["genesis"]["validators"]}
    # A commit carries the precommits that arrived in time, so one block may lack a live validator's: each
    # must be in one of the last three.
    recent = set().union(*(rpc(net).commit(h).signers for h in range(end - 2, end + 1)))
    assert validators <= recent, f"not signing after the upgrade: {validators - recent}"
    assert lock(net)["engineVersion"] == NEW

    with AuditLog(net.state_dir / net.name / "audit.db", create=False) as log:
        upgrades = log.records("engine_upgrade")
    assert len(upgrades) == 1, upgrades
    body = upgrades[0].body
    assert (body["from"], body["to"], body["image"]) == (OLD, NEW, [f"hcops/cometbft:{NEW}"])
    assert sorted(body["replaced"]) == sorted(images(docker_engine, net)), body
    assert all(isinstance(h, int) and h >= start for h in body["heights"].values()), body


def test_a_change_across_the_minor_series_is_refused_before_anything_moves(
    net: TestNetwork, docker_engine: Any
) -> None:
    before = {c.name: c.id for c in docker_engine.containers.list(filters={"label": f"hcops.network={net.name}"})}
    lock_before = json.dumps(lock(net), sort_keys=True)
    set_engine(net, "1.0.1")
    proc = net.hcops("apply", "--yes", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refusing the upgrade" in proc.stderr and "0.38.x series" in proc.stderr, proc.stderr
    assert "stop every validator at one agreed height" in proc.stderr
    after = {c.name: c.id for c in docker_engine.containers.list(filters={"label": f"hcops.network={net.name}"})}
    assert after == before
    assert json.dumps(lock(net), sort_keys=True) == lock_before
