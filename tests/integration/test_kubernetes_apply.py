"""The Kubernetes provider against a real kube-apiserver (with etcd, controller manager and scheduler, no
kubelet): every rendered object is accepted, re-apply is a no-op, a spec change patches only what
changed, destroy removes everything with the network's labels; the CLI drives it by spec.provider.type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcops.progress import RecordingReporter
from hcops.providers.base import Action, ApplyOptions
from hcops.providers.kubernetes.api import KubeApi, Ref
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.objects import desired, selector_string
from hcops.providers.kubernetes.provider import KubernetesProvider
from tests.integration.k8s_harness import (
    KubeCluster,
    KubeNetwork,
    cleanup,
    leftovers,
    shared_cluster,
    unique_name,
    write_contexts,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture
def api(kube: KubeCluster) -> KubeApi:
    return KubeApi(connect(kube.context, kube.kubeconfig))


@pytest.fixture
def net(kube: KubeCluster, tmp_path: Path) -> Iterator[KubeNetwork]:
    n = KubeNetwork(tmp_path / "net", unique_name("apply"), kube).write()
    yield n
    cleanup(kube, n.name)


def provider(kube: KubeCluster) -> KubernetesProvider:
    return KubernetesProvider(kubeconfig=kube.kubeconfig)


def versions(api: KubeApi, net: KubeNetwork) -> dict[Ref, str]:
    """Per object, what only a write of hcops changes: the resourceVersion; for kinds whose status a
    controller writes (StatefulSet, PodDisruptionBudget), the generation and hcops' managedFields time."""
    want = desired(net.plan())
    out = {}
    for obj in want.objects:
        live = api.get(Ref.of(obj))
        assert live is not None, Ref.of(obj)
        meta = live["metadata"]
        if "generation" in meta:
            mine = [m["time"] for m in meta["managedFields"] if m["manager"] == "hcops"]
            out[Ref.of(obj)] = f"generation {meta['generation']} applied {mine}"
        else:
            out[Ref.of(obj)] = meta["resourceVersion"]
    return out


def test_every_rendered_object_is_accepted_and_reapply_is_a_noop(
    kube: KubeCluster, api: KubeApi, net: KubeNetwork
) -> None:
    plan = net.plan()
    prov = provider(kube)
    fresh = prov.plan(plan)
    assert fresh.items and all(c.action is Action.create for c in fresh.items)

    first = prov.apply(plan, RecordingReporter(), ApplyOptions())
    want = desired(plan)
    assert first.changes.count(Action.create) == len(want.objects)
    kinds = {Ref.of(o).kind for o in want.objects}
    assert kinds >= {
        "Namespace",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
    before = versions(api, net)
    ns = api.get(Ref("v1", "Namespace", "", net.name))
    assert ns is not None and ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in want.objects:  # every object carries the network labels, and node objects the node's
        labels = api.get(Ref.of(obj))["metadata"]["labels"]  # type: ignore[index]
        assert all(labels.get(k) == v for k, v in want.selector.items())

    assert not prov.plan(plan).pending
    again = prov.apply(plan, RecordingReporter(), ApplyOptions())
    assert not again.changes.pending, again.changes.pending
    assert versions(api, net) == before  # nothing written


def test_the_pod_template_passes_pod_security_restricted(
    kube: KubeCluster, api: KubeApi, net: KubeNetwork
) -> None:
    """The controller manager creates each StatefulSet's pod in the namespace that enforces 'restricted':
    an admission rejection would leave no pod and a FailedCreate event."""
    plan = net.plan()
    provider(kube).apply(plan, RecordingReporter(), ApplyOptions())
    want = desired(plan)
    import time

    deadline = time.monotonic() + 30
    pods: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        pods = api.list("v1", "Pod", net.name, selector=selector_string(want.selector))
        if len(pods) == len(plan.nodes):
            break
        time.sleep(0.5)
    events = [
        e.get("message") for e in api.list("v1", "Event", net.name) if e.get("reason") == "FailedCreate"
    ]
    assert len(pods) == len(plan.nodes), events
    assert not events


def test_a_changed_spec_patches_only_what_changed(kube: KubeCluster, api: KubeApi, net: KubeNetwork) -> None:
    prov = provider(kube)
    prov.apply(net.plan(), RecordingReporter(), ApplyOptions())
    before = versions(api, net)
    net.write(
        "  organizations:",
        "    - name: bluecross-payer",
        "      nodes:",
        "        - {name: bluecross-val-0, resources: {cpu: '1', memory: 1Gi}}",
    )
    plan = net.plan()
    planned = prov.plan(plan).pending
    # The Namespace records the spec hash applied last; nothing else but the edited node changes.
    assert [(c.kind, c.node) for c in planned] == [("Namespace", None), ("StatefulSet", "bluecross-val-0")]
    assert [f.field for f in planned[0].fields] == ["metadata.annotations.hcops.spec-hash"]
    assert {f.field for f in planned[1].fields} >= {
        "spec.template.spec.containers[cometbft].resources.limits.cpu",
        "spec.template.spec.containers[cometbft].resources.requests.memory",
    }

    result = prov.apply(plan, RecordingReporter(), ApplyOptions())
    assert [(c.kind, c.node) for c in result.changes.pending] == [(c.kind, c.node) for c in planned]
    after = versions(api, net)
    changed = sorted(str(r) for r in before if before[r] != after[r])
    assert changed == [f"Namespace {net.name}", f"StatefulSet {net.name}/bluecross-val-0"]
    sts = api.get(Ref("apps/v1", "StatefulSet", net.name, "bluecross-val-0"))
    assert sts is not None
    assert sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1",
        "memory": "1Gi",
    }


def test_destroy_keeps_storage_unless_pruned_then_removes_everything_labelled(
    kube: KubeCluster, api: KubeApi, net: KubeNetwork
) -> None:
    prov = provider(kube)
    plan = net.plan()
    prov.apply(plan, RecordingReporter(), ApplyOptions())
    want = desired(plan)
    sel = selector_string(want.selector)

    kept = prov.destroy(plan, RecordingReporter())
    assert {c.kind for c in kept.removed} >= {
        "StatefulSet",
        "Service",
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
    assert any(k.startswith("Secret ") for k in kept.kept) and f"Namespace {net.name}" in kept.kept
    assert api.list("apps/v1", "StatefulSet", net.name, selector=sel) == []
    assert len(api.list("v1", "Secret", net.name, selector=sel)) == len(plan.nodes)

    gone = prov.destroy(plan, RecordingReporter(), prune_volumes=True)
    assert gone.kept == ()
    assert any(c.kind == "Namespace" for c in gone.removed)
    for api_version, kind in want.kinds():
        assert api.list(api_version, kind, None, selector=sel) == [], kind
    assert all(not n.present for n in prov.observe(plan).nodes)


def test_cli_plan_apply_status_destroy_select_the_kubernetes_provider(net: KubeNetwork) -> None:
    planned = net.hcops("plan", "--output", "json")
    assert planned.returncode == 0, planned.stderr
    doc = json.loads(planned.stdout)
    assert doc["provider"] == "kubernetes" and doc["summary"]["create"] == doc["pending"] > 0

    applied = net.hcops("apply", "--yes", "--output", "json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["changed"] is True
    assert json.loads(net.hcops("apply", "--yes", "--output", "json").stdout)["changed"] is False
    assert net.hcops("plan", "--detailed-exitcode").returncode == 0

    status = net.hcops("status", "--output", "json")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert {n["name"] for n in st["nodes"]} == {n.name for n in net.plan().nodes}
    assert all(n["present"] for n in st["nodes"]) and st["facts"]["drift"] == []

    destroyed = net.hcops("destroy", "--prune-volumes")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "StatefulSet" in destroyed.stdout


def test_a_whole_network_goes_to_each_organizations_namespace_through_its_context(
    kube: KubeCluster, net: KubeNetwork
) -> None:
    """No --org: one apply places each organization's nodes in its namespace, through its own context (the
    kubeconfig's current context answers nothing); plan, status and destroy go through the same contexts."""
    orgs = {"st-mary-hospital": "stmary", "northside-clinic": "northside", "bluecross-payer": "bluecross",
            "cityrx-pharmacy": "cityrx", "state-health-dept": "state"}
    ns = {org: f"{net.name}-{short}" for org, short in orgs.items()}
    config = write_contexts(net.root / "orgs.kubeconfig", kube, {f"{s}-admin": ns[o] for o, s in orgs.items()},
                            current="nowhere")
    net.write("  organizations:", *(f"    - {{name: {o}, kubernetes: {{namespace: {ns[o]}, context: {s}-admin}}}}"
                                    for o, s in orgs.items()))
    env = {"KUBECONFIG": str(config)}

    def run(*argv: str) -> str:
        proc = net.hcops(*argv, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    try:
        assert json.loads(run("apply", "--yes", "--output", "json"))["changed"] is True
        assert json.loads(run("apply", "--yes", "--output", "json"))["changed"] is False
        api = KubeApi(connect(kube.context, kube.kubeconfig))
        for org, namespace in ns.items():
            sets = api.list("apps/v1", "StatefulSet", namespace, selector=f"hcops.network={net.name}")
            assert {s["metadata"]["labels"]["hcops.org"] for s in sets} == {org}
        status = json.loads(run("status", "--output", "json"))
        assert [n["name"] for n in status["nodes"]] == [n.name for n in net.plan().nodes]
        assert all(n["present"] for n in status["nodes"]) and status["facts"]["drift"] == []
        assert sorted(status["facts"]["namespaces"]) == sorted(ns.values())
        run("destroy", "--prune-volumes")
        assert leftovers(kube, net.name) == []
    finally:
        for namespace in ns.values():
            cleanup(kube, namespace)
