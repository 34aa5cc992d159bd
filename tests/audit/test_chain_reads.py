"""Chain-level reads of a sweep: the RPC client's keep-alive connection, the Docker observation's once-per-sweep
validator set and recent commits, and how the fact document takes them (or per-node reads) into ``chain``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from hcops.audit.facts import build_facts
from hcops.plan.desired import NetworkPlan
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.docker.observe import chain_facts, chain_sources
from hcops.providers.facts import RpcFacts
from hcops.providers.rpc import RpcClient, RpcUnavailable
from tests.audit import fakes
from tests.audit.conftest import NOW

VALS = [{"address": "AAAA", "voting_power": "10"}, {"address": "BBBB", "voting_power": "10"}]


class StandIn:
    """A CometBFT RPC stand-in speaking HTTP/1.1; counts requests and TCP connections."""

    def __init__(self, *, close_after_reply: bool = False) -> None:
        self.calls: list[str] = []
        self.connections = 0
        self.posts = 0
        self.close_after_reply = close_after_reply
        self.height = 20

    def answer(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        self.calls.append(path)
        if path == "/status":
            return {"node_info": {"id": "abcd", "network": "c-1"},
                    "sync_info": {"latest_block_height": str(self.height), "catching_up": False},
                    "validator_info": {"address": "AAAA", "voting_power": "10"}}
        if path == "/validators":
            return {"validators": VALS, "total": str(len(VALS))}
        h = int(query["height"][0])
        sigs = [{"block_id_flag": 2, "validator_address": "AAAA"},
                {"block_id_flag": 2 if h % 2 else 1, "validator_address": "BBBB"}]
        return {"signed_header": {"header": {"height": str(h)}, "commit": {"signatures": sigs}}, "canonical": True}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(state: StandIn) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as CometBFT's Go server

            def setup(self) -> None:
                state.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                body = json.dumps({"result": state.answer(url.path, parse_qs(url.query))}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = state.close_after_reply  # drops it without saying so

            def do_POST(self) -> None:  # noqa: N802
                state.posts += 1  # a JSON-RPC batch: one array of answers, in one reply
                calls = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = json.dumps([{"jsonrpc": "2.0", "id": c["id"], "result": state.answer(
                    "/" + c["method"], {k: [v] for k, v in c["params"].items()})} for c in calls]).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_calls_to_one_node_share_a_keep_alive_connection(serve: Any) -> None:
    node = StandIn()
    rpc = RpcClient(serve(node), attempts=1)
    assert rpc.status().height == 20 and len(rpc.validators()) == 2 and rpc.commit(19).signers == {"AAAA", "BBBB"}
    rpc.close()
    assert node.connections == 1 and len(node.calls) == 3


def test_a_connection_the_node_dropped_is_reopened(serve: Any) -> None:
    node = StandIn(close_after_reply=True)
    rpc = RpcClient(serve(node), attempts=1)
    assert [rpc.status().height for _ in range(3)] == [20, 20, 20]
    assert node.connections == 3


def test_chain_facts_come_from_the_first_source_that_answers(serve: Any) -> None:
    node = StandIn()
    url = serve(node)
    got = chain_facts([("down", "http://127.0.0.1:9", 30), ("up", url, 20)], timeout=0.5)
    assert got["source"] == "up" and got["height"] == 20
    assert got["validators"] == [{"address": "AAAA", "power": 10}, {"address": "BBBB", "power": 10}]
    assert got["commits"] == [{"height": 19, "signers": ["AAAA", "BBBB"]}, {"height": 18, "signers": ["AAAA"]},
                              {"height": 17, "signers": ["AAAA", "BBBB"]}]
    assert node.calls == ["/validators", "/commit", "/commit", "/commit"] and node.connections == 1
    assert node.posts == 1  # one round trip: the four reads went as one batch
    none = chain_facts([("down", "http://127.0.0.1:9", 30)], timeout=0.5)
    assert none["source"] is None and none["validators"] == [] and "down: " in none["error"]
    assert chain_facts([])["error"] == "no node's RPC answers"


def test_chain_sources_prefer_in_sync_highest_nodes() -> None:
    def status(name: str, height: int | None, catching_up: bool = False, reachable: bool = True) -> NodeStatus:
        rpc = RpcFacts(reachable=reachable, url=f"http://{name}")
        return NodeStatus(name=name, org="o", role="observer", present=True, state="running", height=height,
                          catching_up=catching_up, rpc=rpc)

    nodes = [status("a", 10), status("b", 12), status("c", 50, catching_up=True), status("d", None, reachable=False),
             status("e", 12), status("f", 11)]
    assert chain_sources(nodes) == [("b", "http://b", 12), ("e", "http://e", 12), ("f", "http://f", 11)]


def test_chain_facts_read_once_fill_the_document(plan: NetworkPlan) -> None:
    doc = build_facts(plan, fakes.observation(plan, NOW, height=100), sweep_id="s", now=NOW)
    chain = doc["chain"]
    assert chain["validatorSetFrom"] == plan.nodes[0].name
    assert chain["validatorSet"] == sorted(fakes.validators(plan), key=lambda v: v["address"])
    assert [c["height"] for c in chain["recentCommits"]] == [97, 98, 99]
    assert "validators" not in doc["nodes"][0]["rpc"] and "lastCommit" not in doc["nodes"][0]["rpc"]


def test_per_node_chain_facts_still_fill_the_document(plan: NetworkPlan) -> None:
    obs = fakes.observation(plan, NOW, height=100, per_node_chain=True)
    assert "chain" not in obs.facts
    doc = build_facts(plan, obs, sweep_id="s", now=NOW)
    assert doc["chain"]["validatorSetFrom"] == plan.nodes[0].name
    assert doc["chain"]["validatorSet"] == sorted(fakes.validators(plan), key=lambda v: v["address"])
    assert doc["chain"]["recentCommits"] == [{"height": 99, "signers": sorted(v["address"]
                                                                              for v in fakes.validators(plan))}]


def test_a_failed_chain_read_reports_no_validator_set(plan: NetworkPlan) -> None:
    obs = fakes.observation(plan, NOW)
    failed = {"source": None, "height": None, "validators": [], "commits": [], "error": "x: timed out"}
    doc = build_facts(plan, Observation(obs.network, obs.nodes, obs.undeclared, {**obs.facts, "chain": failed}),
                      sweep_id="s", now=NOW)
    assert doc["chain"]["validatorSet"] == [] and doc["chain"]["validatorSetFrom"] is None
    assert doc["chain"]["recentCommits"] == []


def test_unreachable_rpc_is_rpc_unavailable() -> None:
    with pytest.raises(RpcUnavailable, match="127.0.0.1:9"):
        RpcClient("http://127.0.0.1:9", attempts=1, timeout=0.5).net_info()
