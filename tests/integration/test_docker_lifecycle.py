"""End to end on the real engine, through the CLI in a subprocess: the example consortium (4 validators in
4 organisations + 1 observer) is applied, re-applied, loses a validator, is rolled to a new block interval,
grows and shrinks by an observer and is destroyed. The steps run in order on one network."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from typing import Any

import pytest

from hcops.plan.desired import build_plan
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.spec.loader import load_spec
from tests.providers import docker_support
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

VALIDATORS = ["stmary-val-0", "northside-val-0", "bluecross-val-0", "cityrx-val-0"]
OBSERVER = "state-obs-0"


def rpc(net: TestNetwork, index: int) -> RpcClient:
    return RpcClient(f"http://127.0.0.1:{net.port_base + index}", timeout=2, attempts=3)


def addresses(net: TestNetwork) -> dict[str, str]:
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    return {n.name: n.keys.validator_address for n in plan.nodes if n.node.is_validator}


def container_ids(client: Any, net: TestNetwork) -> dict[str, str]:
    found = client.containers.list(all=True, filters={"label": f"hcops.network={net.name}"})
    return {c.labels["hcops.node"]: c.id for c in found}


def wait_height(client: RpcClient, height: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(RpcUnavailable):
            last = client.status().height
        if last >= height:
            return last
        time.sleep(0.2)
    raise AssertionError(f"height {last} < {height} after {timeout} s")


def block_time(value: str) -> dt.datetime:
    head, _, frac = value.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(head).replace(microsecond=int((frac + "000000")[:6] or 0))


def test_apply_reaches_height_with_every_validator_signing(module_network: TestNetwork) -> None:
    net = module_network
    proc = net.hcops("apply", "--yes", check=True)
    for name in [*VALIDATORS, OBSERVER]:
        assert name in proc.stdout
    # Counted from the height apply returned at: a validator whose container started a little later than the
    # others may miss the chain's first heights, which apply does not wait for.
    start = max(1, rpc(net, 0).status().height)
    latest = wait_height(rpc(net, 0), start + 8)
    addrs = addresses(net)
    full = 0
    signed = {a: 0 for a in addrs.values()}
    for h in range(start, latest):
        commit = rpc(net, 0).commit(h)
        full += commit.signed_by_all(addrs.values())
        for a in commit.signers:
            signed[a] = signed.get(a, 0) + 1
    assert full >= 3, f"only {full} of heights {start}..{latest - 1} signed by all validators"
    assert all(n >= (latest - start) * 0.6 for n in signed.values()), signed
    obs = rpc(net, 4).status()
    assert not obs.catching_up and obs.height >= latest - 2 and obs.voting_power == 0
    assert len(rpc(net, 4).net_info()) >= 1


def test_reapply_is_a_noop(module_network: TestNetwork, docker_engine: Any) -> None:
    net = module_network
    before = container_ids(docker_engine, net)
    assert len(before) == 5
    plan = net.hcops("plan", "--detailed-exitcode", "-o", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["pending"] == 0 and doc["summary"]["unchanged"] == 11
    again = net.hcops("apply", "--yes", check=True)
    assert "no changes" in again.stdout
    assert container_ids(docker_engine, net) == before


def test_status_reports_live_and_audit_facts(module_network: TestNetwork) -> None:
    net = module_network
    doc = json.loads(net.hcops("status", "-o", "json", check=True).stdout)
    assert doc["undeclared"] == []
    by_name = {n["name"]: n for n in doc["nodes"]}
    assert set(by_name) == {*VALIDATORS, OBSERVER}
    for name, n in by_name.items():
        assert n["state"] == "running" and n["height"] >= 1 and n["peers"] == 4
        assert n["voting_power"] == (0 if name == OBSERVER else 10)
        c = n["container"]
        assert c["user"] == "10001:10001" and c["read_only_rootfs"] and c["cap_drop"] == ["ALL"]
        assert c["no_new_privileges"] and not c["privileged"] and c["restart_count"] == 0
        assert c["image"]["reference"] == docker_support.IMAGE and c["image"]["id"].startswith("sha256:")
        assert c["resources"] == {"memory_bytes": 512 * 2**20, "nano_cpus": 500_000_000, "pids_limit": 512}
        for meta in c["key_files"].values():
            assert meta == {"mode": "0600", "uid": 10001, "gid": 10001, "size": meta["size"], "error": None}
        binds = c["ports"]
        assert binds and all(b["host_ip"] == "127.0.0.1" for b in binds)
        assert {"hcops.network", "hcops.org", "hcops.node", "hcops.spec-hash", "hcops.config-hash"} <= set(
            c["labels"])
        env = c["engine"]["env_names"]
        assert env == sorted(env) and not any("KEY" in e for e in env)
        r = n["rpc"]
        assert r["chain_id"] == "rhn-1" and len(r["peers"]) == 4
    chain = doc["facts"]["chain"]  # read once per observation, from the highest node in sync
    assert chain["source"] in by_name and len(chain["validators"]) == 4
    assert chain["commits"] and all(len(c["signers"]) >= 3 for c in chain["commits"])
    text = json.dumps(doc)
    assert "priv_key" not in text


def test_a_stopped_validator_does_not_stop_the_chain_and_apply_restarts_it(
        module_network: TestNetwork, docker_engine: Any) -> None:
    net = module_network
    victim = docker_engine.containers.get(f"{net.name}-cityrx-val-0")
    victim.stop(timeout=5)
    start = rpc(net, 0).status().height
    wait_height(rpc(net, 0), start + 3, timeout=20)  # f = 1: three of four validators keep committing

    plan = json.loads(net.hcops("plan", "-o", "json", check=True).stdout)
    pending = [c for c in plan["changes"] if c["action"] != "unchanged"]
    assert [(c["name"], c["fields"][0]["field"], c["fields"][0]["new"]) for c in pending] == [
        (victim.name, "state", "running")]
    assert net.hcops("plan", "--detailed-exitcode").returncode == 2

    net.hcops("apply", "--yes", check=True)
    victim.reload()
    assert victim.status == "running"
    s = rpc(net, 3).status()
    assert not s.catching_up and s.height >= rpc(net, 0).status().height - 2
    addr = addresses(net)["cityrx-val-0"]
    latest = rpc(net, 0).status().height
    assert any(addr in rpc(net, 0).commit(h).signers for h in range(latest - 3, latest))


def test_rolling_update_keeps_committing(module_network: TestNetwork, docker_engine: Any) -> None:
    net = module_network
    before_ids = container_ids(docker_engine, net)
    h_before = rpc(net, 0).status().height
    net.block_interval = "400ms"
    net.write()
    plan = json.loads(net.hcops("plan", "-o", "json", check=True).stdout)
    updates = [c for c in plan["changes"] if c["action"] == "update"]
    assert len(updates) == 5 and all([f["field"] for f in c["fields"]] == ["config"] for c in updates)

    proc = net.hcops("apply", "--yes", check=True)
    assert proc.stderr.count("==> replacing") == 5
    after_ids = container_ids(docker_engine, net)
    assert set(after_ids) == set(before_ids) and not set(after_ids.values()) & set(before_ids.values())
    h_after = wait_height(rpc(net, 0), rpc(net, 0).status().height)
    assert h_after > h_before + 5
    times = []
    for h in range(h_before, h_after + 1):
        commit = rpc(net, 0).commit(h)  # raises if any height lacks a commit
        assert commit.height == h
        times.append(block_time(commit.time))
    worst = max((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
    assert worst < 15, f"the chain stalled for {worst:.1f} s during the rolling update"  # two rounds lost to the node out


def test_adding_and_removing_an_observer(module_network: TestNetwork, docker_engine: Any) -> None:
    net = module_network
    text = net.spec.read_text()
    extra = "        - {name: state-obs-0, role: observer}   # full node, no voting power\n"
    assert extra in text
    net.spec.write_text(text.replace(extra, extra + "        - {name: state-obs-1, role: observer}\n"))
    net.hcops("apply", "--yes", check=True)
    new = rpc(net, 5).status()
    assert not new.catching_up and new.height >= rpc(net, 0).status().height - 2
    assert f"{net.name}-state-obs-1" in {c.name for c in docker_engine.containers.list()}

    net.spec.write_text(text)
    net.hcops("apply", "--yes", check=True)
    names = {c.name for c in docker_engine.containers.list(all=True)}
    assert f"{net.name}-state-obs-1" not in names
    vols = {v.name for v in docker_engine.volumes.list(filters={"label": f"hcops.network={net.name}"})}
    assert f"{net.name}-state-obs-1-data" in vols  # kept without --prune-volumes
    plan = json.loads(net.hcops("plan", "--prune-volumes", "-o", "json", check=True).stdout)
    assert [c["name"] for c in plan["changes"] if c["action"] == "delete"] == [f"{net.name}-state-obs-1-data"]
    net.hcops("apply", "--yes", "--prune-volumes", check=True)
    vols = {v.name for v in docker_engine.volumes.list(filters={"label": f"hcops.network={net.name}"})}
    assert f"{net.name}-state-obs-1-data" not in vols and len(vols) == 5


def test_destroy_leaves_nothing_and_keys_survive(module_network: TestNetwork, docker_engine: Any) -> None:
    net = module_network
    keys_before = addresses(net)
    reached = rpc(net, 0).status().height
    proc = net.hcops("destroy", check=True)
    assert "kept 5 volume(s)" in proc.stdout
    left = docker_support.leftovers(docker_engine, net.name)
    assert left and all(item.startswith("volume ") for item in left)

    net.hcops("apply", "--yes", check=True)  # kept volumes and keys: the same chain resumes
    assert rpc(net, 0).status().height > reached
    assert rpc(net, 0).commit(2).signers <= set(keys_before.values())
    net.hcops("destroy", check=True)
    net.hcops("destroy", "--prune-volumes", check=True)
    assert docker_support.leftovers(docker_engine, net.name) == []
    assert addresses(net) == keys_before  # keys survive unless purged
    denied = net.hcops("destroy", "--prune-volumes", "--purge-keys")
    assert denied.returncode == 2 and "--yes" in denied.stderr
    net.hcops("destroy", "--prune-volumes", "--purge-keys", "--yes", check=True)
    assert not (net.state_dir / net.name / "keys").exists()
