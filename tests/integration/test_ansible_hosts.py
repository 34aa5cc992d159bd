"""The ansible provider on real hosts (tests/integration/hosts.py: Debian with systemd and sshd, reached over
SSH), driven through the CLI like an operator would. Ordered steps on one network of the example consortium
(4 validators, 1 observer) on five hosts:

1. `hcops apply` installs the nodes and the chain commits blocks signed by every validator; the run is
   recorded in the audit log; keys are 0600 and owned by the node user; the unit is hardened; the firewall
   is loaded; no private key appears in any output or in the run's artifacts;
2. a second apply changes nothing (and `plan --detailed-exitcode` says so);
3. a validator host rebooted (`docker restart`) comes back under systemd, firewall first, and signs again;
4. `hcops audit` reports a key file chmod'ed to 0644 and a unit whose hardening was removed; `hcops apply`
   repairs both (restarting those nodes one at a time) and the audit is clean of them again;
5. `hcops destroy` keeps data and keys, `--prune-volumes` leaves nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.audit.log import AuditLog
from hcops.plan.desired import build_plan
from hcops.providers.ansible.provider import AnsibleProvider
from hcops.spec.loader import load_spec
from tests.integration import hosts
from tests.integration.hosts import HostNetwork

pytestmark = pytest.mark.integration

VALIDATOR = "cityrx-val-0"
OTHER = "northside-val-0"
TIMEOUT = 1500


def _json(proc: Any) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _unit(net: HostNetwork) -> str:
    return f"cometbft-{net.name}.service"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostNetwork]:
    cluster = hosts.shared_hosts(5)
    hosts.reset(cluster)
    network = hosts.host_network(cluster, tmp_path_factory.mktemp("onprem"), "onprem")
    try:
        yield network
    finally:
        hosts.reset(cluster)


def _runs(net: HostNetwork) -> list[dict[str, Any]]:
    with AuditLog(net.state_dir / net.name / "audit.db") as log:
        return [r.body for r in log.records("ansible_run")]


def _signers(net: HostNetwork) -> tuple[int, set[str]]:
    """The chain's height and who signed the recent commits, read like the audit does (observe)."""
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    prov = AnsibleProvider()
    try:
        obs = prov.observe(plan)
    finally:
        prov.close()
    chain = obs.facts["chain"]
    return chain.get("height") or 0, {s for c in chain["commits"] for s in c["signers"]}


def _address(net: HostNetwork, node: str) -> str:
    return build_plan(load_spec(net.spec, "test"), net.state_dir).node(node).keys.validator_address


def test_apply_installs_the_nodes_and_the_chain_commits(net: HostNetwork) -> None:
    proc = net.hcops("apply", "--yes", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # runner events reach the progress output
    assert "ansible: role cometbft_node on 5 host(s)" in proc.stderr
    assert "apply: Node unit (hardened): 5/5" in proc.stderr
    assert "blocks signed by every validator" in proc.stderr

    status = _json(net.hcops("status", "-o", "json", timeout=300))
    nodes = {n["name"]: n for n in status["nodes"]}
    assert len(nodes) == 5 and all(n["state"] == "running" for n in nodes.values()), nodes
    assert all((n["height"] or 0) >= 1 for n in nodes.values())

    runs = _runs(net)
    assert [r["playbook"] for r in runs] == ["apply"]
    assert runs[0]["status"] == "successful" and len(runs[0]["changedHosts"]) == 5
    assert runs[0]["failures"] == {}

    host = net.host(VALIDATOR)
    home = "/var/lib/cometbft"
    modes = host.sh(f"stat -c '%a %U %n' {home}/config/node_key.json {home}/config/priv_validator_key.json "
                    f"{home}/data/priv_validator_state.json").split("\n")
    assert all(line.startswith("600 cometbft ") for line in modes if line), modes
    show = host.sh(f"systemctl show {_unit(net)} -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
                   "-p CapabilityBoundingSet -p ReadWritePaths -p User -p UnitFileState")
    for want in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "CapabilityBoundingSet=\n", f"ReadWritePaths={home}/data\n", "User=cometbft",
                 "UnitFileState=enabled"):
        assert want in show + "\n", show
    rules = host.sh(f"nft list table inet hcops_{net.name.replace('-', '_')}")
    assert "tcp dport 26657 drop" in rules and 'iif "lo"' in rules
    assert "127.0.0.1:26657" in host.sh("ss -Hltn")  # exposure internal: RPC on the host's loopback only

    # Private keys: never in the output, the state's run folder or the audit log.
    secret = json.loads((net.state_dir / net.name / "keys" / VALIDATOR / "priv_validator_key.json").read_text())
    private = secret["priv_key"]["value"]
    assert private not in proc.stdout + proc.stderr
    for f in (net.state_dir / net.name / "ansible").rglob("*"):
        if f.is_file() and "keys" not in f.parts:
            assert private.encode() not in f.read_bytes(), f
    assert private not in json.dumps(runs)


def test_second_apply_changes_nothing(net: HostNetwork) -> None:
    plan = net.hcops("plan", "--detailed-exitcode", timeout=TIMEOUT)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    proc = net.hcops("apply", "--yes", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no changes: the hosts already match the spec" in proc.stderr
    last = _runs(net)[-1]
    assert last["status"] == "successful" and last["changedHosts"] == {}


def test_rebooted_validator_comes_back_and_signs(net: HostNetwork) -> None:
    cluster = net.hosts
    assert cluster is not None
    host = net.host(VALIDATOR)
    before, _ = _signers(net)
    cluster.restart(host)  # systemd shuts down, the container boots again
    assert host.sh(f"systemctl is-enabled {_unit(net)}").strip() == "enabled"
    address = _address(net, VALIDATOR)
    deadline = time.monotonic() + 180
    while True:
        height, signers = _signers(net)
        if height > before and address in signers:
            break
        assert time.monotonic() < deadline, f"{VALIDATOR} did not sign again (height {height}, signers {signers})"
        time.sleep(3)
    assert host.sh(f"systemctl is-active {_unit(net)}").strip() == "active"
    assert host.sh("nft list tables").count(f"hcops_{net.name.replace('-', '_')}") == 1  # firewall back first


def _findings(doc: dict[str, Any], rule: str, node: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == rule and f["resource"] == f"node/{node}"]


def test_audit_reports_a_loose_key_and_a_unit_without_hardening(net: HostNetwork) -> None:
    unit = _unit(net)
    net.host(VALIDATOR).sh("chmod 0644 /var/lib/cometbft/config/priv_validator_key.json")
    net.host(OTHER).sh(
        f"sed -i -e '/^NoNewPrivileges=/d' -e '/^ProtectSystem=/d' -e '/^ProtectHome=/d' -e '/^PrivateTmp=/d' "
        f"-e '/^CapabilityBoundingSet=/d' /etc/systemd/system/{unit} && systemctl daemon-reload && "
        f"systemctl restart {unit}")

    proc = net.hcops("audit", "--format", "json", timeout=600)
    doc = _json(proc)
    assert proc.returncode == 1, proc.stderr
    key = _findings(doc, "HC-RT-AC5-KEY-FILE-MODE", VALIDATOR)
    assert key and "priv_validator_key.json has mode 0644" in key[0]["message"], doc["findings"]
    # What a host shares with a container is judged by the same rule (ProtectSystem=strict: read-only root)
    assert _findings(doc, "HC-RT-IN1-ROOTFS-WRITABLE", OTHER), doc["findings"]
    # and by the host's own rules (policies/runtime/host.rego)
    messages = {f["message"] for f in _findings(doc, "HC-RT-IN1-HOST-UNIT-HARDENING", OTHER)}
    assert f"{OTHER}: {unit} does not set NoNewPrivileges=yes" in messages, doc["findings"]
    assert f"{OTHER}: {unit} keeps capabilities (CapabilityBoundingSet is not empty)" in messages
    assert not [f for f in doc["findings"] if f["resource"] not in (f"node/{VALIDATOR}", f"node/{OTHER}")
                and f["severity"] == "high"], doc["findings"]

    fix = net.hcops("apply", "--yes", timeout=TIMEOUT)
    assert fix.returncode == 0, fix.stdout + fix.stderr
    assert f"restarting {OTHER}" in fix.stderr and f"restarting {VALIDATOR}" in fix.stderr
    again = _json(net.hcops("audit", "--format", "json", timeout=600))
    for rule, node in (("HC-RT-AC5-KEY-FILE-MODE", VALIDATOR), ("HC-RT-IN1-ROOTFS-WRITABLE", OTHER),
                       ("HC-RT-IN1-HOST-UNIT-HARDENING", OTHER)):
        assert not _findings(again, rule, node), again["findings"]
    assert "NoNewPrivileges=yes" in net.host(OTHER).sh(f"systemctl show {unit} -p NoNewPrivileges")


def test_destroy_keeps_data_and_keys_unless_pruned(net: HostNetwork) -> None:
    cluster = net.hosts
    assert cluster is not None
    proc = net.hcops("destroy", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    left = hosts.leftovers(cluster, net.name)
    assert not [x for x in left if x.endswith((": unit", ": firewall unit", ": firewall table", ": rules file"))]
    assert sum(x.endswith(": home") for x in left) == 5
    key = net.host(VALIDATOR).sh("stat -c '%a %U' /var/lib/cometbft/config/priv_validator_key.json").strip()
    assert key == "600 cometbft"
    status = _json(net.hcops("status", "-o", "json", timeout=300))
    assert all(not n["present"] for n in status["nodes"])

    proc = net.hcops("destroy", "--prune-volumes", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert hosts.leftovers(cluster, net.name) == []
    assert [r["playbook"] for r in _runs(net)][-2:] == ["destroy", "destroy"]


def test_unreachable_host_is_an_error_naming_it(net: HostNetwork, tmp_path: Path) -> None:
    """A host that does not answer: plan fails (exit 2) and names it. The address is a free one on the hosts'
    own Docker network, so that no packet leaves this machine."""
    cluster = net.hosts
    assert cluster is not None
    broken = hosts.host_network(cluster, tmp_path, "unreachable")
    overlay = tmp_path / "environments" / "test.yaml"
    here = net.host(VALIDATOR).address
    nowhere = here.rsplit(".", 1)[0] + ".250"
    overlay.write_text(overlay.read_text().replace(f"{{address: {here}}}", f"{{address: {nowhere}}}")
                       .replace("privateKeyFile:", "timeout: 5, privateKeyFile:"))
    proc = broken.hcops("plan", timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert VALIDATOR in proc.stderr and "unreachable" in proc.stderr
