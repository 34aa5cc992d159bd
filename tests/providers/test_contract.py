"""One contract every provider keeps: a fresh plan creates, apply then plan is unchanged, observe returns
every node with the typed facts the audit reads (container or host, RPC), destroy leaves nothing.
Parametrised over providers; the Kubernetes one runs on the test cluster with a node
(tests/integration/k8s_harness.py) and skips when its components are missing; the Ansible one on five real
hosts (systemd and sshd in containers of the test host image, tests/integration/hosts.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.progress import RecordingReporter
from hcops.providers.base import Action, ApplyOptions, Provider
from hcops.spec.loader import load_spec
from tests.providers import docker_support
from tests.providers.fake import FakeProvider


@dataclass
class Subject:
    provider: Provider
    plan: NetworkPlan
    leftovers: Callable[[], list[str]]


def _fake(tmp_path: Path) -> Iterator[Subject]:
    net = docker_support.TestNetwork(tmp_path, docker_support.unique_name("fake"), 40000, "10.250.0.0/24")
    net.write()
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    prov = FakeProvider()
    yield Subject(prov, plan, lambda: prov.leftovers(plan))


def _docker(tmp_path: Path) -> Iterator[Subject]:
    client = docker_support.docker_client()
    from hcops.providers.docker.provider import DockerProvider

    net = docker_support.new_network(client, tmp_path, "contract")
    try:
        plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
        yield Subject(DockerProvider(client), plan, lambda: docker_support.leftovers(client, net.name))
    finally:
        docker_support.cleanup(client, net.name)


def _kubernetes(tmp_path: Path) -> Iterator[Subject]:
    from hcops.providers.kubernetes.provider import KubernetesProvider
    from tests.integration import k8s_harness

    kube, node = k8s_harness.shared_node_cluster(tmp_path / "kube-node")
    net = k8s_harness.running_network(kube, node, tmp_path / "net", "contract")
    try:
        yield Subject(KubernetesProvider(kubeconfig=kube.kubeconfig), net.plan(),
                      lambda: k8s_harness.leftovers(kube, net.name))
    finally:
        k8s_harness.cleanup(kube, net.name)


def _ansible(tmp_path: Path) -> Iterator[Subject]:
    from hcops.providers.ansible.provider import AnsibleProvider
    from tests.integration import hosts

    cluster = hosts.shared_hosts(5)
    hosts.reset(cluster)
    net = hosts.host_network(cluster, tmp_path / "net", "contract")
    try:
        yield Subject(AnsibleProvider(), build_plan(load_spec(net.spec, "test"), net.state_dir),
                      lambda: hosts.leftovers(cluster, net.name))
    finally:
        hosts.reset(cluster)


FACTORIES: dict[str, Callable[[Path], Iterator[Subject]]] = {
    "fake": _fake, "docker": _docker, "kubernetes": _kubernetes, "ansible": _ansible}


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.integration),
                        pytest.param("kubernetes", marks=pytest.mark.integration),
                        pytest.param("ansible", marks=pytest.mark.integration)])
def subject(request: Any, tmp_path: Path) -> Iterator[Subject]:
    yield from FACTORIES[request.param](tmp_path)


def test_provider_contract(subject: Subject) -> None:
    prov, plan = subject.provider, subject.plan
    assert isinstance(prov, Provider)

    fresh = prov.plan(plan)
    per_node = [c for c in fresh.items if c.node]  # network-wide items (network, namespace, ...) have none
    assert {c.node for c in per_node} == {n.name for n in plan.nodes}
    assert all(c.action is Action.create for c in fresh.items)

    result = prov.apply(plan, RecordingReporter(), ApplyOptions(timeout=120))
    assert result.changes.pending
    assert {n.name for n in result.observation.nodes} == {n.name for n in plan.nodes}

    again = prov.plan(plan)
    assert not again.pending, [c for c in again.pending]
    noop = prov.apply(plan, RecordingReporter(), ApplyOptions(timeout=120))
    assert not noop.changes.pending

    obs = prov.observe(plan)
    assert [n.name for n in obs.nodes] == [n.name for n in plan.nodes]
    assert all(n.present and n.state == "running" for n in obs.nodes)
    assert all(n.height is not None and n.height >= 1 for n in obs.nodes)
    for n in obs.nodes:  # the typed facts the audit reads (hcops.providers.facts), whatever the engine
        assert n.rpc is not None and n.rpc.reachable and n.rpc.node_id == plan.node(n.name).keys.node_id, n
        assert (n.container is not None and n.container.present) or n.host is not None, n
    assert obs.undeclared == ()

    gone = prov.destroy(plan, RecordingReporter(), prune_volumes=True)
    assert gone.removed
    assert subject.leftovers() == []
    assert all(not n.present for n in prov.observe(plan).nodes)
