"""``hcops backup``: a consistent copy of chosen nodes' chain data, without halting the chain.

Consistency comes from copying a stopped node (its LevelDB files closed), one node at a time. The default
source is an observer (no voting power: stopping it never touches the quorum); a validator is stopped only
when the voting power that stays online is more than 2/3, and the next node is touched only after it has
caught up and (a validator) signed again. Each archive is compressed, encrypted and recorded in the audit
log with its digest; archives older than ``spec.backup.retentionDays`` are deleted after a successful run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hcops.audit.log import AuditLog
from hcops.backup import archive, evidence, safety
from hcops.backup.archive import Manifest
from hcops.backup.backend import NodeBackend
from hcops.backup.crypto import key_id, load_key
from hcops.clock import Clock, now_text, parse_time, stamp
from hcops.clock import now as clock_now
from hcops.errors import HcopsError, InvalidInput
from hcops.fsutil import os_problem, replace_file
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers.rpc import RpcClient, RpcUnavailable

Say = Callable[[str], None]
REJOIN_BLOCKS = 2


@dataclass(frozen=True)
class BackupOptions:
    nodes: tuple[str, ...] = ()
    to: Path | None = None
    timeout: float = 300.0


def default_folder(plan: NetworkPlan) -> Path:
    return plan.state_dir / "backups"


def sources(plan: NetworkPlan, names: Sequence[str]) -> list[NodePlan]:
    """The chosen nodes, or the first observer, or else the validator with the least voting power."""
    if names:
        known = {n.name: n for n in plan.nodes}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidInput(f"no node named {', '.join(unknown)} in the spec",
                               hint=f"nodes: {', '.join(sorted(known))}")
        return [known[n] for n in dict.fromkeys(names)]
    observers = [n for n in plan.nodes if not n.node.is_validator]
    if observers:
        return observers[:1]
    return [min(plan.nodes, key=lambda n: (n.node.power, n.node.index))]


def others(plan: NetworkPlan, backend: NodeBackend, node: NodePlan) -> list[RpcClient]:
    """RPC clients of every other node, validators first (they see the commits first)."""
    rest = sorted((n for n in plan.nodes if n.name != node.name), key=lambda n: (not n.node.is_validator,
                                                                                  n.node.index))
    return [backend.rpc(n) for n in rest]


def stopped_validators(plan: NetworkPlan, backend: NodeBackend) -> list[str]:
    """Validators the provider sees stopped: down for the quorum even while still in the recent commits."""
    return [n.name for n in plan.nodes if n.node.is_validator and not backend.running(n)]


def new_id(node: str, now: dt.datetime) -> str:
    return f"{stamp(now)}-{node}-{secrets.token_hex(2)}"


def run_backup(plan: NetworkPlan, backend: NodeBackend, log: AuditLog, options: BackupOptions,
               say: Say, clock: Clock = clock_now) -> list[Manifest]:
    folder = archive.destination(options.to or default_folder(plan))
    key = load_key(plan.state_dir)
    made: list[Manifest] = []
    for node in sources(plan, options.nodes):
        try:
            made.append(_one(plan, backend, node, folder, key, options, say, log, clock))
        except HcopsError as exc:
            evidence.record(log, "backup", {"ok": False, "network": plan.name, "node": node.name,
                                            "provider": backend.provider, "error": exc.message})
            raise
    expired = prune(plan, log, folder, clock())
    if expired:
        say(f"retention ({plan.consortium.spec.backup.retention_days} days): deleted {len(expired)} old archive(s)")
        evidence.record(log, "backup", {"ok": True, "network": plan.name, "retention": True,
                                        "expired": expired, "id": "", "node": ""})
    return made


def _one(plan: NetworkPlan, backend: NodeBackend, node: NodePlan, folder: Path, key: bytes,
         options: BackupOptions, say: Say, log: AuditLog, clock: Clock) -> Manifest:
    rest = others(plan, backend, node)
    chain = safety.first_answering(rest)
    validator = node.node.is_validator
    if validator:
        q = safety.ensure_quorum(rest, plan, node, lambda: stopped_validators(plan, backend),
                                     wait=safety.QUORUM_WAIT)
        say(f"{node.name} is a validator: {q}")
    own = backend.rpc(node)
    try:
        status, base = own.status(), own.earliest_height()
    except RpcUnavailable as exc:
        raise InvalidInput(f"{node.name} does not answer RPC ({exc}); back up a running node",
                           hint="`hcops status` shows which nodes run") from None
    if status.catching_up:
        raise InvalidInput(f"{node.name} is catching up (height {status.height}); back up a node in sync")
    now = clock()
    backup_id = new_id(node.name, now)
    target, manifest_path = archive.paths(folder, backup_id)
    say(f"stopping {node.name} at height {status.height} to copy its data")
    t0 = time.monotonic()
    tmp: str | None = None
    try:
        backend.stop(node)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{backup_id}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out, backend.data_tar(node) as stream:
            written = archive.write_archive(stream, out, key)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise os_problem(exc, target, "write") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        stopped = time.monotonic() - t0
        backend.start(node)  # whatever happened, the node runs again
    m = Manifest(id=backup_id, network=plan.name, chain_id=plan.consortium.spec.chain.chain_id, node=node.name,
                 role=node.node.role.value, provider=backend.provider, created=now_text(now),
                 base_height=base, height=status.height, sha256=written.sha256, size=written.size,
                 key_id=key_id(key), files=written.files, data_bytes=written.data_bytes,
                 stopped_seconds=round(stopped, 3), signing_state=written.signing_state if validator else None,
                 skipped=written.skipped)
    replace_file(str(manifest_path), json.dumps(m.to_json(), indent=2).encode() + b"\n", 0o600)
    evidence.record(log, "backup", {"ok": True, **m.to_json(), "path": str(target.resolve()),
                                    "manifest": str(manifest_path.resolve())})
    say(f"{backup_id}: {written.files} files, {written.size} bytes encrypted, heights {base}-{status.height}, "
        f"sha256 {written.sha256[:16]}")
    # The archive is good whatever follows; the next node is touched only once this one is back.
    say(f"{node.name} restarted after {stopped:.1f} s; waiting for it to catch up")
    top = chain.status().height
    safety.wait_synced(own, max(1, top - 1), options.timeout)
    if validator:
        safety.wait_signing(chain, node.keys.validator_address, top + 1, REJOIN_BLOCKS, options.timeout)
    return m


def prune(plan: NetworkPlan, log: AuditLog, folder: Path, now: dt.datetime) -> list[str]:
    """Delete the archives (and manifests) in ``folder`` recorded more than retentionDays ago."""
    cutoff = now - dt.timedelta(days=plan.consortium.spec.backup.retention_days)
    gone: list[str] = []
    for b in evidence.backups(log):
        recorded = parse_time(b.time)  # never delete an archive over a time that cannot be read
        if not b.ok or not b.id or recorded is None or recorded >= cutoff or Path(b.path).parent != folder.resolve():
            continue
        for p in archive.paths(folder, b.id):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        gone.append(b.id)
    return gone


@dataclass(frozen=True)
class Listed:
    record: evidence.BackupRecord
    verified: bool | None
    problem: str | None


def list_backups(log: AuditLog, *, verify: bool = True) -> list[Listed]:
    out = []
    for b in evidence.backups(log):
        if not b.ok or not b.id:
            continue
        ok, why = evidence.verify(b) if verify else (None, "not checked")
        out.append(Listed(b, ok, why))
    return out
