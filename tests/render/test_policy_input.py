"""hcops.policy.input.build_input: the document of docs/policy-input.md, from the same code as the render."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from hcops.plan.topology import Topology
from hcops.policy.input import build_input
from hcops.render import docker_compose, docker_containers, kubernetes_objects
from tests.conftest import EXAMPLE
from tests.render.helpers import fixture_plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy-input.md"


def test_top_level_keys_in_documented_order(tmp_path: Path) -> None:
    doc = build_input(fixture_plan(tmp_path))
    documented = re.findall(r'^  "(\w+)":', DOC.read_text(), re.MULTILINE)
    assert list(doc) == documented
    assert doc["apiVersion"] == "hcops/v1alpha1" and doc["kind"] == "Consortium"
    assert doc["metadata"] == {"name": "golden-net", "labels": {}} and doc["environment"] is None
    json.dumps(doc)  # plain JSON data all the way down


def test_spec_is_the_merged_spec_with_defaults(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path, EXAMPLE, "prod")
    doc = build_input(plan)
    assert doc["environment"] == "prod"
    assert doc["spec"] == plan.consortium.model_dump(mode="json", by_alias=True)["spec"]
    rpc = {"exposure": "consortium", "tls": True, "cors": [], "unsafe": False}
    assert doc["spec"]["network"]["rpc"] == rpc
    assert doc["spec"]["provider"]["kubernetes"]["storageClass"] == "encrypted-ssd"
    assert doc["spec"]["chain"]["blockInterval"] == "1s"


def test_organizations(tmp_path: Path) -> None:
    orgs = build_input(fixture_plan(tmp_path))["organizations"]
    assert [o["name"] for o in orgs] == ["mercy-hospital", "acme-payer", "corner-pharmacy", "city-lab"]
    mercy, _, corner, lab = orgs
    assert mercy == {"name": "mercy-hospital", "role": "provider", "coveredEntity": True,
                     "baa": {"signed": True, "signedOn": "2026-01-15"}, "contact": None,
                     "path": "spec.organizations[0]", "validators": 1, "votingPower": 10, "nodeCount": 1}
    assert corner["baa"] is None and corner["coveredEntity"] is False
    assert (lab["validators"], lab["votingPower"], lab["nodeCount"]) == (1, 10, 2)


def test_nodes(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path)
    nodes = build_input(plan)["nodes"]
    assert [n["name"] for n in nodes] == [n.name for n in plan.nodes]
    acme = nodes[1]
    assert {k: v for k, v in acme.items() if k != "config"} == {
        "name": "acme-val-0", "org": "acme-payer", "orgRole": "payer", "role": "validator", "power": 10,
        "path": "spec.organizations[1].nodes[0]", "image": "hcops/cometbft:0.38.17",
        "imageRef": {"repository": "hcops/cometbft", "tag": "0.38.17", "digest": None},
        "resources": {"cpu": "1", "memory": "1Gi"}, "storage": {"size": "5Gi", "encrypted": True}}
    obs = nodes[4]
    assert obs["role"] == "observer" and obs["power"] == 0
    # provider docker: the docker target's config, exactly what docker/nodes/<node>/config.toml holds
    assert acme["config"] == plan.docker_config(plan.node("acme-val-0"))
    assert acme["config"]["rpc"]["laddr"] == "tcp://0.0.0.0:26657"


def test_node_config_follows_the_provider(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path, EXAMPLE, "prod")  # provider kubernetes, namespace regional-health-net
    doc = build_input(plan)
    node = plan.nodes[0]
    assert doc["nodes"][0]["config"] == plan.kubernetes_config(node, "regional-health-net")
    ref = doc["nodes"][0]["imageRef"]
    assert ref["repository"] == "hcops/cometbft" and ref["digest"].startswith("sha256:")


def test_chain_summary(tmp_path: Path) -> None:
    assert build_input(fixture_plan(tmp_path))["chain"] == {
        "validators": 4, "totalPower": 40, "organizationsWithValidators": 4}


def test_manifests_are_the_rendered_ones_without_secrets(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path)
    m = build_input(plan, "all")["manifests"]
    assert m["docker"] == docker_compose(plan)
    assert m["dockerContainers"] == docker_containers(plan)
    assert m["kubernetes"] == kubernetes_objects(plan, secrets=False)
    assert not any(o["kind"] == "Secret" for o in m["kubernetes"])
    svc = m["docker"]["services"]["mercy-val-0"]
    assert svc["ports"] == ["127.0.0.1:28657:26657"] and svc["read_only"] is True


def test_node_configs_come_from_the_render_topology(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path)
    doc = build_input(plan)
    t = Topology(plan)
    for node, entry in zip(plan.nodes, doc["nodes"], strict=True):
        assert entry["config"] == t.docker_config(node)


@pytest.mark.parametrize(("provider", "targets"), [
    ("docker", ["docker", "dockerContainers"]), ("kubernetes", ["kubernetes"]),
    ("ansible", ["docker", "dockerContainers", "kubernetes"])])
def test_by_default_the_manifests_are_those_of_the_provider(tmp_path: Path, provider: str,
                                                             targets: list[str]) -> None:
    plan = fixture_plan(tmp_path)
    spec = plan.consortium.spec.model_copy(update={
        "provider": plan.consortium.spec.provider.model_copy(update={"type": provider})})
    loaded = dataclasses.replace(plan.loaded, consortium=plan.consortium.model_copy(update={"spec": spec}))
    plan = dataclasses.replace(plan, loaded=loaded)
    assert sorted(build_input(plan)["manifests"]) == targets
    assert sorted(build_input(plan, "all")["manifests"]) == ["docker", "dockerContainers", "kubernetes"]


class _Recorder:
    def __init__(self) -> None:
        self.parts: list[tuple[tuple[str, ...], str]] = []
        self.document: dict[str, object] | None = None

    def part(self, path: tuple[str, ...], value: object) -> None:
        self.parts.append((path, json.dumps(value)))  # as sent: the value when it was handed over

    def done(self, document: dict[str, object]) -> None:
        self.document = document


@pytest.mark.parametrize("scope", ["provider", "all"])
def test_the_parts_given_to_a_sink_make_the_document(tmp_path: Path, scope: str) -> None:
    """What the managed OPA server receives part by part is the document the gate judges."""
    sink = _Recorder()
    doc = build_input(fixture_plan(tmp_path, EXAMPLE, "prod"), scope, sink)  # type: ignore[arg-type]
    assert sink.document is doc
    assert sink.parts[0][0] == ()  # the first part replaces whatever was there
    rebuilt: dict[str, object] = {}
    for path, text in sink.parts:
        value = json.loads(text)
        if not path:
            rebuilt = value
            continue
        target = rebuilt
        for seg in path[:-1]:
            target = target.setdefault(seg, {})  # type: ignore[assignment]
        target[path[-1]] = value
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert len(sink.parts) > 3  # in parts, not one piece at the end
