"""``hcops drill restore``: prove a backup restores, without touching the live network.

The latest backup (of ``--node``, or of any node) is verified against its recorded digest, decrypted and
restored into a throwaway node on an isolated network of its own (nothing published, no peers, no
consortium key: CometBFT generates a key for it that no validator set contains, so it can never sign).
Starting it replays every stored block into the app, which checks each block's app hash. Then the drill
compares the block hashes at sampled heights with the live chain's and checks that the node holds the
backup's height. Duration, heights and result are recorded in the audit log; the scratch node is removed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hcops.audit.log import AuditLog
from hcops.backup import evidence, safety
from hcops.backup.backend import NodeBackend, drill_config
from hcops.backup.restore import decrypted, pick_backup
from hcops.errors import CheckFailed, HcopsError
from hcops.plan.desired import NetworkPlan
from hcops.providers.rpc import RpcClient, RpcUnavailable

Say = Callable[[str], None]
SAMPLES = 8


@dataclass(frozen=True)
class DrillResult:
    backup_id: str
    node: str
    seconds: float
    reached: int
    heights: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"backupId": self.backup_id, "node": self.node, "seconds": round(self.seconds, 3),
                "reachedHeight": self.reached, "heightsChecked": list(self.heights)}


def sample_heights(base: int, top: int, count: int = SAMPLES, seed: str = "") -> list[int]:
    """``count`` heights in [base, top]: both ends, the rest spread evenly with a jitter chosen by ``seed``
    (the same backup samples the same heights, different backups different ones)."""
    base = max(1, base)
    if top <= base:
        return [base] if top == base else []
    inner = max(0, min(count - 2, top - base - 1))
    rng = int.from_bytes(seed.encode()[-4:] or b"\0", "big")
    step = (top - base) / (inner + 1)
    picks = {base, top}
    for i in range(1, inner + 1):
        jitter = (rng >> i) % max(1, int(step) // 2 + 1)
        picks.add(min(top - 1, base + int(i * step) + jitter))
    return sorted(picks)


def block_hash(rpc: RpcClient, height: int) -> str:
    r = rpc.call("block", height=height)
    try:
        return str(r["block_id"]["hash"])
    except (KeyError, TypeError):
        raise RpcUnavailable(f"{rpc.base_url}/block: no block_id at height {height}") from None


def run_drill(plan: NetworkPlan, backend: NodeBackend, log: AuditLog, *, node: str | None = None,
              backup_id: str | None = None, timeout: float = 180.0, say: Say) -> DrillResult:
    b = pick_backup(log, backup_id, node)
    if node is not None and backup_id is None and b.node != node:
        say(f"no backup of {node}: drilling the latest backup, of {b.node}")
    t0 = time.monotonic()
    try:
        result = _drill(plan, backend, b, timeout, say, t0)
    except HcopsError as exc:
        evidence.record(log, "drill", {"ok": False, "network": plan.name, "backupId": b.id, "node": b.node,
                                       "provider": backend.provider, "seconds": round(time.monotonic() - t0, 3),
                                       "error": exc.message})
        raise CheckFailed(f"restore drill of backup {b.id} FAILED: {exc.message}", hint=exc.hint) from None
    evidence.record(log, "drill", {"ok": True, "network": plan.name, "provider": backend.provider,
                                   "archiveSha256": b.sha256, **result.to_json()})
    return result


def _drill(plan: NetworkPlan, backend: NodeBackend, b: evidence.BackupRecord, timeout: float, say: Say,
           t0: float) -> DrillResult:
    source = next((n for n in plan.nodes if n.name == b.node), plan.nodes[0])
    live = safety.first_answering([backend.rpc(n) for n in plan.nodes])
    with decrypted(plan, b) as tar:
        say(f"backup {b.id}: digest verified, decrypted; starting an isolated scratch node")
        tag = secrets.token_hex(2)
        config = drill_config(backend.config_toml(source), f"drill-{tag}")
        with backend.scratch(source, tar, config, tag) as rpc:
            reached = safety.wait_for(lambda: _height(rpc, b.height), f"the scratch node to serve height "
                                      f"{b.height}", timeout)
            heights = sample_heights(b.base_height, b.height, seed=b.id)
            bad = []
            for h in heights:
                mine, theirs = block_hash(rpc, h), block_hash(live, h)
                if mine != theirs:
                    bad.append(f"height {h}: restored {mine[:16]}, live chain {theirs[:16]}")
            if bad:
                raise CheckFailed("the restored blocks differ from the live chain's: " + "; ".join(bad))
    seconds = time.monotonic() - t0
    say(f"restored node holds height {reached} (backup: {b.height}); block hashes match the live chain at "
        f"{len(heights)} heights ({', '.join(map(str, heights))}); {seconds:.1f} s")
    return DrillResult(b.id, b.node, seconds, reached, tuple(heights))


def _height(rpc: RpcClient, want: int) -> int | None:
    h = rpc.status().height
    return h if h >= want else None
