"""Property-based: random valid specs always render, re-render byte-identically, and the files parse back to
exactly the manifests the policy gate sees."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hcops.errors import InvalidInput
from hcops.plan.desired import NetworkPlan
from hcops.render import docker_compose, kubernetes_objects
from tests.render.helpers import fixture_plan, kubernetes_files, render_all, tree, yaml_docs
from tests.render.test_injection import load_ansible

LABEL = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["yes", "no", "on", "off", "true", "null", "y", "n", "123", "0x1f", "1e3", "007"]),
)
ORG_ROLES = st.sampled_from(["provider", "payer", "pharmacy", "laboratory", "regulator", "research"])
EXPOSURES = st.sampled_from(["host", "internal", "consortium", "public"])


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(LABEL, min_size=5, max_size=14, unique=True))
    org_count = draw(st.integers(1, 4))
    org_names = draw(st.lists(LABEL, min_size=org_count, max_size=org_count, unique=True))
    orgs: list[dict[str, Any]] = [{"name": f"org-{o}", "role": draw(ORG_ROLES), "nodes": []}
                                  for o in org_names]
    for i, name in enumerate(names):
        node: dict[str, Any] = {"name": name}
        if i < 4 or draw(st.booleans()):
            node.update(role="validator", power=draw(st.integers(1, 100)))
        else:
            node["role"] = "observer"
        if draw(st.integers(0, 4)) == 0:
            node["resources"] = {"cpu": draw(st.sampled_from(["100m", "1", "2.5"])),
                                 "memory": draw(st.sampled_from(["64Mi", "1Gi", "1.5Gi", "512M"]))}
        orgs[draw(st.integers(0, org_count - 1))]["nodes"].append(node)
    provider: dict[str, Any] = {"type": draw(st.sampled_from(["docker", "kubernetes", "ansible"]))}
    if draw(st.booleans()):
        provider["kubernetes"] = {"namespace": draw(LABEL), "storageClass": draw(LABEL)}
    if draw(st.booleans()):
        provider["docker"] = {"rpcHostPortBase": draw(st.integers(1024, 60000))}
    return {
        "apiVersion": "hcops/v1alpha1", "kind": "Consortium", "metadata": {"name": draw(LABEL)},
        "spec": {
            "chain": {"version": "0.38.17", "image": draw(st.sampled_from(
                ["cometbft/cometbft:v0.38.17", "registry.example:5000/hc/cometbft@sha256:" + "a" * 64])),
                "chainId": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)),
                "blockInterval": draw(st.sampled_from(["100ms", "1s", "2s", "1m30s", "750ms"]))},
            "organizations": orgs,
            "network": {"rpc": {"exposure": draw(EXPOSURES),
                                "cors": draw(st.lists(st.text(max_size=12), max_size=3))},
                        "p2p": {"pex": draw(st.booleans())}},
            "data": {"txIndex": draw(st.sampled_from(["off", "kv"]))},
            "provider": provider,
        },
    }


def load(doc: dict[str, Any], root: Path) -> NetworkPlan:
    spec = root / "network.yaml"
    spec.write_text(json.dumps(doc, ensure_ascii=False))  # JSON is YAML
    try:
        return fixture_plan(root / "state", spec)
    except InvalidInput:
        assume(False)  # e.g. one organization holds > 2/3 of the power: not a valid spec
        raise


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(doc=specs())
def test_random_specs_render_identically_and_parse_back(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan = load(doc, root)
        render_all(plan, root / "a")
        render_all(plan, root / "b")
        a = tree(root / "a")
        assert a == tree(root / "b")
        assert yaml.safe_load(a["docker/compose.yaml"]) == docker_compose(plan)
        rendered = [d for f in kubernetes_files(root / "a") for d in yaml_docs(f)]
        expected = kubernetes_objects(plan, secrets=True)
        assert sorted(rendered, key=json.dumps) == sorted(expected, key=json.dumps)
        inventory = load_ansible(a["ansible/inventory.yaml"])["all"]["children"]
        hosts = set(inventory["validators"].get("hosts", {})) | set(inventory["observers"].get("hosts", {}))
        assert hosts == {n.name for n in plan.nodes}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=specs())
def test_random_specs_give_valid_kubernetes_objects(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plan = load(doc, Path(tmp))
        version = kubernetes_validate.latest_version()
        seen: set[str] = set()
        for obj in kubernetes_objects(plan, secrets=True):
            shape = obj["kind"] + ("-validator" if obj["metadata"]["labels"].get("hcops.role") == "validator"
                                   else "")
            if shape in seen:  # one of each kind and role: the schema check is slow, the rest is alike
                continue
            seen.add(shape)
            kubernetes_validate.validate(obj, version, strict=True)
