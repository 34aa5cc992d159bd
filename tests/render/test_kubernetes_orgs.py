"""The kubernetes target with organizations in namespaces of their own: objects per namespace, peers by their
pod's name in their own namespace, NetworkPolicies that let P2P in from the other members' namespaces only,
and the Secrets of a member's own nodes only in its own namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hcops.plan.desired import KeyMode, NetworkPlan, build_plan
from hcops.policy.input import build_input
from hcops.render import kubernetes_objects, render_targets
from hcops.spec.loader import load_spec
from hcops.usecases.consortium import genesis_assemble, org_init
from tests.conftest import SMALL_SPEC, SpecDir

PLACES = {"org-a": "ns-a", "org-b": "ns-b", "org-c": "ns-c", "org-d": "ns-d"}


def placed(spec_dir: SpecDir, exposure: str = "internal") -> Path:
    text = SMALL_SPEC.replace("  organizations:", f"  network: {{rpc: {{exposure: {exposure}}}}}\n"
                              "  provider: {type: kubernetes}\n  organizations:")
    for org, ns in PLACES.items():
        text = text.replace(f"    - name: {org}\n", f"    - name: {org}\n      kubernetes: {{namespace: {ns}, "
                                                      f"context: ctx-{org}}}\n")
    return spec_dir.write(text)


def plan_of(spec_dir: SpecDir, tmp_path: Path, **kw: Any) -> NetworkPlan:
    return build_plan(load_spec(spec_dir.spec), tmp_path / "state", keys=KeyMode.generate, **kw)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_each_organization_gets_its_namespace_and_scope(spec_dir: SpecDir, tmp_path: Path) -> None:
    placed(spec_dir)
    plan = plan_of(spec_dir, tmp_path)
    assert [(s.context, s.namespace, [n.name for n in s.nodes]) for s in plan.kube_scopes()] == [
        ("ctx-org-a", "ns-a", ["a-val-0"]), ("ctx-org-b", "ns-b", ["b-val-0"]), ("ctx-org-c", "ns-c", ["c-val-0"]),
        ("ctx-org-d", "ns-d", ["d-val-0", "d-obs-0"])]
    objects = kubernetes_objects(plan, secrets=True)
    assert [o["metadata"]["name"] for o in by_kind(objects, "Namespace")] == list(PLACES.values())
    for o in objects:
        if o["kind"] in ("StatefulSet", "Secret", "Service", "ConfigMap") and "hcops.node" in o["metadata"]["labels"]:
            org = o["metadata"]["labels"]["hcops.org"]
            assert o["metadata"]["namespace"] == PLACES[org], o["metadata"]
    # Each namespace has its own budget, handed out over the whole validator set (the budgets do not see each
    # other: one validator of four may be evicted in the whole network, not one per namespace), and its own
    # genesis map.
    budgets = {o["metadata"]["namespace"]: o["spec"]["maxUnavailable"] for o in by_kind(objects, "PodDisruptionBudget")}
    assert sum(budgets.values()) == 1 and set(budgets) == set(PLACES.values())
    assert sorted(o["metadata"]["namespace"] for o in by_kind(objects, "ConfigMap")
                  if o["metadata"]["name"] == "small-net-genesis") == sorted(PLACES.values())
    # Peers by their pod's DNS name in their own namespace; the lock records the same address.
    peers = plan.kubernetes_config(plan.node("a-val-0"))["p2p"]["persistent_peers"]
    for node, ns in (("b-val-0", "ns-b"), ("d-obs-0", "ns-d")):
        assert f"@{node}-0.{node}.{ns}.svc.cluster.local:26656" in peers
    assert plan.p2p_address(plan.node("d-val-0")) == "d-val-0-0.d-val-0.ns-d.svc.cluster.local:26656"


def test_p2p_policies_let_in_the_other_members_namespaces_only(spec_dir: SpecDir, tmp_path: Path) -> None:
    placed(spec_dir)
    objects = kubernetes_objects(plan_of(spec_dir, tmp_path))
    policies = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"] for o in by_kind(objects, "NetworkPolicy")}
    pods = {"podSelector": {"matchLabels": {"hcops.network": "small-net"}}}
    for ns in PLACES.values():
        others = sorted(set(PLACES.values()) - {ns})
        members = {"namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": others}],
            "matchLabels": {"hcops.consortium": "small-net"}}, **pods}
        p2p = policies[(ns, "hcops-allow-p2p")]
        assert p2p["ingress"] == [{"from": [pods, members], "ports": [{"port": 26656, "protocol": "TCP"}]}]
        assert p2p["egress"] == [{"to": [pods, members], "ports": [{"port": 26656, "protocol": "TCP"}]}]
        assert policies[(ns, "hcops-default-deny")] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        # internal RPC: the network's pods in the members' namespaces, nothing else
        assert policies[(ns, "hcops-allow-rpc")]["ingress"][0]["from"] == [pods, members]


def test_one_namespace_renders_as_before(spec_dir: SpecDir, tmp_path: Path) -> None:
    spec_dir.write(SMALL_SPEC.replace("  organizations:", "  provider: {type: kubernetes}\n  organizations:"))
    objects = kubernetes_objects(plan_of(spec_dir, tmp_path))
    (p2p,) = [o for o in by_kind(objects, "NetworkPolicy") if o["metadata"]["name"] == "hcops-allow-p2p"]
    assert p2p["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"hcops.network": "small-net"}}}]
    assert len(by_kind(objects, "Namespace")) == 1


def test_a_members_share_holds_only_its_namespace_and_its_keys(spec_dir: SpecDir, tmp_path: Path) -> None:
    placed(spec_dir)
    paths = [org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org).path for org in PLACES]
    genesis_assemble(spec_dir.spec, None, paths)
    plan = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-d", keys=KeyMode.existing,
                      organization="org-d")
    objects = kubernetes_objects(plan, secrets=True)
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {"ns-d"}
    assert sorted(o["metadata"]["name"] for o in by_kind(objects, "Secret")) == ["d-obs-0-keys", "d-val-0-keys"]
    # The other members' namespaces are still let in, and dialled where the lock file says.
    (p2p,) = [o for o in by_kind(objects, "NetworkPolicy") if o["metadata"]["name"] == "hcops-allow-p2p"]
    assert p2p["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "ns-a", "ns-b", "ns-c"]
    peers = plan.kubernetes_config(plan.node("d-val-0"))["p2p"]["persistent_peers"]
    assert "a-val-0-0.a-val-0.ns-a.svc.cluster.local:26656" in peers
    # The gate sees every namespace's default deny.
    doc = build_input(plan)
    assert {o["metadata"]["namespace"] for o in doc["manifests"]["kubernetes"] if o["kind"] == "NetworkPolicy"} == {
        "ns-d"}


@pytest.mark.parametrize("exposure", ["host", "consortium"])
def test_rendered_files_hold_every_namespace(spec_dir: SpecDir, tmp_path: Path, exposure: str) -> None:
    placed(spec_dir, exposure)
    out = tmp_path / "out"
    render_targets(plan_of(spec_dir, tmp_path), ("kubernetes",), out)
    namespaces = list(yaml.safe_load_all((out / "kubernetes" / "00-namespace.yaml").read_text()))
    assert [n["metadata"]["name"] for n in namespaces] == list(PLACES.values())
    assert all(n["metadata"]["labels"]["hcops.consortium"] == "small-net" for n in namespaces)
    node = list(yaml.safe_load_all((out / "kubernetes" / "50-node-d-obs-0.yaml").read_text()))
    assert {o["metadata"]["namespace"] for o in node} == {"ns-d"}
