"""hcops render: layout, determinism, manifests as data, hardening, exposure, key material and its modes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.plan.desired import NetworkPlan
from hcops.plan.keys import KeyStore
from hcops.render import TARGETS, docker_compose, kubernetes_objects, render_targets
from hcops.render.base import TEMPLATES_ENV, templates_dir
from hcops.render.budgets import max_unavailable_validators, namespace_budgets
from tests.cli_helpers import run_cli
from tests.conftest import EXAMPLE
from tests.render.helpers import (
    KEY_FILES,
    SPEC,
    fixture_plan,
    is_key_material,
    kubernetes_files,
    modes,
    render_all,
    tree,
    yaml_docs,
)
from tests.render.test_injection import load_ansible

K8S_VERSION = kubernetes_validate.latest_version()


@pytest.fixture
def plan(tmp_path: Path) -> NetworkPlan:
    return fixture_plan(tmp_path / "state")


@pytest.fixture
def out(plan: NetworkPlan, tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    render_all(plan, folder)
    return folder


def with_spec(tmp_path: Path, edit: str, old: str) -> Path:
    """The fixture spec with one line replaced."""
    text = SPEC.read_text()
    assert old in text
    path = tmp_path / "network.yaml"
    path.write_text(text.replace(old, edit))
    return path


# ------------------------------------------------------------------------------------------------- layout

def test_layout(out: Path) -> None:
    files = set(tree(out))
    nodes = ["mercy-val-0", "acme-val-0", "corner-val-0", "lab-val-0", "lab-obs-0"]
    expected = {"docker/compose.yaml", "docker/.env", "docker/genesis.json", "docker/README.txt",
                "kubernetes/00-namespace.yaml", "kubernetes/10-network-policies.yaml",
                "kubernetes/20-disruption-budget.yaml", "kubernetes/30-genesis.yaml",
                "kubernetes/secrets/README.txt", "ansible/inventory.yaml", "ansible/group_vars/all.yaml",
                "ansible/files/genesis.json"}
    for n in nodes:
        expected |= {f"docker/nodes/{n}/config.toml", f"kubernetes/50-node-{n}.yaml",
                     f"kubernetes/secrets/{n}.yaml", f"ansible/host_vars/{n}.yaml",
                     f"ansible/files/{n}/config.toml"}
        # an observer gets no validator key (cometbft.OBSERVER_KEY)
        keys = KEY_FILES if n != "lab-obs-0" else KEY_FILES[:1]
        expected |= {f"docker/nodes/{n}/keys/{k}" for k in keys}
        expected |= {f"ansible/files/{n}/keys/{k}" for k in keys}
    assert files - {f"{t}/.hcops-files" for t in TARGETS} == expected


def test_returns_every_file_it_wrote(plan: NetworkPlan, tmp_path: Path) -> None:
    out = tmp_path / "o"
    written = render_targets(plan, ["docker"], out)
    assert sorted(str(p.relative_to(out)) for p in written) == sorted(
        rel for rel in tree(out) if not rel.endswith(".hcops-files"))
    assert not (out / "kubernetes").exists() and not (out / "ansible").exists()


def test_unknown_target_is_invalid_input(plan: NetworkPlan, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown render target"):
        render_targets(plan, ["helm"], tmp_path / "o")


def test_cli_renders_the_example(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    r = run_cli(capsys, "render", "-f", str(EXAMPLE), "-o", str(tmp_path / "o"),
                "--state-dir", str(tmp_path / "state"), "--generate-keys")
    assert r.code == 0, r.err
    assert "docker, kubernetes, ansible" in r.out
    assert (tmp_path / "o" / "docker" / "compose.yaml").is_file()


def test_templates_folder_can_be_moved(plan: NetworkPlan, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    moved = tmp_path / "templates"
    shutil.copytree(templates_dir(), moved)
    (moved / "docker" / "README.txt.j2").write_text("custom {{ network }}\n")
    monkeypatch.setenv(TEMPLATES_ENV, str(moved))
    render_targets(plan, ["docker"], tmp_path / "o")
    assert (tmp_path / "o" / "docker" / "README.txt").read_text() == "custom golden-net\n"
    monkeypatch.setenv(TEMPLATES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match="template"):
        render_targets(plan, ["docker"], tmp_path / "o2")


# ------------------------------------------------------------------------------------------- determinism

def test_two_renders_are_byte_identical(plan: NetworkPlan, tmp_path: Path) -> None:
    render_all(plan, tmp_path / "a")
    render_all(plan, tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert modes(tmp_path / "a") == modes(tmp_path / "b")


def test_a_new_plan_from_the_same_state_renders_the_same(tmp_path: Path) -> None:
    render_all(fixture_plan(tmp_path / "state"), tmp_path / "a")
    render_all(fixture_plan(tmp_path / "state"), tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_rerender_leaves_unchanged_files_alone(plan: NetworkPlan, out: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    render_all(plan, out)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_removed_node_files_are_pruned_but_foreign_files_kept(plan: NetworkPlan, out: Path,
                                                              tmp_path: Path) -> None:
    (out / "docker" / "notes.txt").write_text("mine")
    (out / "docker" / "nodes" / "lab-obs-0" / "extra.txt").write_text("mine too")
    smaller = with_spec(tmp_path, "", "        - {name: lab-obs-0, role: observer}\n")
    render_all(fixture_plan(tmp_path / "state", smaller), out)
    files = set(tree(out))
    assert not any("lab-obs-0" in f and not f.endswith("extra.txt") for f in files)
    assert "docker/notes.txt" in files and "docker/nodes/lab-obs-0/extra.txt" in files
    assert not (out / "ansible" / "files" / "lab-obs-0").exists()


# ------------------------------------------------------------------------------------ manifests as data

def test_compose_file_parses_to_docker_compose(plan: NetworkPlan, out: Path) -> None:
    assert yaml.safe_load((out / "docker" / "compose.yaml").read_text()) == docker_compose(plan)


def test_kubernetes_files_parse_to_kubernetes_objects(plan: NetworkPlan, out: Path) -> None:
    rendered = [doc for f in kubernetes_files(out) for doc in yaml_docs(f)]
    expected = kubernetes_objects(plan, secrets=True)

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return o["kind"], o["metadata"]["name"]

    assert sorted(map(key, rendered)) == sorted(map(key, expected))
    by_key = {key(o): o for o in rendered}
    for obj in expected:
        assert by_key[key(obj)] == obj, key(obj)


def test_policy_objects_leave_secrets_out(plan: NetworkPlan) -> None:
    kinds = [o["kind"] for o in kubernetes_objects(plan)]
    assert "Secret" not in kinds and kinds.count("StatefulSet") == 5


# --------------------------------------------------------------------------------------------- kubernetes

def test_every_kubernetes_object_validates_strictly(out: Path) -> None:
    objects = [doc for f in kubernetes_files(out) for doc in yaml_docs(f)]
    assert {o["kind"] for o in objects} == {"Namespace", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap",
                                            "Service", "StatefulSet", "Secret"}
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_pods_meet_the_restricted_profile(plan: NetworkPlan) -> None:
    objects = kubernetes_objects(plan)
    ns = next(o for o in objects if o["kind"] == "Namespace")
    assert ns["metadata"]["name"] == "golden"
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for sts in (o for o in objects if o["kind"] == "StatefulSet"):
        pod = sts["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for c in pod["initContainers"] + pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["resources"]["limits"] == c["resources"]["requests"]
        main = pod["containers"][0]
        assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(main)
        keys = next(v for v in pod["volumes"] if v["name"] == "keys")
        assert keys["secret"]["defaultMode"] == 0o400
        claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
        assert claim["storageClassName"] == "encrypted-ssd"
        assert claim["resources"]["requests"]["storage"] == "5Gi"
        assert sts["spec"]["replicas"] == 1


def test_every_object_carries_the_labels(plan: NetworkPlan) -> None:
    for obj in kubernetes_objects(plan, secrets=True):
        labels = obj["metadata"]["labels"]
        assert labels["hcops.network"] == "golden-net" and labels["app.kubernetes.io/managed-by"] == "hcops"
        if obj["kind"] in ("StatefulSet", "Service", "Secret") or obj["metadata"]["name"].endswith("-config"):
            assert labels["hcops.node"] and labels["hcops.org"]


def test_headless_services_publish_not_ready_addresses(plan: NetworkPlan) -> None:
    for svc in (o for o in kubernetes_objects(plan) if o["kind"] == "Service"):
        assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
        assert {p["port"] for p in svc["spec"]["ports"]} == {26656, 26657}


def _policies(plan: NetworkPlan) -> dict[str, dict[str, Any]]:
    objects = kubernetes_objects(plan)
    return {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}


@pytest.mark.parametrize(("exposure", "sources"), [
    ("host", None),
    ("internal", [{"podSelector": {"matchLabels": {"hcops.network": "golden-net"}}}]),
    ("consortium", [{"podSelector": {"matchLabels": {"hcops.network": "golden-net"}}},
                    {"namespaceSelector": {"matchLabels": {"hcops.consortium": "golden-net"}}}]),
    ("public", "any"),
])
def test_network_policies_follow_rpc_exposure(tmp_path: Path, exposure: str, sources: Any) -> None:
    spec = with_spec(tmp_path, f"rpc: {{exposure: {exposure}, ", "rpc: {exposure: internal, ")
    policies = _policies(fixture_plan(tmp_path / "state", spec))
    deny = policies["hcops-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    p2p = policies["hcops-allow-p2p"]
    assert p2p["ingress"][0]["ports"] == [{"port": 26656, "protocol": "TCP"}]
    assert p2p["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"hcops.network": "golden-net"}}}]
    assert {p["port"] for p in policies["hcops-allow-dns"]["egress"][0]["ports"]} == {53}
    if sources is None:
        assert "hcops-allow-rpc" not in policies
        return
    rule = policies["hcops-allow-rpc"]["ingress"][0]
    assert rule["ports"] == [{"port": 26657, "protocol": "TCP"}]
    if sources == "any":
        assert "from" not in rule
    else:
        assert rule["from"] == sources


@pytest.mark.parametrize(("powers", "expected"), [
    ([10, 10, 10, 10], 1), ([1] * 7, 2), ([1] * 10, 3), ([1] * 3, 1), ([1], 1),
    ([40, 10, 10, 10, 10, 10, 10], 1),  # 40 of 100: the strongest alone may not go
    ([5, 5, 5, 5, 5, 5, 5, 65], 1),  # the strongest holds > 1/3: no safe eviction, still 1 (documented)
    ([10, 20, 30, 40, 50, 60, 70], 1),  # 70 < 280/3, but 70 + 60 is not
    ([20, 20, 20, 20, 20, 20, 20, 1], 2),  # 40 < 141/3 <= 60
])
def test_disruption_budget(powers: list[int], expected: int) -> None:
    assert max_unavailable_validators(powers) == expected


def test_disruption_budget_keeps_two_thirds_online() -> None:
    for n in range(4, 40):
        k = max_unavailable_validators([1] * n)
        assert k == (n - 1) // 3 and 3 * (n - k) > 2 * n



@pytest.mark.parametrize(("validators", "expected"), [
    # four organizations, one validator each: one eviction in the whole network, not one per namespace
    ([("a", 10), ("b", 10), ("c", 10), ("d", 10)], {"a": 1, "b": 0, "c": 0, "d": 0}),
    ([("a", 1)] * 4 + [("b", 1)] * 3, {"a": 1, "b": 1}),  # 7 validators tolerate 2: one in each namespace
    ([("a", 50), ("b", 10), ("c", 10)], {"a": 0, "b": 1, "c": 1}),  # the strongest may never go
])
def test_namespace_budgets_together_keep_two_thirds_online(validators: list[tuple[str, int]],
                                                           expected: dict[str, int]) -> None:
    budgets = namespace_budgets(validators)
    assert budgets == expected
    total = sum(p for _, p in validators)
    worst = sum(sum(sorted((p for n, p in validators if n == ns), reverse=True)[:k]) for ns, k in budgets.items())
    assert 3 * (total - worst) > 2 * total

# ------------------------------------------------------------------------------------------------- docker

def test_compose_services_are_hardened(plan: NetworkPlan) -> None:
    doc = docker_compose(plan)
    assert set(doc["services"]) == {f"{n.name}{s}" for n in plan.nodes for s in ("", "_init")}
    for name, svc in doc["services"].items():
        assert svc["user"] == "10001:10001" and svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"] and svc["security_opt"] == ["no-new-privileges:true"], name
        assert svc["mem_limit"] > 0 and svc["cpus"] > 0 and svc["pids_limit"] > 0, name
        labels = svc["labels"]
        assert {"hcops.network", "hcops.org", "hcops.node", "hcops.role", "hcops.spec-hash"} <= set(labels)
        assert labels["hcops.spec-hash"] == plan.spec_hash()
        if name.endswith("_init"):
            assert svc["network_mode"] == "none" and svc["restart"] == "no"
            assert not any(v["target"].endswith("priv_validator_key.json") for v in svc["volumes"])
            continue
        assert svc["restart"] == "unless-stopped" and svc["tmpfs"][0].startswith("/tmp")
        assert svc["healthcheck"]["test"] == ["CMD", "/usr/local/bin/hcops-probe"]
        assert svc["depends_on"] == {f"{name}_init": {"condition": "service_completed_successfully"}}
        assert svc["privileged"] is False and "environment" not in svc
        node = plan.node(name)
        assert svc["networks"] == {"consortium": {"ipv4_address": node.docker_ip, "aliases": [name]}}
        binds = {v["target"]: v for v in svc["volumes"] if v["type"] == "bind"}
        keys = KEY_FILES if node.node.is_validator else KEY_FILES[:1]  # no validator key for an observer
        assert set(binds) == {f"/cometbft/config/{f}" for f in ("config.toml", "genesis.json", *keys)}
        assert all(v["read_only"] is True for v in binds.values())
        assert [v["target"] for v in svc["volumes"] if v["type"] == "volume"] == ["/cometbft"]
    assert doc["networks"]["consortium"]["ipam"] == {"config": [{"subnet": plan.docker_subnet}]}
    assert doc["networks"]["consortium"]["name"] == "golden-net"


def test_compose_resources_follow_the_spec(plan: NetworkPlan) -> None:
    services = docker_compose(plan)["services"]
    assert services["acme-val-0"]["mem_limit"] == 2**30 and services["acme-val-0"]["cpus"] == 1.0
    assert services["mercy-val-0"]["mem_limit"] == 256 * 2**20 and services["mercy-val-0"]["cpus"] == 0.25


@pytest.mark.parametrize(("exposure", "loopback"), [("host", True), ("internal", True),
                                                    ("consortium", False), ("public", False)])
def test_rpc_publishing_follows_exposure(tmp_path: Path, exposure: str, loopback: bool) -> None:
    spec = with_spec(tmp_path, f"rpc: {{exposure: {exposure}, ", "rpc: {exposure: internal, ")
    plan = fixture_plan(tmp_path / "state", spec)
    services = docker_compose(plan)["services"]
    for node in plan.nodes:
        ports = services[node.name]["ports"]
        published = f"{node.rpc_host_port}:26657"
        assert ports == [f"127.0.0.1:{published}" if loopback else f"0.0.0.0:{published}"]
        assert "26656" not in json.dumps(ports)  # P2P never published
    assert [plan.node(n).rpc_host_port for n in ("mercy-val-0", "acme-val-0")] == [28657, 28658]


def test_compose_mounts_exist_relative_to_the_compose_file(plan: NetworkPlan, out: Path) -> None:
    for svc in docker_compose(plan)["services"].values():
        for v in svc["volumes"]:
            if v["type"] == "bind":
                assert v["source"].startswith("./") and (out / "docker" / v["source"]).is_file()
    assert (out / "docker" / ".env").read_text() == "COMPOSE_PROJECT_NAME=golden-net\n"


# ------------------------------------------------------------------------------------------- key material

def _private_values(plan: NetworkPlan) -> dict[str, str]:
    """Every encoding of every private key in the state folder: base64 and hex of the 64-byte key and of its
    32-byte seed, and the base64 of each whole key file (as a Secret would hold it)."""
    store = KeyStore(plan.state_dir)
    found: dict[str, str] = {}
    for node in plan.nodes:
        for name, content in store.private_files(node.name).items():
            b64 = json.loads(content)["priv_key"]["value"]
            raw = base64.b64decode(b64)
            where = f"{node.name}/{name}"
            for label, value in (("base64", b64), ("hex", raw.hex()), ("HEX", raw.hex().upper()),
                                 ("seed base64", base64.b64encode(raw[:32]).decode()[:42]),
                                 ("seed hex", raw[:32].hex()),
                                 ("file base64", base64.b64encode(content).decode())):
                found[value] = f"{where} ({label})"
    return found


def test_secret_scan_no_private_key_outside_key_material(plan: NetworkPlan, out: Path) -> None:
    secrets = _private_values(plan)
    assert len(secrets) == 5 * 2 * 6
    outside = {rel: data.decode() for rel, data in tree(out).items() if not is_key_material(rel)}
    assert any(rel.endswith("compose.yaml") for rel in outside)  # the scan looks at the manifests
    for rel, text in outside.items():
        for value, what in secrets.items():
            assert value not in text, f"{what} found in {rel}"


def test_secret_scan_of_the_policy_input(plan: NetworkPlan) -> None:
    from hcops.policy.input import build_input

    text = json.dumps(build_input(plan))
    for value, what in _private_values(plan).items():
        assert value not in text, f"{what} found in the policy input"


def test_key_files_are_copies_with_private_modes(plan: NetworkPlan, out: Path) -> None:
    store = KeyStore(plan.state_dir)
    for node in plan.nodes:
        state = store.private_files(node.name)
        if not node.node.is_validator:  # an observer is handed no validator key (cometbft.OBSERVER_KEY)
            state.pop("priv_validator_key.json")
        for folder in (out / "docker" / "nodes" / node.name / "keys",
                       out / "ansible" / "files" / node.name / "keys"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert sorted(p.name for p in folder.iterdir()) == sorted(state)
            for name in state:
                assert (folder / name).read_bytes() == state[name]
                assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
        secret = yaml_docs(out / "kubernetes" / "secrets" / f"{node.name}.yaml")
        assert [d["kind"] for d in secret] == ["Secret"]
        assert {k: base64.b64decode(v) for k, v in secret[0]["data"].items()} == state


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to uid 10001")
def test_docker_key_files_belong_to_the_node_user(plan: NetworkPlan, out: Path) -> None:
    for node in plan.nodes:
        for name in KEY_FILES if node.node.is_validator else KEY_FILES[:1]:
            st = (out / "docker" / "nodes" / node.name / "keys" / name).stat()
            assert (st.st_uid, st.st_gid) == (10001, 10001)
            assert (out / "ansible" / "files" / node.name / "keys" / name).stat().st_uid == os.geteuid()


def test_secrets_only_in_the_secrets_folder(out: Path) -> None:
    folder = out / "kubernetes" / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "KEY MATERIAL" in (folder / "README.txt").read_text()
    for f in (out / "kubernetes").glob("*.yaml"):
        assert all(d["kind"] != "Secret" for d in yaml_docs(f)), f
    for rel, data in tree(out).items():
        if not is_key_material(rel):
            assert b"priv_key" not in data, rel


def test_key_modes_are_restored_on_rerender(plan: NetworkPlan, out: Path) -> None:
    key = out / "docker" / "nodes" / "mercy-val-0" / "keys" / "priv_validator_key.json"
    os.chmod(key, 0o644)
    os.chmod(key.parent, 0o755)
    render_all(plan, out)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_non_key_files_are_world_readable(out: Path) -> None:
    for rel, mode in modes(out).items():
        path = out / rel
        if path.is_file() and not is_key_material(rel) and not rel.startswith("kubernetes/secrets/"):
            assert mode == 0o644, rel


# ------------------------------------------------------------------------------------------------ ansible

def test_ansible_inventory_groups(plan: NetworkPlan, out: Path) -> None:
    inv = load_ansible((out / "ansible" / "inventory.yaml").read_text())["all"]["children"]
    assert set(inv) == {"org_mercy_hospital", "org_acme_payer", "org_corner_pharmacy", "org_city_lab",
                        "validators", "observers"}
    assert set(inv["org_city_lab"]["hosts"]) == {"lab-val-0", "lab-obs-0"}
    assert inv["org_city_lab"]["hosts"]["lab-obs-0"] == {"ansible_host": "lab-obs-0"}
    assert set(inv["validators"]["hosts"]) == {"mercy-val-0", "acme-val-0", "corner-val-0", "lab-val-0"}
    assert set(inv["observers"]["hosts"]) == {"lab-obs-0"}


def test_ansible_vars(plan: NetworkPlan, out: Path) -> None:
    group = load_ansible((out / "ansible" / "group_vars" / "all.yaml").read_text())
    assert group["cometbft_chain_id"] == "golden-1" and group["cometbft_user"] == "cmt"
    assert group["cometbft_home"] == "/srv/cometbft"
    assert group["cometbft_genesis_dest"] == "/srv/cometbft/config/genesis.json"
    host = load_ansible((out / "ansible" / "host_vars" / "lab-obs-0.yaml").read_text())
    node = plan.node("lab-obs-0")
    assert host["cometbft_role"] == "observer" and host["cometbft_power"] == 0
    assert host["cometbft_node_id"] == node.keys.node_id
    assert host["cometbft_rpc_laddr"] == "tcp://127.0.0.1:26657"  # bare host, exposure internal
    assert (host["cometbft_p2p_port"], host["cometbft_rpc_port"]) == (26656, 26657)
    for rel, data in tree(out / "ansible").items():
        if not is_key_material(rel):
            assert b"priv_key" not in data


def test_configs_address_peers_per_target(plan: NetworkPlan, out: Path) -> None:
    import tomllib

    node = plan.node("mercy-val-0")
    docker = tomllib.loads((out / "docker" / "nodes" / node.name / "config.toml").read_text())
    ansible = tomllib.loads((out / "ansible" / "files" / node.name / "config.toml").read_text())
    docs = yaml_docs(out / "kubernetes" / f"50-node-{node.name}.yaml")
    kube = next(d for d in docs if d["kind"] == "ConfigMap")
    kube_cfg = tomllib.loads(kube["data"]["config.toml"])
    assert docker == plan.docker_config(node)  # a full mesh below FULL_MESH_MAX: exactly the plan's config
    assert ansible == plan.host_config(node)
    assert kube_cfg == plan.kubernetes_config(node, "golden")
    assert docker["tx_index"] == {"indexer": "kv"} and docker["consensus"]["timeout_commit"] == "500ms"
