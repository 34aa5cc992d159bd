"""The ansible provider without hosts: its spec section (FILE:LINE errors), the render it runs, how it reads
runner events, host facts and nftables rules, and the role's playbooks passing ansible's syntax check. The
provider on real hosts is tests/integration/test_ansible_hosts.py and the shared contract test."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.progress import RecordingReporter
from hcops.providers.ansible import hostfacts
from hcops.providers.ansible.runner import KEY_TASKS, REPORT_TASK, RunResult, _diff_lines, _Events
from hcops.providers.ansible.workspace import Workspace, check_spec, find_binary
from hcops.providers.base import Provider, get_provider
from hcops.providers.facts import PortBinding
from hcops.render import ansible as render
from hcops.render.base import Context, templates_dir
from hcops.spec.loader import load_spec
from tests.conftest import SpecDir
from tests.render.test_injection import Unsafe, load_ansible

HOSTS = """\
spec:
  provider:
    type: ansible
    ansible:
      connection: {user: ops, privateKeyFile: keys/ops, become: true, port: 2222}
      firewall: {rpcAllowFrom: ["10.9.0.0/16"]}
      hosts:
        a-val-0: {address: 10.20.0.11}
        b-val-0: {address: 10.20.0.12, port: 22}
        c-val-0: {address: "fd00::13"}
        d-val-0: {address: d.example.org, peerAddress: 10.20.0.14}
"""


def _diagnostics(spec_dir: SpecDir, overlay: str) -> list[Any]:
    spec_dir.overlay("onprem", overlay)
    with pytest.raises(InvalidInput) as err:
        plan = build_plan(load_spec(spec_dir.spec, "onprem"), spec_dir.root / "state")
        check_spec(plan)
    return err.value.diagnostics


@pytest.fixture
def plan(spec_dir: SpecDir) -> NetworkPlan:
    spec_dir.overlay("onprem", HOSTS)
    return build_plan(load_spec(spec_dir.spec, "onprem"), spec_dir.root / "state")


# ------------------------------------------------------------------------------------------ the spec

def test_the_provider_is_registered() -> None:
    prov = get_provider("ansible")
    assert isinstance(prov, Provider) and prov.name == "ansible"


@pytest.mark.parametrize(("line", "path"), [
    ("      hosts: {a-val-0: {address: 'bad host'}}", "spec.provider.ansible.hosts.a-val-0.address"),
    ("      hosts: {a-val-0: {address: '10.0.0.1\\n'}}", "spec.provider.ansible.hosts.a-val-0.address"),
    ("      hosts: {a-val-0: {address: 10.0.0.1, port: 70000}}", "spec.provider.ansible.hosts.a-val-0.port"),
    ("      hosts: {a-val-0: {adress: 10.0.0.1}}", "spec.provider.ansible.hosts.a-val-0.adress"),
    ("      hosts: {A_B: {address: 10.0.0.1}}", "spec.provider.ansible.hosts.A_B.[key]"),
    ("      connection: {privateKeyFile: '-oProxyCommand=x'}", "spec.provider.ansible.connection.privateKeyFile"),
    ("      connection: {privateKeyFile: '{{ lookup(\"pipe\", \"id\") }}'}",
     "spec.provider.ansible.connection.privateKeyFile"),
    ("      connection: {user: 'root; id'}", "spec.provider.ansible.connection.user"),
    ("      connection: {hostKeyChecking: off}", "spec.provider.ansible.connection.hostKeyChecking"),
    ("      firewall: {rpcAllowFrom: [10.0.0.1/8]}", "spec.provider.ansible.firewall.rpcAllowFrom[0]"),
    ("      binary: 'a b'", "spec.provider.ansible.binary"),
])
def test_bad_values_are_errors_at_their_line(spec_dir: SpecDir, line: str, path: str) -> None:
    overlay = f"spec:\n  provider:\n    ansible:\n{line}\n"
    spec_dir.overlay("onprem", overlay)
    with pytest.raises(InvalidInput) as err:
        load_spec(spec_dir.spec, "onprem")
    found = [d for d in err.value.diagnostics if d.path == path]
    assert found, [d.format() for d in err.value.diagnostics]
    assert found[0].location is not None and found[0].location.file.endswith("onprem.yaml")
    assert found[0].location.line == 4


def test_hosts_must_name_nodes_and_hold_one_each(spec_dir: SpecDir) -> None:
    found = _diagnostics(spec_dir, textwrap.dedent("""\
        spec:
          provider:
            ansible:
              hosts:
                a-val-9: {address: 10.0.0.1}
                b-val-0: {address: 10.0.0.2}
                c-val-0: {address: 10.0.0.2}
        """))
    by_path = {d.path: d for d in found}
    unknown = by_path["spec.provider.ansible.hosts.a-val-9"]
    assert "is not a node of this consortium" in unknown.message and 'did you mean "a-val-0"' in unknown.message
    assert unknown.location is not None and unknown.location.line == 5
    assert "each node needs a host of its own" in by_path["spec.provider.ansible.hosts.c-val-0.address"].message
    assert by_path["spec.provider.ansible.hosts.c-val-0.address"].location.line == 7


def test_tls_is_refused_until_supported(spec_dir: SpecDir) -> None:
    spec_dir.overlay("onprem", "spec:\n  network: {rpc: {tls: true}}\n")
    plan = build_plan(load_spec(spec_dir.spec, "onprem"), spec_dir.root / "state")
    with pytest.raises(InvalidInput, match="tls is not supported by the ansible provider"):
        check_spec(plan)


# ------------------------------------------------------------------------------------------ the render

def test_inventory_reaches_hosts_at_their_addresses(plan: NetworkPlan) -> None:
    inv = render.inventory(plan)["all"]["children"]
    assert inv["org_org_a"]["hosts"]["a-val-0"] == {"ansible_host": "10.20.0.11"}
    assert inv["org_org_b"]["hosts"]["b-val-0"] == {"ansible_host": "10.20.0.12", "ansible_port": 22}
    assert inv["org_org_d"]["hosts"]["d-obs-0"] == {"ansible_host": "d-obs-0"}  # not listed: its name


def test_group_vars_carry_connection_firewall_and_names(plan: NetworkPlan) -> None:
    g = render.group_vars(Context(plan))
    assert (g["ansible_user"], g["ansible_become"], g["ansible_port"]) == ("ops", True, 2222)
    assert g["cometbft_unit"] == "cometbft-small-net"
    assert g["cometbft_firewall_table"] == "hcops_small_net"
    assert g["cometbft_binary_dest"] == "/usr/local/lib/hcops/small-net/cometbft"
    assert g["cometbft_consortium_ips"] == ["10.20.0.11", "10.20.0.12", "10.20.0.14", "fd00::13"]
    assert g["cometbft_consortium_names"] == ["d-obs-0"]
    assert g["cometbft_rpc_allow_from"] == ["10.9.0.0/16"] and g["cometbft_rpc_exposure"] == "internal"
    assert "ansible_ssh_private_key_file" not in g  # machine-specific: the provider passes it


def test_peers_dial_peer_addresses(plan: NetworkPlan) -> None:
    a = render.host_config(plan, plan.node("a-val-0"))
    peers = a["p2p"]["persistent_peers"].split(",")
    d = plan.node("d-val-0").keys.node_id
    c = plan.node("c-val-0").keys.node_id
    assert f"{d}@10.20.0.14:26656" in peers and f"{c}@[fd00::13]:26656" in peers
    assert a["p2p"]["external_address"] == "10.20.0.11:26656"
    assert a["rpc"]["laddr"] == "tcp://127.0.0.1:26657"  # internal exposure: the host's loopback


def test_without_hosts_the_config_is_the_topologys(spec_dir: SpecDir) -> None:
    p = build_plan(load_spec(spec_dir.spec), spec_dir.root / "state")
    for n in p.nodes:
        assert render.host_config(p, n) == p.host_config(n)


def test_host_vars_limits_and_key_names(plan: NetworkPlan) -> None:
    v = render.host_vars(plan, plan.node("a-val-0"), render.host_config(plan, plan.node("a-val-0")))
    assert v["cometbft_key_files"] == ["node_key.json", "priv_validator_key.json"]
    assert v["cometbft_memory_max"] == 512 * 2**20 and v["cometbft_cpu_quota"] == "50%"
    obs = render.host_vars(plan, plan.node("d-obs-0"), render.host_config(plan, plan.node("d-obs-0")))
    assert obs["cometbft_key_files"] == ["node_key.json"]


def test_the_run_tree_reads_keys_from_the_state_folder(plan: NetworkPlan, tmp_path: Path) -> None:
    keys = str(plan.keystore.node_dir("a-val-0"))
    out = render.tree(Context(plan), keys_src=lambda n: str(plan.keystore.node_dir(n.name)))
    assert not [f for f in out.files if f.private]
    out.write(tmp_path)
    host = load_ansible((tmp_path / "ansible" / "host_vars" / "a-val-0.yaml").read_text())
    assert host["cometbft_keys_src"] == keys and isinstance(host["cometbft_keys_src"], Unsafe)
    assert not (tmp_path / "ansible" / "files" / "a-val-0" / "keys").exists()


# ------------------------------------------------------------------------------------------ the workspace

def _fake_cometbft(folder: Path, version: str) -> Path:
    """A real executable that answers `version` like CometBFT (what hcops checks before copying it)."""
    path = folder / "cometbft"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_binary_must_report_the_specs_version(plan: NetworkPlan, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "bin").mkdir(parents=True)
    _fake_cometbft(tmp_path / "cache" / "bin", "0.38.12")
    with pytest.raises(EnvironmentProblem, match="reports version '0.38.12', the spec says 0.38.17"):
        find_binary(plan)
    _fake_cometbft(tmp_path / "cache" / "bin", "0.38.17")
    os.utime(tmp_path / "cache" / "bin" / "cometbft", ns=(1, 1))  # a new file version for the cache key
    found = find_binary(plan)
    assert found.version == "0.38.17" and len(found.sha256) == 64


def test_prepare_writes_a_private_folder_without_key_copies(plan: NetworkPlan, spec_dir: SpecDir,
                                                              tmp_path: Path) -> None:
    key = spec_dir.root / "keys" / "ops"
    key.parent.mkdir()
    key.write_text("not a real key\n")
    ws = Workspace(plan, None).prepare()
    assert stat.S_IMODE(ws.root.stat().st_mode) == 0o700
    assert ws.inventory.is_file() and (ws.root / "ansible.cfg").is_file()
    assert not list(ws.root.rglob("priv_validator_key.json"))
    env = ws.envvars(5)
    assert env["ANSIBLE_PRIVATE_KEY_FILE"] == str(key)
    assert env["ANSIBLE_CONFIG"] == str(ws.root / "ansible.cfg")  # never an ansible.cfg of the cwd
    assert f"UserKnownHostsFile={ws.root / 'known_hosts'}" in env["ANSIBLE_SSH_ARGS"]
    assert "StrictHostKeyChecking=accept-new" in env["ANSIBLE_SSH_ARGS"]


def test_extra_variables_are_never_templates(plan: NetworkPlan) -> None:
    ws = Workspace(plan, None)
    path = ws.extra_vars_file("run-1", {"hcops_binary_src": "/opt/{{ lookup('pipe', 'id') }}/cometbft",
                                        "hcops_purge": True})
    doc = load_ansible(path.read_text())
    assert isinstance(doc["hcops_binary_src"], Unsafe) and doc["hcops_purge"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_ssh_key_is_named(plan: NetworkPlan) -> None:
    with pytest.raises(InvalidInput, match="privateKeyFile: .*keys/ops does not exist"):
        Workspace(plan, None).prepare()


def test_the_shipped_playbooks_pass_ansibles_syntax_check(plan: NetworkPlan, spec_dir: SpecDir) -> None:
    (spec_dir.root / "keys").mkdir()
    (spec_dir.root / "keys" / "ops").write_text("x\n")
    ws = Workspace(plan, None).prepare()
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(playbook_bin) if playbook_bin.exists() else "ansible-playbook", "--syntax-check",
           "-i", str(ws.inventory), *(str(ws.playbook(p)) for p in ("apply", "observe", "restart", "destroy"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ws.envvars(5)}, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_key_tasks_never_log() -> None:
    """Every task of the role that names a key or the signing state is no_log and shows no diff."""
    import yaml

    tasks = yaml.safe_load((templates_dir() / "ansible/roles/cometbft_node/tasks/main.yml").read_text())
    touching = [t for t in tasks if "key" in t["name"].lower() and "firewall" not in t["name"].lower()
                or "signing state" in t["name"].lower()]
    assert len(touching) == 3
    assert all(t.get("no_log") is True and t.get("diff") is False for t in touching)


# ------------------------------------------------------------------------------------------ runner events

def _ok(host: str, task: str, res: dict[str, Any]) -> dict[str, Any]:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": res}}


def test_events_become_changes_progress_and_failures() -> None:
    rep = RecordingReporter()
    ev = _Events(rep, "apply", 2)
    ev({"event": "playbook_on_task_start", "event_data": {"task": "Node config"}})
    ev(_ok("a", "Node config", {"changed": True, "diff": [{"before": "x = 1\ny = 2\n", "after": "x = 1\ny = 3\n"}]}))
    ev(_ok("b", "Node config", {"changed": False}))
    ev({"event": "playbook_on_task_start", "event_data": {"task": "Node keys"}})
    ev(_ok("a", "Node keys", {"censored": "the output has been hidden"}))
    ev({"event": "runner_on_failed", "event_data": {"host": "b", "task": "Node keys",
                                                    "res": {"censored": "CENSORED-TEXT"}}})
    ev({"event": "playbook_on_task_start", "event_data": {"task": REPORT_TASK}})
    ev(_ok("a", REPORT_TASK, {"msg": {"restart": True}}))
    ev({"event": "playbook_on_stats", "event_data": {"changed": {"a": 2, "b": 0}}})
    assert ("update", "apply: Node config 2/2 changed on 1") in rep.events
    a = ev.hosts["a"]
    assert [(c.field, c.old, c.new) for c in a["changed"].values()] == [
        ("Node config", "y = 2", "y = 3"), (KEY_TASKS, None, "changed")]
    assert a["results"][REPORT_TASK]["msg"] == {"restart": True}
    assert "no_log" in ev.hosts["b"]["failed"] and "CENSORED-TEXT" not in ev.hosts["b"]["failed"]
    assert any(kind == "warn" and "b: Node keys failed" in msg for kind, msg in rep.events)


def test_unreachable_hosts_are_failures_naming_the_host() -> None:
    ev = _Events(RecordingReporter(), "observe", 1)
    ev({"event": "runner_on_unreachable", "event_data": {"host": "a", "task": "Facts for hcops",
                                                         "res": {"msg": "ssh: connect to host x port 22: timed out"}}})
    from hcops.providers.ansible.runner import HostRun

    run = RunResult("observe", "id", "failed", 4, False, 1.0,
                    {"a": HostRun(unreachable=ev.hosts["a"]["unreachable"])})
    assert run.failures == {"a": "unreachable: ssh: connect to host x port 22: timed out"}
    body = run.audit_body("net", "abc")
    assert body["failures"] == run.failures and body["status"] == "failed" and body["hosts"] == ["a"]


def test_diff_lines_of_file_attributes() -> None:
    assert _diff_lines({"before": {"path": "/x", "mode": "0644"}, "after": {"path": "/x", "mode": "0600"}}) == (
        "mode=0644", "mode=0600")


# ------------------------------------------------------------------------------------------ host facts

NFT = [
    {"table": {"family": "inet", "name": "hcops_n"}},
    {"set": {"family": "inet", "name": "consortium4", "table": "hcops_n", "type": "ipv4_addr",
             "elem": ["10.0.0.1", "10.0.0.2"]}},
    {"chain": {"family": "inet", "table": "hcops_n", "name": "input", "hook": "input", "policy": "accept"}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": {"set": [26656, 26657, 26660]}}}, {"accept": None}]}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 26657}},
        {"drop": None}]}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 26656}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@consortium4"}},
        {"accept": None}]}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 26656}},
        {"drop": None}]}},
]


def test_firewall_reach_per_port() -> None:
    assert hostfacts.port_access(NFT, 26657) == {"reach": "loopback", "allowed": ["loopback"]}
    assert hostfacts.port_access(NFT, 26656) == {"reach": "listed",
                                                 "allowed": ["10.0.0.1", "10.0.0.2", "loopback"]}
    assert hostfacts.port_access(NFT, 26660)["reach"] == "any"  # nothing drops it
    odd = [*NFT[:3], {"rule": {"chain": "input", "expr": [{"jump": {"target": "elsewhere"}}]}}, *NFT[3:]]
    assert hostfacts.port_access(odd, 26657)["reach"] == "unknown"


def test_host_facts_in_the_container_shape() -> None:
    facts = {
        "unit": {"installed": True, "active_state": "active", "sub_state": "running", "n_restarts": 2,
                 "hardening": {"user": "cometbft", "no_new_privileges": True, "protect_system": "strict",
                               "capability_bounding_set": [], "ambient_capabilities": []}},
        "user": {"name": "cometbft", "exists": True, "uid": 997, "gid": 996},
        "binary": {"sha256": "ab" * 32},
        "listening": [{"address": "0.0.0.0", "port": 26656}, {"address": "127.0.0.1", "port": 26657}],
        "key_files": {"config/node_key.json": {"mode": "0600", "uid": 997, "gid": 996}},
    }
    c = hostfacts.container_view(facts, "cometbft-n.service")
    assert (c.present, c.state, c.user, c.restart_count) == (True, "running", "997:996", 2)
    assert c.read_only_rootfs is True and c.no_new_privileges is True and c.cap_drop == ("ALL",)
    assert c.privileged is False
    assert PortBinding(26657, "tcp", "127.0.0.1", "26657") in c.ports
    assert c.image is not None and c.image.id == "sha256:" + "ab" * 32 and c.image.reference == ""
    facts["unit"]["hardening"].update(protect_system="no", capability_bounding_set=["cap_chown"])
    c = hostfacts.container_view(facts, "cometbft-n.service")
    assert c.read_only_rootfs is False and c.cap_drop == ()
    assert hostfacts.node_state({"installed": False}) == (False, "absent")
    assert hostfacts.node_state({"installed": True, "active_state": "failed", "sub_state": "failed"}) == (
        True, "failed")
