"""The audit against a real network on the Docker engine (fails under CI=true without an engine).

Ordered steps on one network: a clean sweep; a stopped validator is found by --watch within two
intervals, exported as metrics, and cleared after `hcops apply` heals it; an undeclared container
publishing RPC on 0.0.0.0 and a world-readable key file are found; tampering with the audit log is
named by `audit verify`; anchored head hashes are on chain.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.providers.docker_support import IMAGE, TestNetwork

pytestmark = pytest.mark.integration

VALIDATOR = "northside-val-0"
KEY = "/cometbft/config/priv_validator_key.json"


def _json(proc: Any) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def net(module_network: TestNetwork) -> TestNetwork:
    module_network.hcops("apply", "--yes", check=True, timeout=600)
    return module_network


def container(docker_engine: Any, net: TestNetwork, node: str) -> Any:
    return docker_engine.containers.get(f"{net.name}-{node}")


def test_clean_network_has_no_high_findings(net: TestNetwork) -> None:
    proc = net.hcops("audit", "--format", "json")
    doc = _json(proc)
    assert [f for f in doc["findings"] if f["severity"] == "high"] == [], doc["findings"]
    assert proc.returncode == 0
    assert {n["name"] for n in doc["nodes"]} >= {VALIDATOR} and all(n["up"] for n in doc["nodes"])
    assert doc["sweep"]["id"] and len(doc["sweep"]["head"]["hash"]) == 64
    assert doc["anchor"]["ok"], doc["anchor"]  # the example spec anchors to the chain
    assert "priv_validator" not in json.dumps(doc["nodes"])


class Watch:
    """`hcops audit --watch --format json` in the background; its events arrive on a queue. Its metrics server
    binds a port the system picks (``--serve 127.0.0.1:0``): ``listen`` is the address it printed."""

    def __init__(self, net: TestNetwork, interval: str) -> None:
        self.proc = net.popen(
            "audit", "--watch", "--interval", interval, "--format", "json", "--serve", "127.0.0.1:0"
        )
        self.events: Queue[dict[str, Any]] = Queue()
        self.serving: Queue[str] = Queue()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()  # drained, so that it never blocks
        self.listen = self.serving.get(timeout=60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("serving /metrics and /healthz on http://"):
                self.serving.put(line.strip().rsplit("http://", 1)[1])

    def until(self, predicate: Any, timeout: float) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.events.get(timeout=0.5)
            except Empty:
                continue
            seen.append(e)
            if predicate(e, seen):
                return seen
        raise AssertionError(f"no matching event within {timeout}s; saw {[x.get('event') for x in seen]}")


@pytest.fixture
def watching(net: TestNetwork) -> Iterator[tuple[Watch, str]]:
    w = Watch(net, "3s")
    try:
        yield w, w.listen
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)


def test_stopped_validator_is_found_within_two_intervals_and_clears_after_apply(
    net: TestNetwork, docker_engine: Any, watching: tuple[Watch, str]
) -> None:
    w, listen = watching
    w.until(lambda e, _s: e["event"] == "audit_finished", timeout=60)  # the watch is up
    container(docker_engine, net, VALIDATOR).stop(timeout=10)
    finishes = 0

    def down_found(e: dict[str, Any], _s: list[dict[str, Any]]) -> bool:
        nonlocal finishes
        finishes += e["event"] == "audit_finished"
        assert finishes <= 2, "no finding for the stopped validator within 2 intervals"
        return (
            e["event"] == "violation_audited"
            and e["resource"] == f"node/{VALIDATOR}"
            and e["id"] == "HC-RT-CP1-NODE-DOWN"
        )

    # Within two intervals: at most two sweeps finish before the finding (down_found). No wall-clock bound on
    # top: a sweep that anchors while the stopped validator was to propose waits out CometBFT's round timeout.
    w.until(down_found, timeout=30)
    w.until(lambda e, _s: e["event"] == "audit_finished", timeout=15)

    text = urllib.request.urlopen(f"http://{listen}/metrics", timeout=5).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rules = {s.labels["rule"]: s.value for s in families["hcops_findings"].samples}
    assert rules.get("HC-RT-CP1-NODE-DOWN", 0) >= 1
    up = {s.labels["node"]: s.value for s in families["hcops_node_up"].samples}
    assert up[VALIDATOR] == 0 and up["stmary-val-0"] == 1
    assert urllib.request.urlopen(f"http://{listen}/healthz", timeout=5).status == 200

    net.hcops("apply", "--yes", check=True, timeout=300)
    events = w.until(
        lambda e, _s: (
            e["event"] == "incident_cleared"
            and e["resource"] == f"node/{VALIDATOR}"
            and e["rule"] == "HC-RT-CP1-NODE-DOWN"
        ),
        timeout=60,
    )
    cleared = events[-1]
    assert cleared["firstSeen"] <= cleared["lastSeen"] < cleared["cleared"]

    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(30) == 0
    log = net.state_dir / net.name / "audit.db"
    verify = net.hcops("audit", "verify")
    assert verify.returncode == 0, verify.stderr
    query = "SELECT COUNT(*) FROM incidents WHERE rule = ? AND resource = ? AND event = 'opened'"
    opened = sqlite3.connect(log).execute(query, ("HC-RT-CP1-NODE-DOWN", f"node/{VALIDATOR}")).fetchone()[0]
    assert opened == 1  # appeared, persisted and cleared: one incident


@pytest.fixture
def rogue(net: TestNetwork, docker_engine: Any) -> Iterator[Any]:
    """A container with the network's labels running a throwaway single-node chain, RPC on 0.0.0.0."""
    labels = {"hcops.network": net.name, "hcops.managed-by": "hcops", "hcops.node": "rogue-0"}
    volume = docker_engine.volumes.create(name=f"{net.name}-rogue-home", labels={"hcops.network": net.name})
    # mounted at the image's home (CMTHOME), so the fresh volume takes the node user's ownership
    mounts = {volume.name: {"bind": "/cometbft", "mode": "rw"}}
    docker_engine.containers.run(IMAGE, ["init"], volumes=mounts, remove=True)
    c = docker_engine.containers.run(
        IMAGE,
        ["start", "--proxy_app", "kvstore", "--rpc.laddr", "tcp://0.0.0.0:26657"],
        name=f"{net.name}-rogue-0",
        labels=labels,
        volumes=mounts,
        detach=True,
        ports={"26657/tcp": ("0.0.0.0", None)},  # a port Docker picks
    )
    try:
        yield c
    finally:
        c.remove(force=True)
        volume.remove(force=True)


def test_undeclared_container_publishing_rpc_is_found(net: TestNetwork, rogue: Any) -> None:
    doc = _json(net.hcops("audit", "--format", "json"))
    found = {(f["id"], f["resource"]) for f in doc["findings"]}
    assert ("HC-RT-AZ1-UNDECLARED", f"container/{rogue.name}") in found, found
    assert ("HC-RT-AC1-RPC-EXPOSED", f"container/{rogue.name}") in found, found


def _set_mode(c: Any, path: str, mode: int) -> None:
    """chmod through the engine (the image has no shell): read the file's tar entry, write it back."""
    stream, _ = c.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as src:
        member = src.next()
        assert member is not None
        data = src.extractfile(member).read()  # type: ignore[union-attr]
    member.mode = mode
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(member, io.BytesIO(data))
    assert c.put_archive(os.path.dirname(path), out.getvalue())


def test_world_readable_key_file_is_found(net: TestNetwork, docker_engine: Any) -> None:
    c = container(docker_engine, net, "bluecross-val-0")
    _set_mode(c, KEY, 0o644)
    try:
        doc = _json(net.hcops("audit", "--format", "json"))
        hits = [f for f in doc["findings"] if f["id"] == "HC-RT-AC5-KEY-FILE-MODE"]
        assert [f["resource"] for f in hits] == ["node/bluecross-val-0"], doc["findings"]
        assert "0644" in hits[0]["message"] and hits[0]["control"] == "AC-5"
    finally:
        _set_mode(c, KEY, 0o600)
    doc = _json(net.hcops("audit", "--format", "json"))
    assert "HC-RT-AC5-KEY-FILE-MODE" not in {f["id"] for f in doc["findings"]}


def test_anchored_heads_are_on_chain(net: TestNetwork) -> None:
    proc = net.hcops("audit", "verify", "--anchored")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "intact" in proc.stdout and "anchors:" in proc.stdout
    checked = int(proc.stdout.split("anchors:")[1].split()[0])
    assert checked >= 2


@pytest.mark.parametrize("tamper", ["edit", "insert", "delete"])
def test_tampered_log_is_named_by_verify(net: TestNetwork, tmp_path: Path, tamper: str) -> None:
    src = net.state_dir / net.name / "audit.db"
    db_copy = tmp_path / "audit.db"
    with sqlite3.connect(src) as s, sqlite3.connect(db_copy) as d:
        s.backup(d)
    shutil.copy(src.with_name("audit.db.head"), tmp_path / "audit.db.head")
    untouched = net.hcops("audit", "verify", "--audit-db", str(db_copy))
    assert untouched.returncode == 0 and "intact" in untouched.stdout
    db = sqlite3.connect(db_copy, isolation_level=None)
    db.execute("DROP TRIGGER records_no_update")
    db.execute("DROP TRIGGER records_no_delete")
    if tamper == "edit":
        db.execute(
            "UPDATE records SET body = replace(body, '\"passed\":true', '\"passed\":false') WHERE seq = 2"
        )
        db.execute("UPDATE records SET time = '2000-01-01T00:00:00.000000Z' WHERE seq = 2")
        expected = "record 2:"
    elif tamper == "insert":
        head = db.execute("SELECT MAX(seq), hash FROM records").fetchone()
        db.execute(
            "INSERT INTO records (seq, kind, time, body, prev_hash, hash) VALUES (?, 'sweep', ?, '{}', ?, ?)",
            (head[0] + 1, "2030-01-01T00:00:00.000000Z", head[1], "0" * 64),
        )
        expected = f"record {head[0] + 1}:"
    else:
        db.execute("DELETE FROM records WHERE seq = 2")
        expected = "record 3:"
    db.close()
    broken = net.hcops("audit", "verify", "--audit-db", str(db_copy))
    assert broken.returncode == 1
    assert expected in broken.stderr, broken.stderr
