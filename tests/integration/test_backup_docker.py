"""Backups, restores and restore drills against a real 4-validator + 1-observer network on Docker.

Ordered steps on one network: an observer backup (no key or signing state inside); a validator backup
taken under the quorum rule (refused while another validator is down); one validator's volume destroyed and
restored from its own, older backup while a watcher proves the chain never stops committing: its stale
signing state is refused, it catches up and signs again, and it signs no height twice; a drill passes on a
healthy backup and fails clearly on one with a flipped byte, leaving no scratch objects behind.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sqlite3
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.providers.rpc import RpcClient, RpcUnavailable
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

OBSERVER = "state-obs-0"
VALIDATOR = "northside-val-0"
OTHER = "cityrx-val-0"


def _json(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _rpc(net: TestNetwork, index: int) -> RpcClient:
    return RpcClient(f"http://127.0.0.1:{net.port_base + index}", timeout=3.0, attempts=2)


def _records(net: TestNetwork, kind: str) -> list[dict[str, Any]]:
    db = net.state_dir / net.name / "audit.db"
    with sqlite3.connect(db) as c:
        return [json.loads(b) for (b,) in c.execute("SELECT body FROM records WHERE kind = ? ORDER BY seq", (kind,))]


class HeightWatcher:
    """Samples the chain's height from a node that is never touched; the longest stall is the evidence."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc, self.stop, self.longest, self.samples = rpc, threading.Event(), 0.0, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_h, last_t = -1, time.monotonic()
        while not self.stop.wait(0.25):
            try:
                h = self.rpc.status().height
            except RpcUnavailable:
                continue
            now = time.monotonic()
            self.samples += 1
            if h > last_h:
                last_h, last_t = h, now
            self.longest = max(self.longest, now - last_t)

    def __enter__(self) -> HeightWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def net(module_network: TestNetwork, docker_engine: Any) -> Iterator[TestNetwork]:
    module_network.hcops("apply", "--yes", check=True, timeout=600)
    try:
        yield module_network
    finally:
        for kind in ("containers", "networks", "volumes"):  # drill objects carry hcops.drill, not hcops.network
            coll = getattr(docker_engine, kind)
            found = coll.list(all=True, filters={"label": f"hcops.drill={module_network.name}"}) \
                if kind == "containers" else coll.list(filters={"label": f"hcops.drill={module_network.name}"})
            for obj in found:
                obj.remove(force=True) if kind != "networks" else obj.remove()


def _decrypt(net: TestNetwork, record: dict[str, Any]) -> tarfile.TarFile:
    from hcops.backup.archive import decrypt_archive
    from hcops.backup.crypto import load_key

    out = io.BytesIO()
    decrypt_archive(Path(record["path"]), load_key(net.state_dir / net.name, create=False), record["sha256"], out)
    out.seek(0)
    return tarfile.open(fileobj=out)


def test_observer_backup_is_encrypted_recorded_and_keyless(net: TestNetwork) -> None:
    made = _json(net.hcops("backup", "-o", "json", timeout=300))
    assert [m["node"] for m in made] == [OBSERVER]
    rec = _records(net, "backup")[-1]
    assert rec["ok"] and rec["sha256"] == made[0]["sha256"] and rec["height"] > 1 and rec["size"] > 0
    key = net.state_dir / net.name / "backup.key"
    assert key.stat().st_mode & 0o777 == 0o600
    raw = Path(rec["path"]).read_bytes()
    assert raw.startswith(b"HCOPSBK1") and b"blockstore" not in raw  # encrypted at rest
    with _decrypt(net, rec) as tar:
        names = tar.getnames()
        assert any(n.startswith("data/blockstore.db/") for n in names) and "data/state.db" in names
        assert not [n for n in names if "priv_validator" in n or "key" in n or "cs.wal" in n], names
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    for node in ("stmary-val-0", VALIDATOR, OBSERVER):  # no node's private key, in any form, is in the data
        doc = json.loads((net.state_dir / net.name / "keys" / node / "priv_validator_key.json").read_bytes()) \
            if (net.state_dir / net.name / "keys" / node / "priv_validator_key.json").exists() else None
        if doc:
            secret = doc["priv_key"]["value"]
            assert secret.encode() not in blob and base64.b64decode(secret) not in blob
    listed = _json(net.hcops("backup", "list", "-o", "json"))
    assert listed[-1]["verified"] is True


def wait_signing(rpc: RpcClient, network_dir: Path, node: str, timeout: float) -> None:
    """Until ``node`` (its key in the network's state folder ``network_dir``) signed the last two commits
    ``rpc`` reports; any provider."""
    address = json.loads((network_dir / "keys" / node / "priv_validator_key.json").read_bytes())["address"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RpcUnavailable):
            h = rpc.status().height
            if all(address in rpc.commit(x).signers for x in (h - 1, h)):
                return
        time.sleep(0.5)
    raise AssertionError(f"{node} did not sign again within {timeout} s")


def _wait_signing(net: TestNetwork, node: str, timeout: float = 90) -> None:
    wait_signing(_rpc(net, 0), net.state_dir / net.name, node, timeout)


def test_validator_backup_waits_for_quorum(net: TestNetwork, docker_engine: Any) -> None:
    other = docker_engine.containers.get(f"{net.name}-{OTHER}")
    other.stop(timeout=10)
    try:
        proc = net.hcops("backup", "--node", VALIDATOR)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "refusing to stop" in proc.stderr and "2/3" in proc.stderr, proc.stderr
    finally:
        other.start()
    assert _records(net, "backup")[-1]["ok"] is False
    _wait_signing(net, OTHER)  # until it signs again, hcops rightly counts it as down
    made = _json(net.hcops("backup", "--node", VALIDATOR, "-o", "json", timeout=300))
    assert made[0]["node"] == VALIDATOR and made[0]["signing_state"]["height"] > 0


def test_destroyed_validator_is_restored_without_the_chain_stopping(net: TestNetwork, docker_engine: Any) -> None:
    old = [r for r in _records(net, "backup") if r.get("ok") and r.get("node") == VALIDATOR][-1]
    c = docker_engine.containers.get(f"{net.name}-{VALIDATOR}")
    with HeightWatcher(_rpc(net, 0)) as watch:
        time.sleep(4)  # the backup's signing state falls behind the chain
        c.remove(force=True)
        docker_engine.volumes.get(f"{net.name}-{VALIDATOR}-data").remove(force=True)
        proc = net.hcops("restore", "--node", VALIDATOR, "--from", old["id"], timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # One validator out costs a round whenever it is the proposer (timeout_propose 3 s plus the vote
    # timeouts) and never a halt: a gap of a few seconds, not the length of the restore.
    assert watch.samples > 20 and watch.longest < 15.0, f"the chain stalled for {watch.longest:.1f} s"
    assert "refused: backup signing state" in proc.stderr and "corrected:" in proc.stdout
    rec = _records(net, "restore")[-1]
    assert rec["ok"] and rec["node"] == VALIDATOR and rec["backupId"] == old["id"]
    assert rec["signingStateSource"] == "chain"
    assert rec["signingState"]["height"] > old["signing_state"]["height"]
    assert rec["signingState"]["height"] >= rec["lastSignedBefore"] >= old["height"]
    assert rec["signedHeights"] and min(rec["signedHeights"]) > rec["signingState"]["height"]
    assert rec["doubleSignCheckHeight"] == 10
    plan = net.hcops("plan", "--detailed-exitcode")  # the recreated container is the spec's
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_restored_validator_signs_no_height_twice(net: TestNetwork, docker_engine: Any) -> None:
    rec = _records(net, "restore")[-1]
    rpc = _rpc(net, 0)
    address = json.loads((net.state_dir / net.name / "keys" / VALIDATOR / "priv_validator_key.json")
                         .read_bytes())["address"]
    c = docker_engine.containers.get(f"{net.name}-{VALIDATOR}")
    deadline = time.monotonic() + 30
    compared = 0
    while compared < 3 and time.monotonic() < deadline:  # its latest precommit is the chain's signature
        stream, _ = c.get_archive("/cometbft/data/priv_validator_state.json")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            state = json.loads(tar.extractfile(tar.next()).read())  # type: ignore[arg-type, union-attr]
        h = int(state["height"])
        assert h > rec["signingState"]["height"]
        while rpc.status().height <= h and time.monotonic() < deadline:  # its commit is in block h + 1
            time.sleep(0.1)
        if state["step"] == 3:
            sigs = rpc.call("commit", height=h)["signed_header"]["commit"]["signatures"]
            mine = [s for s in sigs if s.get("validator_address") == address]
            if mine and mine[0]["block_id_flag"] == 2 and state.get("signature"):
                assert mine[0]["signature"] == state["signature"]
                compared += 1
        time.sleep(0.5)
    assert compared >= 1
    top = rpc.status().height
    for h in range(max(1, rec["chainHeightAtStop"] - 5), top + 1):  # no double-sign evidence was committed
        assert rpc.call("block", height=h)["block"]["evidence"]["evidence"] in ([], None), h


def test_drill_passes_on_a_healthy_backup_and_fails_on_a_flipped_byte(net: TestNetwork, docker_engine: Any) -> None:
    proc = net.hcops("drill", "restore", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drill = _records(net, "drill")[-1]
    assert drill["ok"] and drill["reachedHeight"] >= 1 and len(drill["heightsChecked"]) >= 2
    latest = [r for r in _records(net, "backup") if r.get("ok") and r.get("id")][-1]
    path = Path(latest["path"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    proc = net.hcops("drill", "restore", "--from", latest["id"], timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stderr and "damaged" in proc.stderr and "SHA-256" in proc.stderr, proc.stderr
    failed = _records(net, "drill")[-1]
    assert failed["ok"] is False and failed["backupId"] == latest["id"]
    listed = net.hcops("backup", "list", "-o", "json")
    assert listed.returncode == 1
    assert [r["verified"] for r in json.loads(listed.stdout) if r["id"] == latest["id"]] == [False]
    f = {"label": f"hcops.drill={net.name}"}
    assert not docker_engine.containers.list(all=True, filters=f) and not docker_engine.networks.list(filters=f)
    assert not docker_engine.volumes.list(filters=f)


def test_audit_watch_runs_the_scheduled_backup(net: TestNetwork) -> None:
    """`hcops audit --watch` honours spec.backup.schedule (every minute here): the run is recorded."""
    before = len([r for r in _records(net, "backup") if r.get("ok") and r.get("id")])
    net.write(backup='  backup: {enabled: true, schedule: "* * * * *", retentionDays: 30}')
    proc = net.popen("audit", "--watch", "--interval", "5s", "--format", "json")
    try:
        deadline = time.monotonic() + 150
        events: list[dict[str, Any]] = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1]["event"] in ("backup_finished", "backup_failed"):
                    break
        assert events and events[-1]["event"] == "backup_finished", [e["event"] for e in events]
    finally:
        proc.terminate()
        proc.wait(30)
        net.write()
    done = [r for r in _records(net, "backup") if r.get("ok") and r.get("id")]
    assert len(done) == before + 1 and done[-1]["id"] == events[-1]["id"] and done[-1]["node"] == OBSERVER
