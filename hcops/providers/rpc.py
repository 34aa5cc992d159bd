"""A small client for a CometBFT node's JSON RPC (HTTP GET; POST for batches), shared by providers and the audit.

One client over a transport: standard library HTTP(S) (``http.client``) with per-request timeouts over one
keep-alive connection per client and thread, so the few calls a sweep makes to one node share a TCP
connection, or another route to the node (the Kubernetes API server, ``hcops.providers.kubernetes.rpc``).
Transient failures are retried with tenacity. Every answer is parsed into a small frozen type here, so
callers never dig through raw JSON.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

BLOCK_ID_FLAG_COMMIT = 2  # the validator signed for the committed block


class RpcUnavailable(Exception):
    """The node did not answer (connection refused, timeout, malformed reply, RPC error)."""


@dataclass(frozen=True)
class ChainStatus:
    node_id: str
    moniker: str
    network: str  # chain id
    version: str
    height: int
    latest_block_time: str
    catching_up: bool
    validator_address: str
    voting_power: int


@dataclass(frozen=True)
class Peer:
    node_id: str
    moniker: str
    remote_ip: str


@dataclass(frozen=True)
class Validator:
    address: str
    power: int


@dataclass(frozen=True)
class Commit:
    height: int
    time: str
    canonical: bool
    signers: frozenset[str]  # validator addresses with block_id_flag == 2

    def signed_by_all(self, addresses: Iterable[str]) -> bool:
        return all(a in self.signers for a in addresses)


@dataclass(frozen=True)
class BlockMeta:
    height: int
    num_txs: int


@dataclass(frozen=True)
class Block:
    height: int
    txs: tuple[bytes, ...]  # raw transaction bytes; callers must never print them (they may hold PHI)


class Endpoint(str):
    """An RPC base URL that carries the TLS context its server is verified with: ``RpcClient(endpoint)``
    uses it unless given another, so a URL handed around (``DesiredContainer.rpc_url``) keeps its trust."""

    ssl_context: ssl.SSLContext | None

    def __new__(cls, url: str, ssl_context: ssl.SSLContext | None = None) -> Endpoint:
        obj = super().__new__(cls, url)
        obj.ssl_context = ssl_context
        return obj


class Transport(Protocol):
    """How a client's GETs reach a node's RPC: ``HttpTransport`` over HTTP(S), or the Kubernetes API server's
    pod proxy (``hcops.providers.kubernetes.rpc``). Failures to reach the node are ``RpcUnavailable``."""

    def get(self, target: str) -> Any:
        """The decoded JSON answer to ``GET <method>?<query>``."""
        ...

    def where(self, target: str) -> str:
        """How an error names the request (the URL, or the pod)."""
        ...

    def close(self) -> None:
        """Drop this thread's open connection, if any."""
        ...


class HttpTransport:
    """GETs over one keep-alive ``http.client`` connection per thread (http.client is not thread-safe).

    ``https://`` URLs are verified with ``ssl_context`` (None: the system's trust roots). ``connect`` makes the
    connection instead, for a route of its own (TLS through a Kubernetes port-forward)."""

    def __init__(self, base_url: str, *, timeout: float, ssl_context: ssl.SSLContext | None = None,
                 connect: Callable[[], http.client.HTTPConnection] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._connect = connect
        self._local = threading.local()

    def where(self, target: str) -> str:
        return f"{self.base_url}/{target}"

    def get(self, target: str) -> Any:
        url = self.where(target)
        status, body = self._exchange(url)
        if status >= 400:
            raise RpcUnavailable(f"{url}: {_rpc_error(_json(body)) or f'HTTP {status}'}")
        try:
            return json.loads(body)
        except ValueError:
            raise RpcUnavailable(f"{url}: reply is not JSON") from None

    def batch(self, calls: Sequence[tuple[str, Mapping[str, str]]]) -> list[Any]:
        """The JSON-RPC answers (``result`` or ``error`` objects, in order) to several calls in one POST: one
        round trip instead of one per call, which is what a sweep waits for on a busy host."""
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": dict(params)}
                           for i, (m, params) in enumerate(calls)]).encode()
        url = self.where("")
        status, raw = self._exchange(url, body)
        doc = _json(raw)
        if status >= 400 or not isinstance(doc, list):
            why = _rpc_error(doc) or (f"HTTP {status}" if status >= 400 else "no batch reply")
            raise RpcUnavailable(f"{url}: {why}")
        by_id = {d["id"]: d for d in doc if isinstance(d, dict) and isinstance(d.get("id"), int)}
        return [by_id.get(i) for i in range(len(calls))]

    def _exchange(self, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(HTTP status, body) of a GET (a POST of ``body``) over this thread's keep-alive connection; a
        connection the node closed while idle is reopened once, any other failure is ``RpcUnavailable``."""
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            reused = conn is not None and not fresh
            if conn is None or fresh:
                self.close()
                conn = self._connection(parts)
                self._local.conn = conn
            try:
                if body is None:
                    conn.request("GET", target)
                else:
                    conn.request("POST", target or "/", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused:
                    continue
                raise RpcUnavailable(f"{url}: {exc or type(exc).__name__}") from None
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                raise RpcUnavailable(f"{url}: {_reason(exc)}") from None
            if resp.will_close:
                self.close()
            return resp.status, body
        raise RpcUnavailable(f"{url}: connection closed")  # pragma: no cover (the loop returns or raises)

    def _connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        if self._connect is not None:
            return self._connect()
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port, timeout=self.timeout, context=self.ssl_context)
        return http.client.HTTPConnection(host, parts.port, timeout=self.timeout)

    def peer_certificate(self) -> tuple[bytes, str | None] | None:
        """(DER certificate, TLS version) of the server on this thread's open HTTPS connection, which was
        verified against ``ssl_context`` when it was set up; None without one (plain HTTP, none open)."""
        sock = getattr(getattr(self._local, "conn", None), "sock", None)
        if not isinstance(sock, ssl.SSLSocket):
            return None
        der = sock.getpeercert(binary_form=True)
        return (der, sock.version()) if der else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


class RpcClient:
    """``RpcClient("http://127.0.0.1:26657")``; ``attempts`` > 1 retries connection errors and timeouts.

    ``https://`` URLs are verified with ``ssl_context``: for a network with TLS on, the context built from
    the network's CA (``hcops.plan.certs.client_context``), so that hcops only talks to nodes holding a
    certificate of that CA for the name it dials; without one, the system's trust roots. ``transport`` replaces
    the HTTP(S) one (``base_url`` then only names the node in messages)."""

    def __init__(self, base_url: str, *, timeout: float = 2.0, attempts: int = 3, wait: float = 0.3,
                 ssl_context: ssl.SSLContext | None = None, transport: Transport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.wait = wait
        self.ssl_context = ssl_context if ssl_context is not None else getattr(base_url, "ssl_context", None)
        self.transport: Transport = transport or HttpTransport(self.base_url, timeout=timeout,
                                                               ssl_context=self.ssl_context)

    def __repr__(self) -> str:
        return f"RpcClient({self.base_url!r})"

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One RPC method's ``result`` object."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        fetch = retry(stop=stop_after_attempt(self.attempts), wait=wait_fixed(self.wait),
                      retry=retry_if_exception_type(RpcUnavailable), reraise=True)(self._result)
        result: dict[str, Any] = fetch(method + (f"?{query}" if query else ""))
        return result

    def _result(self, target: str) -> dict[str, Any]:
        doc = self.transport.get(target)
        result = doc.get("result") if isinstance(doc, dict) else None
        if isinstance(result, dict):
            return result
        where = self.transport.where(target)
        if isinstance(doc, dict) and "result" in doc:
            raise RpcUnavailable(f"{where}: result is not an object")
        raise RpcUnavailable(f"{where}: {_rpc_error(doc) or 'reply has no result'}")

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        self.transport.close()

    def batch(self, *calls: tuple[str, Mapping[str, str]]) -> list[dict[str, Any] | None]:
        """The ``result`` of each call (None for one that failed), in one round trip where the transport can
        batch; otherwise one call after the other. Parameters are strings, as CometBFT's JSON-RPC wants its
        integers. Raises ``RpcUnavailable`` only when the node cannot be reached at all."""
        if isinstance(self.transport, HttpTransport):
            send = retry(stop=stop_after_attempt(self.attempts), wait=wait_fixed(self.wait),
                         retry=retry_if_exception_type(RpcUnavailable), reraise=True)(self.transport.batch)
            return [d["result"] if isinstance(d, dict) and isinstance(d.get("result"), dict) else None
                    for d in send(calls)]
        out: list[dict[str, Any] | None] = []
        for i, (method, params) in enumerate(calls):  # a transport without batches (the pod proxy)
            try:
                out.append(self.call(method, **params))
            except RpcUnavailable:
                if i == 0:
                    raise  # taken as the node's failure, as a batch that does not reach it
                out.append(None)
        return out

    def status(self) -> ChainStatus:
        return self.parse_status(self.call("status"))

    def parse_status(self, r: Mapping[str, Any]) -> ChainStatus:
        try:
            ni, si, vi = r["node_info"], r["sync_info"], r["validator_info"]
            return ChainStatus(
                node_id=ni["id"], moniker=ni.get("moniker", ""), network=ni.get("network", ""),
                version=ni.get("version", ""), height=int(si["latest_block_height"]),
                latest_block_time=si.get("latest_block_time", ""), catching_up=bool(si["catching_up"]),
                validator_address=vi.get("address", ""), voting_power=int(vi.get("voting_power", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise RpcUnavailable(f"{self.base_url}/status: unexpected reply ({exc})") from None

    def net_info(self) -> tuple[Peer, ...]:
        return parse_peers(self.call("net_info"))

    def commit(self, height: int | None = None) -> Commit:
        return self.parse_commit(self.call("commit", height=height))

    def parse_commit(self, r: Mapping[str, Any]) -> Commit:
        try:
            sh = r["signed_header"]
            return parse_commit(sh["header"], sh["commit"], bool(r.get("canonical", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise RpcUnavailable(f"{self.base_url}/commit: unexpected reply ({exc})") from None

    def validators(self, height: int | None = None) -> tuple[Validator, ...]:
        out: list[Validator] = []
        page = 1
        while True:
            r = self.call("validators", height=height, page=page, per_page=100)
            batch = r.get("validators") or []
            out.extend(Validator(address=v["address"], power=int(v["voting_power"])) for v in batch)
            total = int(r.get("total", len(out)))
            if len(out) >= total or not batch:
                return tuple(out)
            page += 1

    # ---- block reads for the audit's transaction scan (hcops.audit.chainscan); added, nothing above changed
    def earliest_height(self) -> int:
        """The lowest height whose block this node still stores (1 unless it prunes)."""
        r = self.call("status")
        try:
            return max(1, int((r.get("sync_info") or {}).get("earliest_block_height") or 1))
        except (TypeError, ValueError) as exc:
            raise RpcUnavailable(f"{self.base_url}/status: unexpected reply ({exc})") from None

    def blockchain(self, min_height: int, max_height: int) -> tuple[BlockMeta, ...]:
        """Heights and transaction counts of the blocks in [min_height, max_height], lowest first. The node
        returns at most 20 per call, highest first: callers page by asking again below the lowest."""
        r = self.call("blockchain", minHeight=min_height, maxHeight=max_height)
        try:
            metas = [BlockMeta(height=int(m["header"]["height"]), num_txs=int(m.get("num_txs") or 0))
                     for m in r.get("block_metas") or ()]
        except (KeyError, TypeError, ValueError) as exc:
            raise RpcUnavailable(f"{self.base_url}/blockchain: unexpected reply ({exc})") from None
        return tuple(sorted(metas, key=lambda m: m.height))

    def block(self, height: int) -> Block:
        """The block at ``height`` with its transactions as raw bytes."""
        r = self.call("block", height=height)
        try:
            b = r["block"]
            raw = (b.get("data") or {}).get("txs") or ()
            return Block(height=int(b["header"]["height"]),
                         txs=tuple(base64.b64decode(t, validate=True) for t in raw))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise RpcUnavailable(f"{self.base_url}/block: unexpected reply ({exc.__class__.__name__})") from None


def parse_peers(r: Mapping[str, Any]) -> tuple[Peer, ...]:
    peers = []
    found = r.get("peers")
    for p in found if isinstance(found, list) else ():
        info = (p.get("node_info") or {}) if isinstance(p, Mapping) else None
        if not isinstance(info, Mapping):
            continue  # a node's answer is data: an odd entry is skipped, not a crash of the sweep
        peers.append(Peer(node_id=info.get("id", ""), moniker=info.get("moniker", ""),
                          remote_ip=p.get("remote_ip", "")))
    return tuple(peers)


def parse_commit(header: Mapping[str, Any], commit: Mapping[str, Any], canonical: bool) -> Commit:
    signers = frozenset(s["validator_address"] for s in commit.get("signatures") or ()
                        if int(s.get("block_id_flag", 0)) == BLOCK_ID_FLAG_COMMIT
                        and s.get("validator_address"))
    return Commit(height=int(header["height"]), time=str(header.get("time", "")), canonical=canonical,
                  signers=signers)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _rpc_error(doc: Any) -> str:
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return " ".join(str(err.get(k, "")) for k in ("message", "data")).strip()
    return ""
