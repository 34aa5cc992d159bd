"""The real CometBFT binary accepts the keys, genesis and config hcops generates."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.plan.keys import initial_validator_state
from hcops.spec.loader import load_spec
from tests.conftest import EXAMPLE, SpecDir
from tests.integration.requirements import binary

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_home(plan: NetworkPlan, node: str, home: Path, config: dict[str, Any]) -> None:
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir()
    (home / "config" / "config.toml").write_text(tomli_w.dumps(config))
    (home / "config" / "genesis.json").write_text(plan.genesis_json())
    for name, content in plan.keystore.private_files(node).items():
        (home / "config" / name).write_bytes(content)
    (home / "data" / "priv_validator_state.json").write_bytes(initial_validator_state())


def rpc(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        doc: dict[str, Any] = json.load(resp)
        return doc["result"]


def test_single_validator_network_commits_blocks(spec_dir: SpecDir, tmp_path: Path) -> None:
    cometbft = binary("cometbft", "cometbft")
    spec_dir.write("""\
        apiVersion: hcops/v1alpha1
        kind: Consortium
        metadata: {name: solo-net}
        spec:
          chain: {version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: solo-1, blockInterval: 200ms}
          organizations:
            - name: org-a
              role: provider
              nodes: [{name: val-0, power: 5}]
        """)
    spec_dir.overlay("dev", "spec: {}\n")
    plan = build_plan(load_spec(spec_dir.spec, "dev"), tmp_path / "state")
    node = plan.node("val-0")
    rpc_port, p2p_port = free_port(), free_port()
    config = plan.host_config(node)
    config["rpc"]["laddr"] = f"tcp://127.0.0.1:{rpc_port}"
    config["p2p"]["laddr"] = f"tcp://127.0.0.1:{p2p_port}"
    config["instrumentation"]["prometheus"] = False
    home = tmp_path / "home"
    write_home(plan, "val-0", home, config)
    log = (tmp_path / "cometbft.log").open("w")
    proc = subprocess.Popen([str(cometbft), "start", "--home", str(home)], stdout=log, stderr=subprocess.STDOUT)
    try:
        height, status = 0, {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and height < 2:
            assert proc.poll() is None, (tmp_path / "cometbft.log").read_text()[-2000:]
            try:
                status = rpc(rpc_port, "/status")
                height = int(status["sync_info"]["latest_block_height"])
            except OSError:
                pass
            time.sleep(0.2)
        assert height >= 2, (tmp_path / "cometbft.log").read_text()[-2000:]
        assert status["node_info"]["id"] == node.keys.node_id
        assert status["node_info"]["network"] == "solo-1"
        assert status["validator_info"]["address"] == node.keys.validator_address
        validators = rpc(rpc_port, "/validators")["validators"]
        assert [(v["address"], v["voting_power"]) for v in validators] == [(node.keys.validator_address, "5")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_show_node_id_matches_for_every_node(tmp_path: Path) -> None:
    cometbft = binary("cometbft", "cometbft")
    plan = build_plan(load_spec(EXAMPLE), tmp_path / "state")
    for node in plan.nodes:
        home = tmp_path / node.name
        write_home(plan, node.name, home, plan.host_config(node))
        shown = subprocess.run([str(cometbft), "show-node-id", "--home", str(home)],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert shown == node.keys.node_id
        if node.node.power == 0:
            # An observer never loads the validator key it was issued: CometBFT writes itself a throwaway one.
            assert "priv_validator_key.json" not in (home / "config" / "config.toml").read_text()
            continue
        validator = subprocess.run([str(cometbft), "show-validator", "--home", str(home)],
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert json.loads(validator)["value"] == node.keys.validator_pub_key
