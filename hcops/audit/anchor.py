"""Anchoring: each sweep's head hash is also written to the consortium chain (the kvstore app accepts
``key=value`` transactions), so that a rewritten log can be told from the one the chain witnessed."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hcops.audit.log import AuditLog
from hcops.providers.rpc import RpcClient, RpcUnavailable

PROBE_BEYOND_HEAD = 16  # sequence numbers past the log's head that verify looks for on chain


def anchor_key(network: str, seq: int) -> str:
    return f"hcops-audit/{network}/{seq}"


def broadcast(rpc: RpcClient, key: str, value: str) -> dict[str, Any]:
    """``broadcast_tx_commit`` of ``key=value``; returns the height and tx hash, raises RpcUnavailable."""
    r = rpc.call("broadcast_tx_commit", tx=f'"{key}={value}"')
    check = r.get("check_tx") or {}
    result = r.get("tx_result") or r.get("deliver_tx") or {}
    if int(check.get("code") or 0) != 0 or int(result.get("code") or 0) != 0:
        raise RpcUnavailable(
            f"transaction rejected: {check.get('log') or result.get('log') or 'non-zero code'}"
        )
    return {"height": int(r.get("height") or 0), "txHash": str(r.get("hash") or "")}


def query(rpc: RpcClient, key: str) -> str | None:
    r = rpc.call("abci_query", data=f'"{key}"')
    value = (r.get("response") or {}).get("value")
    return base64.b64decode(value).decode("utf-8", "replace") if value else None


@dataclass(frozen=True)
class AnchorCheck:
    checked: int
    problems: tuple[str, ...]
    node: str

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_anchored(log: AuditLog, network: str, rpcs: Sequence[tuple[str, RpcClient]]) -> AnchorCheck:
    """Every anchored head hash recorded in the log must be on chain with the same value, the log must
    still hold that record with that hash, and the chain must hold no anchor past the log's head."""
    anchors = [r for r in log.records("anchor") if r.body.get("ok")]
    problems: list[str] = []
    name, rpc = _reachable(rpcs)
    checked = 0
    for a in anchors:
        seq, digest = int(a.body["seq"]), str(a.body["hash"])
        on_chain = query(rpc, anchor_key(network, seq))
        checked += 1
        if on_chain is None:
            problems.append(f"record {seq}: its anchor {anchor_key(network, seq)} is not on chain")
            continue
        if on_chain != digest:
            problems.append(
                f"record {seq}: the chain holds hash {on_chain[:16]}..., the anchor record says "
                f"{digest[:16]}... (the anchor record was edited)"
            )
        rec = log.record(seq)
        if rec is not None and rec.hash != on_chain:
            problems.append(
                f"record {seq}: its hash {rec.hash[:16]}... differs from the one anchored on chain "
                f"{on_chain[:16]}... (the log was rewritten)"
            )
    head_seq, _ = log.head()
    for seq in range(head_seq + 1, head_seq + 1 + PROBE_BEYOND_HEAD):
        if query(rpc, anchor_key(network, seq)) is not None:
            problems.append(
                f"record {seq}: the chain holds an anchor beyond the log's head {head_seq} "
                "(records were deleted from the end)"
            )
            break
    return AnchorCheck(checked=checked, problems=tuple(problems), node=name)


def _reachable(rpcs: Sequence[tuple[str, RpcClient]]) -> tuple[str, RpcClient]:
    errors = []
    for name, rpc in rpcs:
        try:
            rpc.call("health")
            return name, rpc
        except RpcUnavailable as exc:
            errors.append(f"{name}: {exc}")
    raise RpcUnavailable("no node answers RPC: " + "; ".join(errors))
