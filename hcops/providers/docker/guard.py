"""Lost or foreign state is refused before apply touches anything.

A node's identity (its keys) and its chain (its genesis) are fixed once it has run. If what hcops would hand a
node differs from what the engine already holds for it, applying would start a half-replaced network: nodes
that dial peers by IDs nobody has ("dialed ID mismatch"), or a new genesis over another chain's data. That
happens when the state folder was lost (a fresh checkout generates new keys), or when volumes of an earlier
chain were left behind. Then nothing is changed and apply exits 2 saying what to do.

What is compared, per declared node: the identity and genesis digests hcops labels each container with
(``hcops.files``), the node ID a running node reports over RPC, and the genesis a kept volume holds (the
``hcops.genesis-sha256`` label hcops puts on volumes it creates; for older volumes the file itself, read
through a created, never started, container).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors

from hcops.errors import HcopsError
from hcops.plan.desired import Identity, NetworkPlan
from hcops.providers.docker.containers import HOME, LABEL_FILES, LABEL_MANAGED, DesiredContainer
from hcops.providers.docker.engine import engine_errors
from hcops.providers.docker.inventory import Inventory
from hcops.providers.rpc import RpcClient, RpcUnavailable

LABEL_GENESIS = "hcops.genesis-sha256"  # on volumes: the chain whose data they hold
GENESIS_PATH = f"{HOME}/config/genesis.json"
MAX_LISTED = 4


class ForeignState(HcopsError):
    """The engine holds nodes or data of another identity or chain than the plan. Exit 2, nothing changed."""


def volume_labels(plan: NetworkPlan) -> dict[str, str]:
    return {LABEL_GENESIS: plan.genesis_sha256}


def check_state(client: docker.DockerClient, plan: NetworkPlan, inv: Inventory) -> None:
    """Raise ``ForeignState`` when a declared node's container or kept volume belongs to another identity or
    another chain than the plan's."""
    problems: list[str] = []
    want_genesis = plan.genesis_sha256
    for n in plan.nodes:
        d = DesiredContainer(plan, n)
        c = inv.containers.get(n.name)
        if c is not None:
            problems += _container_problems(d, c.attrs, c.status)
        elif d.volume in inv.volumes:
            held = _volume_genesis(client, d, inv.volumes[d.volume])
            if held is not None and held != want_genesis:
                problems.append(f"volume {d.volume} holds the data of another chain (genesis {held[:12]}, "
                                f"the plan's is {want_genesis[:12]})")
    if problems:
        raise _refusal(plan, problems)


def _container_problems(d: DesiredContainer, attrs: Mapping[str, Any], status: str) -> list[str]:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    try:
        live = json.loads(labels.get(LABEL_FILES, "{}"))
    except ValueError:
        live = {}
    want = d.files_digest()
    node = d.node
    out = []
    if node.identity is Identity.pending:
        out.append(f"node {node.name} runs (container {d.name}) but neither the state folder nor the lock file "
                   "has its identity")
    elif live.get("keys") and live["keys"] != want["keys"]:
        out.append(f"container {d.name} runs node {node.name} with another identity than "
                   f"{'the lock file' if node.identity is Identity.lock else 'the state folder'} records")
    elif status == "running":
        try:
            reported = RpcClient(d.rpc_url, timeout=2.0, attempts=1).status().node_id
        except RpcUnavailable:
            reported = None
        if reported and reported.lower() != node.keys.node_id.lower():
            out.append(f"node {node.name} reports node ID {reported}, not {node.keys.node_id}")
    if live.get("genesis") and live["genesis"] != want["genesis"]:
        out.append(f"container {d.name} runs another chain (its genesis is not the plan's)")
    return out


def _volume_genesis(client: docker.DockerClient, d: DesiredContainer, volume: object) -> str | None:
    """SHA-256 (upper hex) of the genesis a kept volume holds; None when it holds none."""
    labels = (getattr(volume, "attrs", {}) or {}).get("Labels") or {}
    if labels.get(LABEL_GENESIS):
        return str(labels[LABEL_GENESIS]).upper()
    # An older volume, unlabelled: read the file through a container that is created and never started.
    with engine_errors(f"reading the genesis kept in volume {d.volume}"):
        probe = client.containers.create(d.image, command=["version"], network_mode="none",
                                         labels={LABEL_MANAGED: "hcops"},
                                         volumes={d.volume: {"bind": HOME, "mode": "ro"}})
        try:
            try:
                stream, _ = probe.get_archive(GENESIS_PATH)
            except docker.errors.NotFound:
                return None
            data = _tar_member(b"".join(stream))
        finally:
            probe.remove(force=True)
    return None if data is None else hashlib.sha256(data).hexdigest().upper()


def _tar_member(raw: bytes) -> bytes | None:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                return f.read() if f else None
    return None


def _refusal(plan: NetworkPlan, problems: list[str]) -> ForeignState:
    shown = problems[:MAX_LISTED] + ([f"and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED
                                     else [])
    return ForeignState(
        f"refusing to apply network {plan.name}: the engine holds nodes or data that are not this plan's: "
        + "; ".join(shown),
        hint=f"if the state folder ({plan.state_dir}) was lost, restore it from backup (it holds the nodes' keys) "
             "and apply again; to give up the old chain and start a new one instead, run "
             "`hcops destroy --prune-volumes` (this deletes the chain's data and its lock file)")
