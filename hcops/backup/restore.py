"""``hcops restore``: one node from a backup, caught up with the live chain, without a double-sign.

For a validator, in this order: the quorum is checked (more than 2/3 of the voting power stays online);
the node is stopped; the chain must then commit two more blocks (it keeps committing without the node,
and any vote the node cast before it stopped is for a height the chain has now passed); the signing state
to install is the highest of the chain's floor (its committed height, which is above the node's last
signature found in ``/commit``), the node's own file when its volume still has one, and the backup's
record: an older one is refused and reported. The node's config gets ``double_sign_check_height``, and it
is started only once the chain is that many blocks past the node's last signature, so that CometBFT's own
check passes instead of stopping the node. Then it must catch up and sign again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcops.audit.log import AuditLog
from hcops.backup import archive, evidence, safety
from hcops.backup.archive import SigningState
from hcops.backup.backend import NodeBackend, restore_config
from hcops.backup.crypto import load_key
from hcops.backup.service import others, stopped_validators
from hcops.errors import HcopsError, InvalidInput
from hcops.plan.desired import NetworkPlan, NodePlan

Say = Callable[[str], None]
REJOIN_BLOCKS = 2
SETTLE_BLOCKS = 2


@dataclass(frozen=True)
class RestoreOptions:
    node: str
    backup_id: str | None = None
    timeout: float = 300.0
    double_sign_check_height: int = safety.DOUBLE_SIGN_CHECK_HEIGHT


@dataclass(frozen=True)
class RestoreResult:
    node: str
    backup_id: str
    role: str
    seconds: float
    caught_up_height: int
    state: SigningState | None = None
    state_source: str | None = None
    corrected: tuple[str, ...] = ()
    chain_height_at_stop: int | None = None
    last_signed: int | None = None
    signed_heights: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "backupId": self.backup_id, "role": self.role, "seconds": round(self.seconds, 3),
                "caughtUpHeight": self.caught_up_height,
                "signingState": self.state.to_json() if self.state else None, "signingStateSource": self.state_source,
                "corrected": list(self.corrected), "chainHeightAtStop": self.chain_height_at_stop,
                "lastSignedBefore": self.last_signed, "signedHeights": list(self.signed_heights)}


def pick_backup(log: AuditLog, backup_id: str | None, node: str | None = None) -> evidence.BackupRecord:
    if backup_id:
        found = evidence.find_backup(log, backup_id)
        if found is None:
            raise InvalidInput(f"no successful backup {backup_id} in the audit log",
                               hint="`hcops backup list` shows the backups")
        return found
    found = evidence.latest_backup(log, node) or evidence.latest_backup(log)
    if found is None:
        raise InvalidInput("no successful backup in the audit log", hint="run `hcops backup` first")
    return found


@contextlib.contextmanager
def decrypted(plan: NetworkPlan, b: evidence.BackupRecord) -> Any:
    """The backup's plain tar in a private temporary folder, removed on exit."""
    if b.body.get("chain_id") not in (None, plan.consortium.spec.chain.chain_id):
        raise InvalidInput(f"backup {b.id} is of chain {b.body.get('chain_id')}, "
                           f"not {plan.consortium.spec.chain.chain_id}")
    key = load_key(plan.state_dir, create=False)
    folder = Path(tempfile.mkdtemp(prefix="hcops-restore-"))  # 0700: chain data may be sensitive
    try:
        tar = folder / "data.tar"
        with open(tar, "wb") as out:
            archive.decrypt_archive(Path(b.path), key, b.sha256, out)
        archive.check_tar(tar)
        yield tar
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def state_json(state: SigningState) -> bytes:
    # CometBFT's FilePVLastSignState; no signature or sign bytes: at this very height/round/step the
    # validator then refuses to sign ("no SignBytes found") rather than re-sign.
    return json.dumps({"height": str(state.height), "round": state.round, "step": state.step}, indent=2).encode()


def run_restore(plan: NetworkPlan, backend: NodeBackend, log: AuditLog, options: RestoreOptions,
                say: Say) -> RestoreResult:
    try:
        node = plan.node(options.node)
    except KeyError:
        raise InvalidInput(f"no node named {options.node} in the spec",
                           hint=f"nodes: {', '.join(n.name for n in plan.nodes)}") from None
    b = pick_backup(log, options.backup_id, node.name)
    try:
        result = _restore(plan, backend, node, b, options, say)
    except HcopsError as exc:
        evidence.record(log, "restore", {"ok": False, "network": plan.name, "node": node.name, "backupId": b.id,
                                         "provider": backend.provider, "error": exc.message})
        raise
    evidence.record(log, "restore", {"ok": True, "network": plan.name, "provider": backend.provider,
                                     "archiveSha256": b.sha256, "doubleSignCheckHeight":
                                     options.double_sign_check_height if node.node.is_validator else None,
                                     **result.to_json()})
    return result


def _restore(plan: NetworkPlan, backend: NodeBackend, node: NodePlan, b: evidence.BackupRecord,
             options: RestoreOptions, say: Say) -> RestoreResult:
    t0 = time.monotonic()
    validator, address = node.node.is_validator, node.keys.validator_address
    with decrypted(plan, b) as tar:
        say(f"backup {b.id} (of {b.node}, heights {b.base_height}-{b.height}) verified and decrypted")
        rest = others(plan, backend, node)
        chain = safety.first_answering(rest)
        running = backend.running(node)
        if validator:
            q = safety.ensure_quorum(rest, plan, node, lambda: stopped_validators(plan, backend),
                                     wait=safety.QUORUM_WAIT)
            say(f"{node.name} is a validator: {q}")
        volume_state = SigningState.parse(backend.read_state(node)) if validator else None
        if running:
            backend.stop(node)
            say(f"stopped {node.name}")
        stop_height = chain.status().height
        try:
            safety.wait_height(chain, stop_height + SETTLE_BLOCKS, options.timeout)
        except HcopsError:
            if running:
                backend.start(node)  # nothing was changed yet: put the node back as it was
            raise
        state: SigningState | None = None
        source: str | None = None
        corrected: tuple[str, ...] = ()
        last: int | None = None
        if validator:
            top = chain.status().height
            last = safety.last_signed(chain, address, below=top)
            recorded = SigningState.parse(json.dumps(b.body.get("signing_state")).encode()) \
                if b.node == node.name and b.body.get("signing_state") else None
            choice = safety.choose_state(safety.SigningFloor(top, last),
                                         [("volume", volume_state), ("backup", recorded)])
            state, source, corrected = choice.state, choice.source, choice.corrected
            for note in corrected:
                say(f"refused: {note}")
            say(f"signing state {state} installed (from {source}; the chain's last signature of {node.name} is at "
                f"height {last}); double_sign_check_height = {options.double_sign_check_height}")
        config = backend.config_toml(node)
        if validator:
            config = restore_config(config, options.double_sign_check_height)
        backend.replace(node, tar, state_json(state) if state else None, config)
    if validator:
        # CometBFT refuses to join consensus (and exits) while its signature is in the last
        # double_sign_check_height blocks: start once the chain is past them.
        safety.wait_height(chain, max(last or 0, stop_height) + options.double_sign_check_height + 1,
                           options.timeout)
    backend.start(node)
    say(f"started {node.name}; waiting for it to catch up")
    top = chain.status().height
    caught = safety.wait_synced(backend.rpc(node), max(1, top - 1), options.timeout)
    signed: list[int] = []
    if validator:
        signed = safety.wait_signing(chain, address, caught + 1, REJOIN_BLOCKS, options.timeout)
        say(f"{node.name} signs again (heights {', '.join(map(str, signed))})")
    return RestoreResult(node.name, b.id, node.node.role.value, time.monotonic() - t0, caught, state, source,
                         corrected, stop_height, last, tuple(signed))
