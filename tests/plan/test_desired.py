from __future__ import annotations

from pathlib import Path

from hcops.plan.desired import build_plan, default_subnet, node_ip
from hcops.spec.loader import load_spec
from tests.conftest import EXAMPLE, SpecDir


def test_genesis_lists_every_validator_with_power(tmp_path: Path) -> None:
    plan = build_plan(load_spec(EXAMPLE), tmp_path)
    g = plan.genesis
    assert g["chain_id"] == "rhn-1" and g["initial_height"] == "1"
    assert [v["name"] for v in g["validators"]] == [n.name for n in plan.consortium.validators]
    assert all(v["power"] == "10" for v in g["validators"])
    by_name = {n.name: n for n in plan.nodes}
    for v in g["validators"]:
        assert v["address"] == by_name[v["name"]].keys.validator_address
        assert v["pub_key"]["value"] == by_name[v["name"]].keys.validator_pub_key
    assert "state-obs-0" not in {v["name"] for v in g["validators"]}


def test_plan_is_stable_across_runs(tmp_path: Path) -> None:
    a = build_plan(load_spec(EXAMPLE), tmp_path)
    b = build_plan(load_spec(EXAMPLE), tmp_path)
    assert a.genesis_json() == b.genesis_json()
    assert [n.keys for n in a.nodes] == [n.keys for n in b.nodes]
    assert a.docker_config(a.nodes[0]) == b.docker_config(b.nodes[0])
    assert a.spec_hash() == b.spec_hash()


def test_config_follows_the_spec(spec_dir: SpecDir, tmp_path: Path) -> None:
    spec_dir.overlay("x", """\
        spec:
          chain: {blockInterval: 1500ms}
          network:
            rpc: {exposure: host, cors: [https://portal.example]}
            p2p: {pex: true, addrBookStrict: false}
          data: {txIndex: kv}
        """)
    plan = build_plan(load_spec(spec_dir.spec, "x"), tmp_path)
    node = plan.node("a-val-0")
    cfg = plan.docker_config(node)
    assert cfg["moniker"] == "a-val-0"
    assert cfg["consensus"]["timeout_commit"] == "1s500ms"
    assert cfg["rpc"]["cors_allowed_origins"] == ["https://portal.example"]
    assert cfg["p2p"]["pex"] is True and cfg["p2p"]["addr_book_strict"] is False
    assert cfg["tx_index"]["indexer"] == "kv"
    assert cfg["instrumentation"]["prometheus"] is True
    peers = cfg["p2p"]["persistent_peers"].split(",")
    assert len(peers) == len(plan.nodes) - 1
    assert f"{plan.node('b-val-0').keys.node_id}@{plan.node('b-val-0').docker_ip}:26656" in peers
    assert node.keys.node_id not in cfg["p2p"]["persistent_peers"]
    host = plan.host_config(node)
    assert host["rpc"]["laddr"] == "tcp://127.0.0.1:26657", "host exposure listens on loopback outside containers"


def test_default_config_is_locked_down(tmp_path: Path) -> None:
    cfg = build_plan(load_spec(EXAMPLE), tmp_path).host_config(build_plan(load_spec(EXAMPLE), tmp_path).nodes[0])
    assert cfg["rpc"]["laddr"] == "tcp://127.0.0.1:26657"
    assert cfg["rpc"]["cors_allowed_origins"] == [] and cfg["rpc"]["unsafe"] is False
    assert cfg["p2p"]["pex"] is False and cfg["p2p"]["addr_book_strict"] is True
    assert cfg["p2p"]["allow_duplicate_ip"] is False
    assert cfg["tx_index"]["indexer"] == "null"


def test_addresses_and_ports_are_unique(tmp_path: Path) -> None:
    plan = build_plan(load_spec(EXAMPLE), tmp_path)
    assert len({n.docker_ip for n in plan.nodes}) == len(plan.nodes)
    assert [n.rpc_host_port for n in plan.nodes] == list(range(26657, 26657 + len(plan.nodes)))
    assert default_subnet("x") == default_subnet("x")
    assert node_ip("10.1.0.0/16", 0) == "10.1.0.10" and node_ip("10.1.0.0/16", 300) == "10.1.1.54"


def test_state_dir_env_is_honoured(state_dir: Path) -> None:
    plan = build_plan(load_spec(EXAMPLE))
    assert plan.state_dir == state_dir / "regional-health-net"
    assert (state_dir / "regional-health-net" / "keys" / "stmary-val-0").is_dir()
