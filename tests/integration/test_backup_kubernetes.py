"""Backups, restores and restore drills on a real single-node cluster (kube-apiserver, kubelet, containerd),
through the CLI, against the example's four validators and observer.

Ordered steps on one network: an observer backup (no key or signing state inside); a validator backup
refused while another validator's StatefulSet is at 0; a validator backup; that validator's claim deleted
(a lost disk) and the validator restored from its backup while a watcher proves the chain never stops
committing: it gets a new claim, catches up and signs again, and the next apply takes the restore's config
back; a drill passes and leaves no helper or scratch object behind. About 3 minutes.

    HCOPS_K8S_NODE=1 python3 -m pytest tests/integration/test_backup_kubernetes.py
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.providers.kubernetes.api import KubeApi, Ref
from hcops.providers.kubernetes.backup import KubernetesBackend
from hcops.providers.kubernetes.provider import KubernetesProvider
from hcops.providers.kubernetes.rpc import ProxiedRpc
from hcops.providers.rpc import RpcClient
from tests.integration.k8s_harness import (
    NODE_IMAGES,
    KubeCluster,
    KubeNetwork,
    KubeNode,
    cleanup,
    running_network,
    shared_node_cluster,
)
from tests.integration.test_backup_docker import HeightWatcher, wait_signing

pytestmark = pytest.mark.integration

OBSERVER = "state-obs-0"
VALIDATOR = "northside-val-0"
WATCHED = "stmary-val-0"
OTHER = "cityrx-val-0"


def _image_has_archive() -> None:
    """The helper pods run the node image's `hcops-probe archive`: an image built before it existed fails
    every copy, so say so up front (a stale image is a bootstrap problem, never a skip)."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "/usr/local/bin/hcops-probe",
                           NODE_IMAGES[0], "archive"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--token-file" in proc.stderr, \
        f"{NODE_IMAGES[0]} has no `hcops-probe archive`: run scripts/bootstrap image ({proc.stderr.strip()})"


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[KubeCluster, KubeNode]:
    return shared_node_cluster(tmp_path_factory.mktemp("kube-node"), request)


@pytest.fixture(scope="module")
def net(cluster: tuple[KubeCluster, KubeNode], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeNetwork]:
    _image_has_archive()
    kube, node = cluster
    n = running_network(kube, node, tmp_path_factory.mktemp("net"), "bkp")
    try:
        proc = n.hcops("apply", "--yes", timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr + _volumes(kube)
        yield n
    finally:
        cleanup(kube, n.name)


def _volumes(kube: KubeCluster) -> str:
    """Claims and volumes with their phases, for a failure message."""
    out = []
    for path in ("/api/v1/persistentvolumes", "/api/v1/persistentvolumeclaims"):
        _, body = kube.get(path)
        for i in json.loads(body).get("items") or ():
            ref = (i["spec"].get("claimRef") or {}).get("name") or i["spec"].get("volumeName")
            out.append(f"{i['kind'] if 'kind' in i else path.rsplit('/', 1)[-1]} {i['metadata']['name']} "
                       f"{i['status'].get('phase')} -> {ref}")
    return "\n" + "\n".join(out)


def _api(net: KubeNetwork) -> KubeApi:
    return KubernetesProvider(kubeconfig=net.cluster.kubeconfig).api(net.plan())


def _rpc(net: KubeNetwork, node: str) -> RpcClient:
    return ProxiedRpc(_api(net), net.name, f"{node}-0", timeout=3.0, attempts=2)


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _records(net: KubeNetwork, kind: str) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(net.state_dir / net.name / "audit.db") as c:
        return [json.loads(b) for (b,) in c.execute("SELECT body FROM records WHERE kind = ? ORDER BY seq", (kind,))]


def _decrypted_names_and_bytes(net: KubeNetwork, record: dict[str, Any]) -> tuple[list[str], bytes]:
    import io
    import tarfile

    from hcops.backup.archive import decrypt_archive
    from hcops.backup.crypto import load_key

    out = io.BytesIO()
    decrypt_archive(Path(record["path"]), load_key(net.state_dir / net.name, create=False), record["sha256"], out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
        return tar.getnames(), blob


def test_observer_backup_through_a_helper_pod_is_keyless(net: KubeNetwork) -> None:
    t0 = time.monotonic()
    made = _json(net.hcops("backup", "-o", "json", timeout=300))
    assert [m["node"] for m in made] == [OBSERVER]
    rec = _records(net, "backup")[-1]
    assert rec["ok"] and rec["provider"] == "kubernetes" and rec["height"] > 1 and rec["sha256"] == made[0]["sha256"]
    names, blob = _decrypted_names_and_bytes(net, rec)
    assert any(n.startswith("data/blockstore.db/") for n in names) and "data/state.db" in names, names
    assert not [n for n in names if "priv_validator" in n or "key" in n or "cs.wal" in n], names
    for node in (WATCHED, VALIDATOR):  # no validator's private key, in any form, is in the data
        doc = json.loads((net.state_dir / net.name / "keys" / node / "priv_validator_key.json").read_bytes())
        secret = doc["priv_key"]["value"]
        assert secret.encode() not in blob and base64.b64decode(secret) not in blob
    _no_leftovers(net)
    print(f"observer backup: {time.monotonic() - t0:.1f} s")


def _no_leftovers(net: KubeNetwork) -> None:
    backend = KubernetesBackend(net.plan(), _api(net))
    deadline = time.monotonic() + 30
    while (left := backend.helper_leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)  # deleted at once; a pod's deletion completes after its grace period
    assert not left


def _wait_signing(net: KubeNetwork, node: str, timeout: float = 120) -> None:
    wait_signing(_rpc(net, WATCHED), net.state_dir / net.name, node, timeout)


def test_validator_backup_is_refused_while_another_validator_is_down(net: KubeNetwork) -> None:
    plan = net.plan()
    backend = KubernetesBackend(plan, _api(net))
    other = plan.node(OTHER)
    backend.stop(other)  # its StatefulSet at 0: hcops must count it as down
    try:
        proc = net.hcops("backup", "--node", VALIDATOR)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "refusing to stop" in proc.stderr and "2/3" in proc.stderr, proc.stderr
    finally:
        backend.start(other)
    assert _records(net, "backup")[-1]["ok"] is False
    assert backend.running(plan.node(VALIDATOR))  # refused before anything was stopped
    _wait_signing(net, OTHER)
    deadline = time.monotonic() + 60  # and its pod reports its container running: the next backup counts on it
    while not backend.running(plan.node(OTHER)):
        assert time.monotonic() < deadline, f"{OTHER}'s pod: {backend._pod(plan.node(OTHER))}"
        time.sleep(0.5)


def test_lost_claim_of_a_validator_is_restored_without_the_chain_stopping(
    net: KubeNetwork, cluster: tuple[KubeCluster, KubeNode]
) -> None:
    _, node = cluster
    made = _json(net.hcops("backup", "--node", VALIDATOR, "-o", "json", timeout=300))
    assert made[0]["node"] == VALIDATOR and made[0]["signing_state"]["height"] > 0
    _wait_signing(net, VALIDATOR)
    api = _api(net)
    claim = Ref("v1", "PersistentVolumeClaim", net.name, f"home-{VALIDATOR}-0")
    old_uid = api.get(claim)["metadata"]["uid"]  # type: ignore[index]
    node.make_volumes(1, "1Gi", "encrypted-ssd")  # the new disk (this cluster has no provisioner)
    t0 = time.monotonic()
    with HeightWatcher(_rpc(net, WATCHED)) as watch:
        api.delete(claim)  # the disk is lost: the claim goes once the node's pod stops
        proc = net.hcops("restore", "--node", VALIDATOR, "--from", made[0]["id"], timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    seconds = time.monotonic() - t0
    assert watch.samples > 20 and watch.longest < 15.0, f"the chain stalled for {watch.longest:.1f} s"
    rec = _records(net, "restore")[-1]
    assert rec["ok"] and rec["node"] == VALIDATOR and rec["backupId"] == made[0]["id"]
    assert rec["signingState"]["height"] >= rec["lastSignedBefore"] >= made[0]["height"]
    assert rec["signedHeights"] and min(rec["signedHeights"]) > rec["signingState"]["height"]
    assert rec["doubleSignCheckHeight"] == 10
    new = api.get(claim)
    assert new is not None and new["metadata"]["uid"] != old_uid and new["status"]["phase"] == "Bound"
    cm = api.get(Ref("v1", "ConfigMap", net.name, f"{VALIDATOR}-config"))
    assert cm is not None and "double_sign_check_height = 10" in cm["data"]["config.toml"]
    _no_leftovers(net)
    _wait_signing(net, VALIDATOR, timeout=30)
    top = _rpc(net, WATCHED).status().height
    for h in range(max(1, rec["chainHeightAtStop"] - 5), top + 1):  # no double-sign evidence was committed
        assert _rpc(net, WATCHED).call("block", height=h)["block"]["evidence"]["evidence"] in ([], None), h
    print(f"restore: {seconds:.1f} s, longest stall {watch.longest:.1f} s")
    # The restore's config is the only difference from the plan, and the next apply writes the plan's back
    # without restarting the node (a ConfigMap mounted by subPath is read at container start only).
    pending = _json(net.hcops("plan", "-o", "json"))
    changed = [c for c in pending["changes"] if c["action"] != "unchanged"]
    assert len(changed) == 1 and changed[0]["kind"] == "ConfigMap", changed
    assert changed[0]["name"].endswith(f"{VALIDATOR}-config"), changed
    proc = net.hcops("apply", "--yes", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = net.hcops("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_drill_passes_in_an_isolated_pod_that_is_removed(net: KubeNetwork) -> None:
    t0 = time.monotonic()
    proc = net.hcops("drill", "restore", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drill = _records(net, "drill")[-1]
    assert drill["ok"] and drill["provider"] == "kubernetes"
    assert drill["reachedHeight"] >= 1 and len(drill["heightsChecked"]) >= 2
    _no_leftovers(net)
    print(f"drill: {time.monotonic() - t0:.1f} s")
