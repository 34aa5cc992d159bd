"""The RPC client against a small local stand-in for a CometBFT node."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from hcops.providers.rpc import RpcClient, RpcUnavailable

A, B, C = "AAAA", "BBBB", "CCCC"


def commit_doc(height: int, signers: list[tuple[str, int]]) -> dict[str, Any]:
    return {"signed_header": {"header": {"height": str(height), "time": "2026-01-01T00:00:00.5Z"},
                              "commit": {"height": str(height), "signatures": [
                                  {"block_id_flag": flag, "validator_address": addr if flag != 1 else "",
                                   "signature": "x"} for addr, flag in signers]}},
            "canonical": True}


class Node:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_first = 0
        self.validators = [{"address": a, "voting_power": "10"} for a in (A, B, C)]

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self.calls.append(path)
        if self.fail_first > 0:
            self.fail_first -= 1
            return 500, {"jsonrpc": "2.0", "id": -1, "error": {"code": -32603, "message": "Internal error",
                                                              "data": "not ready"}}
        if path == "/status":
            return 200, {"result": {
                "node_info": {"id": "abcd", "moniker": "n0", "network": "chain-1", "version": "0.38.17"},
                "sync_info": {"latest_block_height": "12", "latest_block_time": "t", "catching_up": False},
                "validator_info": {"address": A, "voting_power": "10"}}}
        if path == "/net_info":
            return 200, {"result": {"n_peers": "1", "peers": [
                {"node_info": {"id": "ef01", "moniker": "n1"}, "remote_ip": "10.0.0.11"}]}}
        if path == "/validators":
            page, per = int(query["page"][0]), int(query["per_page"][0])
            per = 2  # force pagination
            chunk = self.validators[(page - 1) * per: page * per]
            return 200, {"result": {"validators": chunk, "total": str(len(self.validators))}}
        if path == "/commit":
            h = int(query.get("height", ["12"])[0])
            return 200, {"result": commit_doc(h, [(A, 2), (B, 2), ("", 1), (C, 3)])}
        return 404, {"error": {"message": "Method not found"}}


@pytest.fixture
def node() -> Iterator[tuple[Node, str]]:
    state = Node()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            code, doc = state.answer(url.path, parse_qs(url.query))
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            # A JSON-RPC batch, answered as CometBFT does: one array, an error object for a failed call.
            calls = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answers = []
            for c in calls:
                code, doc = state.answer("/" + c["method"], {k: [v] for k, v in c["params"].items()})
                answers.append({"jsonrpc": "2.0", "id": c["id"],
                                **({"result": doc["result"]} if code == 200 else {"error": doc.get("error")})})
            body = json.dumps(answers).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_status_net_info_validators_commit(node: tuple[Node, str]) -> None:
    state, url = node
    rpc = RpcClient(url)
    s = rpc.status()
    got = (s.node_id, s.network, s.height, s.catching_up, s.voting_power)
    assert got == ("abcd", "chain-1", 12, False, 10)
    assert [p.node_id for p in rpc.net_info()] == ["ef01"]
    assert [v.address for v in rpc.validators()] == [A, B, C]
    assert state.calls.count("/validators") == 2
    commit = rpc.commit(7)
    assert commit.height == 7 and commit.canonical
    assert commit.signers == {A, B}  # absent (1) and nil (3) votes do not count
    assert commit.signed_by_all([A, B]) and not commit.signed_by_all([A, C])


def test_retries_transient_errors_then_reports_them(node: tuple[Node, str]) -> None:
    state, url = node
    state.fail_first = 2
    assert RpcClient(url, attempts=3, wait=0.01).status().height == 12
    state.fail_first = 5
    with pytest.raises(RpcUnavailable, match="Internal error not ready"):
        RpcClient(url, attempts=2, wait=0.01).status()


def test_connection_refused_is_rpc_unavailable() -> None:
    with pytest.raises(RpcUnavailable, match="127.0.0.1:9"):
        RpcClient("http://127.0.0.1:9", attempts=1, timeout=0.5).status()


def test_batch_reads_several_calls_in_one_round_trip(node: tuple[Node, str]) -> None:
    state, url = node
    rpc = RpcClient(url, attempts=1)
    status, net, commit, missing = rpc.batch(("status", {}), ("net_info", {}), ("commit", {"height": "7"}),
                                             ("no_such_method", {}))
    assert state.calls == ["/status", "/net_info", "/commit", "/no_such_method"]  # one POST carried all four
    assert status is not None and rpc.parse_status(status).height == 12
    assert net is not None and net["peers"][0]["remote_ip"] == "10.0.0.11"
    assert commit is not None and rpc.parse_commit(commit).signers == {A, B}
    assert missing is None  # a failed call is None; the others still count
    with pytest.raises(RpcUnavailable, match="127.0.0.1:9"):
        RpcClient("http://127.0.0.1:9", attempts=1, timeout=0.5).batch(("status", {}))


def test_batch_without_a_batching_transport_calls_one_after_the_other(node: tuple[Node, str]) -> None:
    state, url = node

    class OneByOne:  # what the Kubernetes pod proxy offers: GETs only
        def __init__(self) -> None:
            self.http = RpcClient(url, attempts=1).transport

        def get(self, target: str) -> Any:
            return self.http.get(target)

        def where(self, target: str) -> str:
            return self.http.where(target)

        def close(self) -> None:
            self.http.close()

    rpc = RpcClient(url, attempts=1, transport=OneByOne())
    status, missing = rpc.batch(("status", {}), ("no_such_method", {}))
    assert status is not None and missing is None and state.calls == ["/status", "/no_such_method"]
    state.fail_first = 1
    with pytest.raises(RpcUnavailable):  # the first call failing is the node's failure, as for a batch
        rpc.batch(("status", {}), ("net_info", {}))
