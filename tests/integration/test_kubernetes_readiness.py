"""When the cluster cannot run the pods (here: a control plane with no kubelet, so no Node objects), apply
fails at the deadline with the pods' state and the events that say why; ``waitForReady: false`` applies
the objects only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hcops.progress import RecordingReporter
from hcops.providers.base import ApplyOptions
from hcops.providers.kubernetes.provider import KubernetesProvider
from hcops.providers.kubernetes.readiness import NotReady
from tests.integration.k8s_harness import KubeCluster, KubeNetwork, cleanup, shared_cluster, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture
def waiting_net(kube: KubeCluster, tmp_path: Path) -> Iterator[KubeNetwork]:
    n = KubeNetwork(tmp_path / "net", unique_name("wait"), kube, wait_for_ready=True).write()
    yield n
    cleanup(kube, n.name)


def test_pods_that_cannot_run_fail_apply_with_the_events_that_say_why(
        kube: KubeCluster, waiting_net: KubeNetwork) -> None:
    prov = KubernetesProvider(kubeconfig=kube.kubeconfig)
    reporter = RecordingReporter()
    with pytest.raises(NotReady) as err:
        prov.apply(waiting_net.plan(), reporter, ApplyOptions(timeout=20))  # the controllers and the scheduler need time on a busy host
    assert err.value.exit_code == 1
    assert "timed out after 20 s waiting for pods to be ready (0/5 ready)" in err.value.message
    hint = err.value.hint or ""
    assert "the cluster has no Node objects" in hint
    assert "stmary-val-0: stmary-val-0-0 Pending" in hint
    assert "FailedScheduling" in hint, hint
    assert "waitForReady: false" in hint
    assert ("update", "pods ready 0/5") in reporter.events
    # The objects were applied all the same: applying without waiting changes only the spec hash.
    waiting_net.wait_for_ready = False
    waiting_net.write()
    again = prov.apply(waiting_net.plan(), RecordingReporter(), ApplyOptions())
    assert [(c.kind, [f.field for f in c.fields]) for c in again.changes.pending] == [
        ("Namespace", ["metadata.annotations.hcops.spec-hash"])]
    assert all(n.present and n.state == "pending" for n in again.observation.nodes)


def test_cli_apply_exits_1_with_the_reason(kube: KubeCluster, waiting_net: KubeNetwork) -> None:
    proc = waiting_net.hcops("apply", "--yes", "--timeout", "15")
    assert proc.returncode == 1, proc.stderr
    assert "waiting for pods to be ready" in proc.stderr and "FailedScheduling" in proc.stderr
