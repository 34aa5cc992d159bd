"""TLS on the RPC with pods that really run (a control plane plus one kubelet node, as in
test_kubernetes_node.py): `hcops apply` waits for every validator to sign over HTTPS verified against the
network CA, `hcops status` shows every node's measured TLS (handshake verified, plain HTTP refused) read
through the API server's port-forward to the pod, and the sweep's TS-2 is verified from those facts.

Opt-in like the other pod tests: ``HCOPS_K8S_NODE=1`` (`make test` and CI set it)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.k8s_harness import (
    KubeCluster,
    KubeNetwork,
    KubeNode,
    cleanup,
    running_network,
    shared_node_cluster,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[KubeCluster, KubeNode]:
    return shared_node_cluster(tmp_path_factory.mktemp("kube-node"), request)


@pytest.fixture(scope="module")
def net(cluster: tuple[KubeCluster, KubeNode], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeNetwork]:
    kube, node = cluster
    n = running_network(kube, node, tmp_path_factory.mktemp("tls-node"), "tlsnode")
    n.write(
        "  chain: {blockInterval: 500ms}",
        "  defaults: {resources: {cpu: 250m, memory: 256Mi}, storage: {size: 1Gi, encrypted: true}}",
        "  network:",
        "    rpc: {exposure: internal, tls: true}",
        storageClass="encrypted-ssd",
    )
    try:
        proc = n.hcops("apply", "--yes", timeout=420)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "PRIVATE KEY" not in proc.stdout + proc.stderr
        yield n
    finally:
        cleanup(kube, n.name)


def _json(net: KubeNetwork, *argv: str) -> dict[str, Any]:
    proc = net.hcops(*argv)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_status_measures_verified_https_on_every_pod(net: KubeNetwork) -> None:
    doc = _json(net, "status", "-o", "json")
    now = dt.datetime.now(dt.UTC)
    assert [n["name"] for n in doc["nodes"]] == [n.name for n in net.plan().nodes]
    for node in doc["nodes"]:
        assert node["state"] == "running" and node["height"] >= 3, node
        t = node["rpc"]["tls"]
        assert t["enabled"] and t["handshake"] and t["verified"], (node["name"], t)
        assert t["plaintextRefused"] is True, (node["name"], t)
        assert t["issuer"].startswith(f"CN=hcops RPC CA of network {net.name}"), t
        left = dt.datetime.fromisoformat(t["notAfter"].replace("Z", "+00:00")) - now
        assert dt.timedelta(days=360) < left <= dt.timedelta(days=366), t


def test_the_sweep_verifies_transmission_security_from_the_pods(net: KubeNetwork) -> None:
    doc = _json(net, "audit", "--format", "json")
    transmission = [f for f in doc["findings"] if f["control"] in ("TS-1", "TS-2")]
    assert transmission == [], transmission
    classes = {c["id"]: c["evidence"] for c in doc["controls"]}
    assert classes["TS-2"] == "verified", classes
    assert "PRIVATE KEY" not in json.dumps(doc)
