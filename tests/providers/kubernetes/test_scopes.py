"""The Kubernetes provider's namespaces (``KubeScope``): one Desired per namespace, the other members'
namespaces never taken for this one's, and the observations of several namespaces as one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from hcops.plan.desired import KeyMode, build_plan
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.objects import desired, read_live
from hcops.providers.kubernetes.observe import merge
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC, SpecDir


def placed_plan(spec_dir: SpecDir, tmp_path: Path) -> Any:
    text = SMALL_SPEC.replace("  organizations:", "  provider: {type: kubernetes}\n  organizations:")
    for org in ("org-a", "org-b"):
        text = text.replace(f"    - name: {org}\n", f"    - name: {org}\n      kubernetes: {{namespace: ns-{org}}}\n")
    spec_dir.write(text)
    return build_plan(load_spec(spec_dir.spec), tmp_path / "state", keys=KeyMode.generate)


class ListingApi:
    """Answers list calls with the Namespace objects given (every one carrying the network's labels)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list(self, api_version: str, kind: str, namespace: str | None = None, **_: Any) -> list[dict[str, Any]]:
        if kind != "Namespace":
            return []
        return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in self.names]


def test_one_desired_per_namespace(spec_dir: SpecDir, tmp_path: Path) -> None:
    plan = placed_plan(spec_dir, tmp_path)
    scopes = plan.kube_scopes()
    assert [s.namespace for s in scopes] == ["ns-org-a", "ns-org-b", "small-net"]
    wants = [desired(plan, s) for s in scopes]
    assert [(w.namespace, sorted(w.nodes)) for w in wants] == [
        ("ns-org-a", ["a-val-0"]), ("ns-org-b", ["b-val-0"]), ("small-net", ["c-val-0", "d-obs-0", "d-val-0"])]
    assert wants[0].foreign == {"ns-org-b", "small-net"}
    for w in wants:
        assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in w.objects} == {w.namespace}


def test_the_other_members_namespaces_are_not_this_ones(spec_dir: SpecDir, tmp_path: Path) -> None:
    plan = placed_plan(spec_dir, tmp_path)
    want = desired(plan, plan.kube_scopes()[0])
    api = cast(KubeApi, ListingApi(["ns-org-a", "ns-org-b", "small-net", "renamed-earlier"]))
    live = read_live(api, want)
    # Only this scope's own namespace: another member's, and one this copy of the spec does not know (a
    # member that moved, or left), are neither undeclared nor prunable from here.
    assert sorted(r.name for r in live.objects) == ["ns-org-a"]


def test_observations_of_several_namespaces_merge_in_spec_order(spec_dir: SpecDir, tmp_path: Path) -> None:
    plan = placed_plan(spec_dir, tmp_path)

    def obs(ns: str, nodes: list[str], level: str) -> Observation:
        return Observation(plan.name, tuple(NodeStatus(name=n, org="o", role="validator", present=True) for n in nodes),
                           ({"name": f"stray-{ns}"},),
                           {"namespace": ns, "objects": 2, "drift": [{"object": ns}], "rbac": [], "podSecurity": level,
                            "storage": {n: {"claim": n} for n in nodes}})

    merged = merge(plan, [obs("small-net", ["c-val-0", "d-val-0", "d-obs-0"], "restricted"),
                          obs("ns-org-a", ["a-val-0"], "baseline"), obs("ns-org-b", ["b-val-0"], "restricted")])
    assert [n.name for n in merged.nodes] == ["a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"]
    assert merged.facts["namespaces"] == ["small-net", "ns-org-a", "ns-org-b"]
    assert merged.facts["objects"] == 6 and len(merged.facts["drift"]) == 3 and len(merged.undeclared) == 3
    assert merged.facts["podSecurity"] == "baseline"  # the weakest namespace is the network's
    weaker = merge(plan, [obs("small-net", ["c-val-0"], "baseline"), obs("ns-org-a", ["a-val-0"], "privileged"),
                          obs("ns-org-b", ["b-val-0"], "restricted")])
    assert weaker.facts["podSecurity"] == "privileged"  # not merely the first that is not restricted
    assert set(merged.facts["storage"]) == {"a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"}
    single = obs("small-net", ["a-val-0"], "restricted")
    assert merge(plan, [single]) is single
