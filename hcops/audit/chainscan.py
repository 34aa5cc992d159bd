"""The audit's read of the chain's transactions: each sweep scans the blocks committed since the previous
one (at most ``MAX_BLOCKS``), runs the identifier detectors (``hcops.audit.phi``) on every transaction and
keeps a cursor in the sweep record, so the next sweep resumes where this one stopped.

Blocks are found with ``/blockchain`` (20 block headers with their transaction counts per call) and only
blocks that hold transactions are read with ``/block``: a chain of mostly empty blocks costs a few calls
per sweep. ``/block_search`` and ``/tx_search`` are not used: they need the indexer, which
``spec.data.txIndex: off`` turns off.

A transaction on chain cannot be removed, so a hit is kept (in the sweep records) after the sweep that
found it: the PHI-1 finding stays open until a waiver documents the accepted risk. Hits carry the height,
the transaction hash and the identifier kind, never the transaction's content.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hcops.audit.phi import KINDS, Detectors, classify
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.rpc import RpcClient, RpcUnavailable

MAX_BLOCKS = 200  # blocks read per sweep; a long chain is caught up over several sweeps
MAX_TXS = 2000  # transactions searched per sweep (full blocks): the scan stops after the block that passes it
PAGE = 20  # /blockchain answers at most 20 block headers
KEPT_HITS = 200  # hits listed in the record (all are counted)
_ANCHOR = re.compile(r"hcops-audit/[a-z0-9-]{1,63}/[0-9]{1,19}=[0-9a-f]{64}")  # hcops.audit.anchor's tx


@dataclass(frozen=True)
class Cursor:
    """Where the scan stands, carried from sweep record to sweep record."""

    next_height: int  # the first height not scanned yet
    covered_from: int  # the height the first scan started at
    from_start: bool  # that was the earliest block the node stores: nothing before it went unread
    hits: tuple[Mapping[str, Any], ...] = ()
    hits_total: int = 0

    @classmethod
    def from_record(cls, doc: Mapping[str, Any] | None) -> Cursor | None:
        if not doc or not isinstance(doc.get("nextHeight"), int):
            return None
        return cls(int(doc["nextHeight"]), int(doc.get("coveredFrom") or 1), bool(doc.get("fromStart")),
                   tuple(doc.get("hits") or ()), int(doc.get("hitsTotal") or 0))

    def to_record(self) -> dict[str, Any]:
        return {"nextHeight": self.next_height, "coveredFrom": self.covered_from, "fromStart": self.from_start,
                "hits": list(self.hits), "hitsTotal": self.hits_total}


@dataclass(frozen=True)
class Scan:
    """One sweep's scan: what was read, what was found, and the cursor for the next sweep."""

    policy: str
    source: str | None = None
    head: int | None = None  # the source node's height when the scan began
    first: int | None = None  # heights scanned by this sweep, inclusive
    last: int | None = None
    blocks: int = 0
    txs: int = 0
    new_hits: tuple[Mapping[str, Any], ...] = ()
    cursor: Cursor | None = None
    error: str | None = None
    seconds: float = 0.0
    detectors: tuple[str, ...] = field(default=())
    mrn_pattern: str | None = None  # the medical record number format searched for (a pattern, not data)

    @property
    def caught_up(self) -> bool:
        c = self.cursor
        return c is not None and self.head is not None and c.next_height > self.head

    def facts(self) -> dict[str, Any]:
        """The fact document's ``phi`` section (policies/runtime/README.md)."""
        c = self.cursor
        return {
            "policy": self.policy,
            "source": self.source,
            "head": self.head,
            "scanned": {"fromHeight": self.first, "toHeight": self.last, "blocks": self.blocks, "txs": self.txs},
            "coveredFrom": c.covered_from if c else None,
            "coveredTo": c.next_height - 1 if c else None,
            "fromStart": bool(c and c.from_start),
            "caughtUp": self.caught_up,
            "complete": bool(c and c.from_start and self.caught_up and self.error is None),
            "hits": list(c.hits) if c else [],
            "hitsTotal": c.hits_total if c else 0,
            "newHits": len(self.new_hits),
            "error": self.error,
            "detectors": list(self.detectors),
            "mrnPattern": self.mrn_pattern,
        }


def tx_hash(tx: bytes) -> str:
    """CometBFT's transaction hash: SHA-256 of the bytes, upper-case hex (as /tx and explorers show it)."""
    return hashlib.sha256(tx).hexdigest().upper()


def _is_anchor(tx: bytes) -> bool:
    try:
        return bool(_ANCHOR.fullmatch(tx.decode("ascii")))
    except UnicodeDecodeError:
        return False


class _Budget(Exception):
    """This sweep's share of transactions is read; the next sweep goes on from the cursor."""


def scan(rpc: RpcClient, *, source: str, head: int, cursor: Cursor | None, policy: str, detectors: Detectors,
         limit: int = MAX_BLOCKS, max_txs: int = MAX_TXS) -> Scan:
    """Scan the blocks after ``cursor`` up to ``head`` (at most ``limit`` blocks, and no block after the one
    that brings the transactions read to ``max_txs``). An RPC failure ends the scan at the last block fully
    read; the cursor then points just after it."""
    t0 = time.perf_counter()
    base: dict[str, Any] = {"policy": policy, "source": source, "head": head, "detectors": KINDS,
                            "mrn_pattern": detectors.mrn.pattern}
    try:
        if cursor is None:
            earliest = rpc.earliest_height()
            cursor = Cursor(earliest, earliest, True)
    except RpcUnavailable as exc:
        return Scan(**base, error=str(exc), seconds=time.perf_counter() - t0)
    start = cursor.next_height
    end = min(head, start + limit - 1)
    hits: list[dict[str, Any]] = []
    blocks = txs = 0
    done = start - 1
    error = None
    try:
        for lo in range(start, end + 1, PAGE):
            for meta in rpc.blockchain(lo, min(lo + PAGE - 1, end)):
                for tx in rpc.block(meta.height).txs if meta.num_txs else ():
                    txs += 1
                    if not _is_anchor(tx):  # hcops' own anchor: a key and a SHA-256, never PHI
                        hits += [{"height": meta.height, "txHash": tx_hash(tx), "kind": k}
                                 for k in classify(tx, policy, detectors)]
                blocks += 1
                done = meta.height  # blocks come lowest first: everything up to here is read
                if txs >= max_txs:
                    raise _Budget
            done = max(done, min(lo + PAGE - 1, end))
    except RpcUnavailable as exc:
        error = str(exc)
    except _Budget:
        pass
    kept = (*cursor.hits, *hits)[-KEPT_HITS:]
    moved = Cursor(done + 1, cursor.covered_from, cursor.from_start, kept, cursor.hits_total + len(hits))
    return Scan(**base, first=start if done >= start else None, last=done if done >= start else None,
                blocks=blocks, txs=txs, new_hits=tuple(hits), cursor=moved, error=error,
                seconds=time.perf_counter() - t0)


def sources(obs: Observation) -> list[NodeStatus]:
    """Nodes to read blocks from: reachable ones, in sync first, highest first."""
    live = [n for n in obs.nodes if n.rpc is not None and n.rpc.reachable and isinstance(n.height, int)]
    return sorted(live, key=lambda n: (bool(n.catching_up), -(n.height or 0), n.name))


def not_scanned(policy: str, cursor: Cursor | None, reason: str) -> Scan:
    """A sweep that read no block (no node answers, ...): the cursor and the hits found so far stay."""
    return Scan(policy=policy, cursor=cursor, error=reason)


def clients(provider: Any, plan: Any, obs: Observation, count: int = 2) -> list[tuple[NodeStatus, RpcClient]]:
    """RPC clients of the best ``count`` sources: the node's own URL (Docker: 127.0.0.1), or through the
    API server's pod proxy for providers that offer one (Kubernetes: ``provider.api(plan)``)."""
    out: list[tuple[NodeStatus, RpcClient]] = []
    for n in sources(obs)[:count]:
        url = n.rpc.url if n.rpc is not None else None
        place = getattr(provider, "node_place", None)
        if obs.facts.get("provider") == "kubernetes" and callable(place) and n.resource:
            from hcops.providers.kubernetes.rpc import ProxiedRpc

            api, namespace = place(plan, n.name)  # its organization's namespace, through its kube context
            out.append((n, ProxiedRpc(api, namespace, n.resource.removeprefix("pod/"), timeout=3.0)))
        elif isinstance(url, str) and url.startswith("https://"):
            from hcops.plan.certs import client_context  # TLS on: only the network's CA is trusted

            out.append((n, RpcClient(url, timeout=3.0, attempts=1, ssl_context=client_context(plan))))
        elif isinstance(url, str) and url.startswith("http://"):
            out.append((n, RpcClient(url, timeout=3.0, attempts=1)))
    return out


def scan_observed(obs: Observation, clients: Sequence[tuple[NodeStatus, RpcClient]], *, cursor: Cursor | None,
                  policy: str, detectors: Detectors) -> Scan:
    """Scan from the first source that answers; every source failing leaves the cursor where it was."""
    errors = []
    for node, rpc in clients:
        try:
            result = scan(rpc, source=node.name, head=int(node.height or 0), cursor=cursor, policy=policy,
                          detectors=detectors)
        finally:
            rpc.close()
        if result.error is None or (result.blocks and result.cursor is not None):
            return result
        errors.append(f"{node.name}: {result.error}")
    return not_scanned(policy, cursor, "; ".join(errors) or "no node's RPC answers")
