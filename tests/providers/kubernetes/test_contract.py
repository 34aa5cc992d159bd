"""The provider contract of tests/providers/test_contract.py, kept by the Kubernetes provider against a
real API server. The control plane has no kubelet, so the network is applied with ``waitForReady: false``
and nodes are expected present and ``pending`` (no pod runs) instead of running with a height."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hcops.progress import RecordingReporter
from hcops.providers.base import Action, ApplyOptions, Provider, get_provider
from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.objects import desired, selector_string
from hcops.providers.kubernetes.provider import KubernetesProvider
from tests.integration.k8s_harness import KubeCluster, KubeNetwork, cleanup, shared_cluster, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture
def net(kube: KubeCluster, tmp_path: Path) -> Iterator[KubeNetwork]:
    n = KubeNetwork(tmp_path / "net", unique_name("contract"), kube).write()
    yield n
    cleanup(kube, n.name)


def test_registered_under_its_spec_name() -> None:
    assert isinstance(get_provider("kubernetes"), KubernetesProvider)


def test_provider_contract(kube: KubeCluster, net: KubeNetwork) -> None:
    prov = KubernetesProvider(kubeconfig=kube.kubeconfig)
    plan = net.plan()
    assert isinstance(prov, Provider)

    fresh = prov.plan(plan)
    per_node = [c for c in fresh.items if c.node]
    assert {c.node for c in per_node} == {n.name for n in plan.nodes}
    assert all(c.action is Action.create for c in fresh.items)

    result = prov.apply(plan, RecordingReporter(), ApplyOptions(timeout=120))
    assert result.changes.pending
    assert {n.name for n in result.observation.nodes} == {n.name for n in plan.nodes}

    again = prov.plan(plan)
    assert not again.pending, list(again.pending)
    noop = prov.apply(plan, RecordingReporter(), ApplyOptions(timeout=120))
    assert not noop.changes.pending

    obs = prov.observe(plan)
    assert [n.name for n in obs.nodes] == [n.name for n in plan.nodes]
    assert all(n.present and n.state == "pending" and n.height is None for n in obs.nodes)
    assert obs.undeclared == ()

    gone = prov.destroy(plan, RecordingReporter(), prune_volumes=True)
    assert gone.removed and gone.kept == ()
    api = KubeApi(connect(kube.context, kube.kubeconfig))
    want = desired(plan)
    leftovers = [k for v, k in want.kinds() if api.list(v, k, None, selector=selector_string(want.selector))]
    assert leftovers == []
    assert all(not n.present for n in prov.observe(plan).nodes)
