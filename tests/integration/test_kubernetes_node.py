"""The Kubernetes provider on a cluster that runs pods: a control plane plus one kubelet node (containerd
and CNI plugins from Debian, a locally built pause image, the node image from the Docker engine).
apply waits until every validator signs blocks, read through the API server's pod proxy; status reports
heights and peers; destroy stops everything.

Opt-in: ``HCOPS_K8S_NODE=1`` after ``scripts/bootstrap kube-node`` (`make test` and CI set it).

    HCOPS_K8S_NODE=1 python3 -m pytest tests/integration/test_kubernetes_node.py "tests/providers/test_contract.py"
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hcops.progress import RecordingReporter
from hcops.providers.base import ApplyOptions
from hcops.providers.kubernetes.provider import KubernetesProvider
from tests.integration.k8s_harness import (
    KubeCluster,
    KubeNetwork,
    KubeNode,
    cleanup,
    leftovers,
    running_network,
    shared_node_cluster,
)

pytestmark = pytest.mark.integration

NODES = 5  # the example: four validators and an observer


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[KubeCluster, KubeNode]:
    return shared_node_cluster(tmp_path_factory.mktemp("kube-node"), request)


@pytest.fixture(scope="module")
def net(
    cluster: tuple[KubeCluster, KubeNode], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeNetwork]:
    kube, node = cluster
    n = running_network(kube, node, tmp_path_factory.mktemp("net"), "node")
    yield n
    cleanup(kube, n.name)


def test_apply_waits_for_every_validator_to_sign(
    cluster: tuple[KubeCluster, KubeNode], net: KubeNetwork
) -> None:
    kube, _ = cluster
    prov = KubernetesProvider(kubeconfig=kube.kubeconfig)
    reporter = RecordingReporter()
    result = prov.apply(
        net.plan(), reporter, ApplyOptions(timeout=float(os.environ.get("HCOPS_K8S_TIMEOUT", 300)))
    )
    assert ("update", "pods ready 5/5") in reporter.events
    assert any(
        kind == "update" and msg.startswith("blocks signed by every validator 3/3")
        for kind, msg in reporter.events
    ), reporter.events
    assert all(n.state == "running" and n.health == "ready" for n in result.observation.nodes)


def test_status_reports_chain_facts_through_the_pod_proxy(
    cluster: tuple[KubeCluster, KubeNode], net: KubeNetwork
) -> None:
    kube, _ = cluster
    obs = KubernetesProvider(kubeconfig=kube.kubeconfig).observe(net.plan())
    assert [n.name for n in obs.nodes] == [n.name for n in net.plan().nodes]
    for n in obs.nodes:
        assert n.present and n.state == "running" and n.health == "ready", n
        assert n.height is not None and n.height >= 3 and n.catching_up is False
        assert n.peers is not None and n.peers >= 2  # full mesh can take longer: peers redial with backoff
        assert n.facts["security"] == [] and n.facts["secrets"]["ok"]
        assert (n.voting_power or 0) == (10 if n.role == "validator" else 0)
    assert obs.facts["drift"] == [] and obs.undeclared == ()


def test_destroy_stops_every_pod(cluster: tuple[KubeCluster, KubeNode], net: KubeNetwork) -> None:
    kube, _ = cluster
    prov = KubernetesProvider(kubeconfig=kube.kubeconfig)
    gone = prov.destroy(net.plan(), RecordingReporter(), prune_volumes=True)
    assert gone.kept == ()
    status, _ = kube.get(f"/api/v1/namespaces/{net.name}")
    assert status == 404
    assert leftovers(kube, net.name) == []
    assert all(not n.present for n in prov.observe(net.plan()).nodes)
