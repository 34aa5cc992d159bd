"""The Docker provider creates containers from the render layer's documents only (hcops.render.docker_doc):
its create arguments and the files it hands a node are the document's, field for field; the compose file is
rendered from the same documents; the policy input carries them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hcops.plan.desired import NetworkPlan
from hcops.policy.input import build_input
from hcops.providers.docker.containers import DesiredContainer
from hcops.render import docker_compose
from hcops.render.docker_doc import NodeContainer, documents
from tests.conftest import EXAMPLE
from tests.render.helpers import fixture_plan

NS = 1_000_000_000


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def plan(request: pytest.FixtureRequest, tmp_path: Path) -> NetworkPlan:
    spec = tmp_path / "network.yaml"
    text = EXAMPLE.read_text()
    if request.param:
        text = text.replace("rpc: {exposure: internal, tls: false", "rpc: {exposure: internal, tls: true")
    spec.write_text(text)
    return fixture_plan(tmp_path / "state", spec)


def _members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_create_arguments_are_the_document(plan: NetworkPlan) -> None:
    for node in plan.nodes:
        d = DesiredContainer(plan, node)
        doc: NodeContainer = d.doc
        kw: dict[str, Any] = d.create_kwargs("1.41")
        hc = doc.healthcheck
        assert (kw["image"], kw["name"], kw["hostname"], kw["user"]) == (doc.image, doc.name, doc.hostname, doc.user)
        assert kw["command"] == list(doc.command) and kw["command"][-1].startswith("--genesis_hash=")
        assert kw.get("environment", {}) == dict(doc.env)
        assert kw["labels"] == doc.label_map and kw["tmpfs"] == dict(doc.tmpfs)
        assert (kw["read_only"], kw["privileged"]) == (doc.read_only, doc.privileged) == (True, False)
        assert kw["cap_drop"] == list(doc.cap_drop) == ["ALL"] and "cap_add" not in kw
        assert kw["security_opt"] == list(doc.security_opt)
        r = doc.resources
        assert (kw["mem_limit"], kw["memswap_limit"], kw["nano_cpus"], kw["pids_limit"]) == (
            r.memory_bytes, r.memory_swap_bytes, r.nano_cpus, r.pids_limit)
        assert kw["healthcheck"] == {"test": list(hc.test), "interval": hc.interval_s * NS,
                                     "timeout": hc.timeout_s * NS, "retries": hc.retries,
                                     "start_period": hc.start_period_s * NS}
        assert kw["ports"] == {"26657/tcp": ("127.0.0.1", node.rpc_host_port)}
        assert kw["volumes"] == {doc.volume: {"bind": "/cometbft", "mode": "rw"}}
        ep = kw["networking_config"][doc.network]
        assert ep["IPAMConfig"]["IPv4Address"] == doc.ipv4_address and ep["Aliases"] == list(doc.aliases)
        assert kw["log_config"]["Type"] == doc.log_driver and kw["log_config"]["Config"] == dict(doc.log_options)


def test_the_node_is_handed_exactly_the_document_files(plan: NetworkPlan) -> None:
    for node in plan.nodes:
        d = DesiredContainer(plan, node)
        members = _members(d.archive(with_state=True))
        files = {f.path: f for f in d.doc.files}
        state = {"data/priv_validator_state.json"} if node.node.is_validator else set()
        assert set(members) == {"config", "data", *files, *state}
        for path, f in files.items():
            assert members[path].mode == f.mode == (0o600 if f.secret else 0o644), path
            assert members[path].uid == 10001
        if not node.node.is_validator:  # an observer: no validator key, CometBFT makes a throwaway one
            assert "config/priv_validator_key.json" not in files
            assert d.config_toml().decode().count("data/hcops-observer-key.json") == 1


def test_tls_adds_certificate_key_ca_and_a_verifying_probe(plan: NetworkPlan) -> None:
    doc = documents(plan).document(plan.nodes[0])
    paths = {f.path: f.secret for f in doc.files}
    if not plan.consortium.spec.network.rpc.tls:
        assert not any("rpc-" in p for p in paths) and doc.env == () and len(doc.healthcheck.test) == 2
        assert DesiredContainer(plan, plan.nodes[0]).rpc_url.startswith("http://")
        return
    assert paths["config/rpc-tls-key.pem"] is True
    assert paths["config/rpc-tls-cert.pem"] is False and paths["config/rpc-ca.pem"] is False
    assert dict(doc.env) == {"SSL_CERT_FILE": "/cometbft/config/rpc-ca.pem"}
    assert doc.healthcheck.test[-1] == "https://127.0.0.1:26657/status"
    assert "tls" in doc.files_digest and DesiredContainer(plan, plan.nodes[0]).fields()["tls"]


def test_compose_and_policy_input_come_from_the_same_documents(plan: NetworkPlan) -> None:
    compose = docker_compose(plan)["services"]
    judged = build_input(plan)["manifests"]["dockerContainers"]
    for node, j in zip(plan.nodes, judged, strict=True):
        doc = documents(plan).document(node)
        assert j == doc.to_json()
        svc = compose[node.name]
        assert svc["container_name"] == doc.name and svc["command"] == list(doc.command)
        assert svc["user"] == doc.user and svc["labels"] == doc.label_map
        assert svc["ports"] == [f"{p.host_ip}:{p.host_port}:{p.container_port}" for p in doc.ports]
        binds = {v["target"] for v in svc["volumes"] if v["type"] == "bind"}
        assert binds == {f"/cometbft/{f.path}" for f in doc.files}
        assert svc["healthcheck"]["test"] == list(doc.healthcheck.test)


def test_documents_hold_no_key_material(plan: NetworkPlan) -> None:
    from hcops.render.context import Context

    text = str([d.to_json() for d in documents(plan).all()])
    for node in plan.nodes:
        for content in Context(plan).private_files(node.name).values():
            body = content.decode()
            assert body[40:100] not in text


def test_config_hash_changes_with_what_the_node_runs(plan: NetworkPlan, tmp_path: Path) -> None:
    d = DesiredContainer(plan, plan.nodes[0])
    spec = tmp_path / "more.yaml"
    spec.write_text((tmp_path / "network.yaml").read_text().replace("blockInterval: 1s", "blockInterval: 2s"))
    other = fixture_plan(tmp_path / "state", spec)
    assert DesiredContainer(other, other.nodes[0]).config_hash() != d.config_hash()
    assert len(d.config_hash()) == 12


def test_the_json_form_carries_every_field(plan: NetworkPlan) -> None:
    import dataclasses

    doc = documents(plan).document(plan.nodes[0])
    as_json = doc.to_json()
    assert list(as_json) == [f.name for f in dataclasses.fields(doc)]
    plain = dataclasses.asdict(doc)
    for key in ("env", "tmpfs", "log_options", "labels"):
        plain[key] = dict(plain[key])
    assert json_equal(plain, as_json)


def json_equal(a: Any, b: Any) -> bool:
    import json

    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
