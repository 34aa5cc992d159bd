"""Audit through ``observe`` against a real kube-apiserver: drift from the spec (an edited image, a removed
NetworkPolicy, a loosened securityContext, a replaced key Secret), undeclared objects with the network's
labels, the pods' service account rights; and how apply treats other field managers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.progress import RecordingReporter
from hcops.providers.base import ApplyOptions, NodeStatus, Observation
from hcops.providers.kubernetes.api import FIELD_MANAGER, KubeApi, Ref
from hcops.providers.kubernetes.conflicts import ApplyConflict
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.objects import desired
from hcops.providers.kubernetes.provider import KubernetesProvider
from tests.integration.k8s_harness import KubeCluster, KubeNetwork, cleanup, shared_cluster, unique_name

pytestmark = pytest.mark.integration

NODE = "northside-val-0"
IMAGE_PATH = "spec.template.spec.containers[cometbft].image"


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture
def api(kube: KubeCluster) -> KubeApi:
    return KubeApi(connect(kube.context, kube.kubeconfig))


@pytest.fixture
def applied(kube: KubeCluster, tmp_path: Path) -> Iterator[tuple[KubeNetwork, KubernetesProvider]]:
    """A network whose objects are applied (the pods cannot run: no kubelet)."""
    net = KubeNetwork(tmp_path / "net", unique_name("audit"), kube).write()
    prov = KubernetesProvider(kubeconfig=kube.kubeconfig)
    prov.apply(net.plan(), RecordingReporter(), ApplyOptions())
    yield net, prov
    cleanup(kube, net.name)


def patch(api: KubeApi, ref: Ref, body: dict[str, Any], manager: str, *, strategic: bool = False) -> None:
    """An imperative edit (operation Update), as `kubectl edit/patch` makes it."""
    rt = api.resource_type(ref.api_version, ref.kind)
    kind = "application/strategic-merge-patch+json" if strategic else "application/merge-patch+json"
    api.request(
        "PATCH",
        rt.item(ref.name, ref.namespace),
        query={"fieldManager": manager},
        body=body,
        content_type=kind,
    )


def sts_ref(net: KubeNetwork, node: str = NODE) -> Ref:
    return Ref("apps/v1", "StatefulSet", net.name, node)


def node_status(obs: Observation, node: str = NODE) -> NodeStatus:
    return next(n for n in obs.nodes if n.name == node)


def test_a_clean_network_has_no_findings(applied: tuple[KubeNetwork, KubernetesProvider]) -> None:
    net, prov = applied
    obs = prov.observe(net.plan())
    assert obs.facts["drift"] == [] and obs.undeclared == ()
    assert obs.facts["podSecurity"] == "restricted"
    assert [r["minimal"] for r in obs.facts["rbac"]] == [True]
    for n in obs.nodes:
        assert n.present and n.facts["security"] == [] and n.facts["secrets"]["ok"], n.facts
        assert n.facts["secrets"]["matchesSpec"] is True


def test_an_edited_image_is_reported_then_reverted_by_apply(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    patch(
        api,
        sts_ref(net),
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "cometbft", "image": "cometbft/cometbft:v0.38.0"}]}
                }
            }
        },
        "kubectl-edit",
        strategic=True,
    )

    obs = prov.observe(net.plan())
    drifted = node_status(obs).facts["drift"]
    assert [d["kind"] for d in drifted] == ["StatefulSet"]
    field = {f["field"]: f for f in drifted[0]["fields"]}[IMAGE_PATH]
    assert field["live"] == "cometbft/cometbft:v0.38.0" and field["spec"] == "hcops/cometbft:0.38.17"
    assert drifted[0]["managers"] == ["kubectl-edit"]
    assert node_status(obs).facts["image"] == ["cometbft/cometbft:v0.38.0"]

    planned = [c for c in prov.plan(net.plan()).pending if c.kind == "StatefulSet"]
    assert {f.field for f in planned[0].fields} >= {IMAGE_PATH, f"conflict: {IMAGE_PATH}"}

    reporter = RecordingReporter()
    result = prov.apply(net.plan(), reporter, ApplyOptions())
    assert [(c.kind, c.node) for c in result.changes.pending] == [("StatefulSet", NODE)]
    assert any(
        kind == "warn" and IMAGE_PATH in msg and "kubectl-edit" in msg for kind, msg in reporter.events
    )
    live = api.get(sts_ref(net))
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "hcops/cometbft:0.38.17"
    assert prov.observe(net.plan()).facts["drift"] == []


def test_fields_of_another_server_side_apply_manager_are_never_overwritten(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    other = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NODE, "namespace": net.name},
        "spec": {
            "selector": {"matchLabels": {"hcops.network": net.name, "hcops.node": NODE}},
            "serviceName": NODE,
            "template": {"spec": {"containers": [{"name": "cometbft", "image": "registry.example/fork:1"}]}},
        },
    }
    rt = api.resource_type("apps/v1", "StatefulSet")
    api.request(
        "PATCH",
        rt.item(NODE, net.name),
        query={"fieldManager": "gitops-tool", "force": True},
        body=other,
        content_type="application/apply-patch+yaml",
    )

    with pytest.raises(ApplyConflict) as err:
        prov.apply(net.plan(), RecordingReporter(), ApplyOptions())
    assert IMAGE_PATH in err.value.message and "gitops-tool" in err.value.message
    assert err.value.hint and "--force-conflicts" in err.value.hint
    live = api.get(sts_ref(net))
    assert (
        live is not None
        and live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/fork:1"
    )


def test_revert_drift_false_fails_instead_of_reverting(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    net.write(revertDrift="false")
    patch(api, sts_ref(net), {"spec": {"replicas": 2}}, "kubectl-scale")
    with pytest.raises(ApplyConflict) as err:
        prov.apply(net.plan(), RecordingReporter(), ApplyOptions())
    assert "spec.replicas" in err.value.message and "kubectl-scale" in err.value.message
    assert err.value.hint and "revertDrift" in err.value.hint


def test_removed_network_policy_and_loosened_security_context_are_reported(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    assert api.delete(Ref("networking.k8s.io/v1", "NetworkPolicy", net.name, "hcops-default-deny"))
    patch(
        api,
        sts_ref(net),
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "cometbft",
                                "securityContext": {
                                    "readOnlyRootFilesystem": False,
                                    "capabilities": {"add": ["NET_ADMIN"]},
                                },
                            }
                        ]
                    }
                }
            }
        },
        "kubectl-patch",
        strategic=True,
    )

    obs = prov.observe(net.plan())
    missing = [d for d in obs.facts["drift"] if d["missing"]]
    assert [(d["kind"], d["name"]) for d in missing] == [("NetworkPolicy", "hcops-default-deny")]
    sts_drift = node_status(obs).facts["drift"][0]
    paths = {f["field"] for f in sts_drift["fields"]}
    assert "spec.template.spec.containers[cometbft].securityContext.readOnlyRootFilesystem" in paths
    violations = node_status(obs).facts["security"]
    assert "container cometbft: readOnlyRootFilesystem is not true" in violations
    assert "container cometbft: adds capabilities NET_ADMIN" in violations

    prov.apply(net.plan(), RecordingReporter(), ApplyOptions())
    after = prov.observe(net.plan())
    assert after.facts["drift"] == []
    # The capability was added by another manager and hcops never declared it: still reported.
    assert node_status(after).facts["security"] == ["container cometbft: adds capabilities NET_ADMIN"]


def test_extra_labelled_objects_are_undeclared_and_only_destroy_removes_them(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    labels = dict(desired(net.plan()).selector)
    api.create(
        "v1",
        "ConfigMap",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "stray", "labels": labels},
            "data": {"a": "b"},
        },
        net.name,
    )
    obs = prov.observe(net.plan())
    assert [(u["kind"], u["name"]) for u in obs.undeclared] == [("ConfigMap", "stray")]
    assert obs.undeclared[0]["managers"] != [FIELD_MANAGER]

    prov.apply(net.plan(), RecordingReporter(), ApplyOptions())  # not hcops' object: apply leaves it
    assert api.get(Ref("v1", "ConfigMap", net.name, "stray")) is not None
    gone = prov.destroy(net.plan(), RecordingReporter())
    assert ("ConfigMap", f"{net.name}/stray") in {(c.kind, c.name) for c in gone.removed}


def test_service_account_rights_beyond_none_are_reported(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    api.create(
        "rbac.authorization.k8s.io/v1",
        "Role",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "peek"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
        net.name,
    )
    api.create(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "peek"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "peek"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": net.name}],
        },
        net.name,
    )
    rbac = prov.observe(net.plan()).facts["rbac"]
    assert rbac == [
        {
            "serviceAccount": "default",
            "bindings": ["RoleBinding peek -> Role peek"],
            "allowed": ["get secrets"],
            "minimal": False,
        }
    ]


def test_a_replaced_key_secret_is_reported_without_showing_key_material(
    api: KubeApi, applied: tuple[KubeNetwork, KubernetesProvider]
) -> None:
    net, prov = applied
    plan = net.plan()
    want = desired(plan)
    other = next(s for s in want.of_kind("Secret") if want.node_of(s) == "stmary-val-0")
    patch(api, Ref("v1", "Secret", net.name, f"{NODE}-keys"), {"data": other["data"]}, "kubectl-edit")

    obs = prov.observe(plan)
    secrets = node_status(obs).facts["secrets"]
    assert secrets["matchesSpec"] is False and not secrets["ok"]
    drift = [d for d in obs.facts["drift"] if d["kind"] == "Secret"]
    assert drift and all(f["live"] == "(hidden)" and f["spec"] == "(hidden)" for f in drift[0]["fields"])
    text = json.dumps([obs.facts, [n.facts for n in obs.nodes]], default=str)
    for s in want.of_kind("Secret"):
        for value in s["data"].values():
            assert value not in text
    planned = prov.plan(plan).pending
    assert all(
        f.old in ("(hidden)", None)
        for c in planned
        if c.kind == "Secret"
        for f in c.fields
        if f.field.startswith("data.")
    )
