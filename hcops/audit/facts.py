"""The fact document: what one audit sweep saw, provider-neutral, as the input of the runtime policies.

Built from the plan (what the spec declares), the provider's observation (raw engine and RPC facts per
node) and a summary of the previous sweep (for "height advanced" and drift). The shape is documented
in ``policies/runtime/README.md``. It never holds secrets: key files appear as mode/owner only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcops.plan.cometbft import METRICS_PORT, P2P_PORT, RPC_PORT
from hcops.plan.desired import NetworkPlan
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.facts import (
    ContainerFacts,
    HostFacts,
    ImageFacts,
    KeyFile,
    PortBinding,
    ResourceLimits,
    RpcFacts,
    port_bindings,
)
from hcops.spec.types import IMAGE_REF

STALL_INTERVALS = 3  # the chain must advance within 3 x blockInterval and one failed round
# One consensus round that fails because its proposer is down: CometBFT's timeout_propose, timeout_prevote and
# timeout_precommit at their defaults (3 s + 1 s + 1 s; hcops renders them unchanged). A chain that loses a
# round to a missing validator is degraded (NODE-DOWN and VALIDATOR-NOT-SIGNING say so), not stalled.
FAILED_ROUND_NS = 5_000_000_000
# A block's BFT time is when its predecessor was committed, and nodes are read while the sweep runs: the
# newest block's age gets this allowance on top of 3 x blockInterval.
BLOCK_AGE_ALLOWANCE_NS = 2_000_000_000
OVERDUE_INTERVALS = 2  # the audit must run within 2 x audit.interval
_SERVICES = {RPC_PORT: "rpc", P2P_PORT: "p2p", METRICS_PORT: "metrics"}


@dataclass(frozen=True)
class Previous:
    """The part of the last recorded sweep that the next one compares with."""

    sweep_id: str
    time_ns: int
    height: int | None
    image_ids: Mapping[str, str]
    phi_cursor: Mapping[str, Any] | None = None  # hcops.audit.chainscan.Cursor, as recorded

    @classmethod
    def from_summary(cls, doc: Mapping[str, Any] | None) -> Previous | None:
        if not doc or "timeNs" not in doc:
            return None
        chain = doc.get("chain") or {}
        return cls(
            sweep_id=str(doc.get("id", "")),
            time_ns=int(doc["timeNs"]),
            height=chain.get("height"),
            image_ids=dict(doc.get("imageIds") or {}),
            phi_cursor=doc.get("phiCursor"),
        )


def _ns(td: dt.timedelta) -> int:
    return int(td / dt.timedelta(microseconds=1)) * 1000


def parse_rfc3339_ns(text: str | None) -> int | None:
    """CometBFT times have nanoseconds ("2026-01-01T00:00:00.123456789Z"); Python keeps microseconds."""
    if not text:
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in frac if ch.isdigit())[:9].ljust(9, "0")
    return int(base.timestamp()) * 1_000_000_000 + int(digits)


def _uid(user: str | None) -> int | None:
    head = (user or "").split(":")[0]
    return int(head) if head.isdigit() else None


def _ports(bindings: Sequence[PortBinding]) -> list[dict[str, Any]]:
    return [{"containerPort": b.container_port, "protocol": b.protocol,
             "service": _SERVICES.get(b.container_port, "other"), "hostIp": b.host_ip, "hostPort": b.host_port}
            for b in bindings]


def _image(image: ImageFacts | None) -> dict[str, Any]:
    image = image or ImageFacts()
    return {"reference": image.reference or "", "id": image.id or "", "repoDigests": sorted(image.repo_digests)}


def _files(files: Mapping[str, KeyFile]) -> list[dict[str, Any]]:
    return [{"path": path, "present": f.mode is not None, "mode": f.mode, "uid": f.uid, "gid": f.gid,
             "error": f.error} for path, f in sorted(files.items())]


def _rpc(r: RpcFacts, now_ns: int) -> dict[str, Any]:
    block_ns = parse_rfc3339_ns(r.latest_block_time)
    return {
        "reachable": r.reachable,
        "error": r.error,
        "nodeId": r.node_id,
        "validatorAddress": r.validator_address,
        "chainId": r.chain_id,
        "version": r.version,
        "height": r.height,
        "catchingUp": r.catching_up,
        "latestBlockTime": r.latest_block_time,
        "latestBlockAgeNs": (now_ns - block_ns) if block_ns is not None else None,
        "peers": sorted(r.peers),
        **({"tls": dict(r.tls)} if r.tls is not None else {}),  # TS-2, camelCase (providers.tls)
    }


def _rpc_from_status(status: NodeStatus) -> RpcFacts:
    """Providers without detailed RPC facts still fill the NodeStatus fields from /status."""
    if status.height is None:
        return RpcFacts(reachable=False, error="no RPC facts reported")
    return RpcFacts(reachable=True, height=status.height, catching_up=status.catching_up,
                    latest_block_time=status.last_block_time, voting_power=status.voting_power)


def _host(h: HostFacts) -> dict[str, Any]:
    """The one place host facts become camelCase (policies/runtime/host.rego reads them)."""
    if h.unit is None:
        return {"error": h.error}
    u, hd, b = h.unit, h.hardening, h.binary
    return {
        "unit": {"name": u.name, "installed": u.installed, "activeState": u.active_state,
                 "subState": u.sub_state, "enabled": u.enabled, "restarts": u.restarts,
                 "dropIns": list(u.drop_ins), "restartPending": u.restart_pending},
        "hardening": {"user": hd.user, "noNewPrivileges": hd.no_new_privileges,
                      "protectSystem": hd.protect_system, "protectHome": hd.protect_home,
                      "privateTmp": hd.private_tmp, "privateDevices": hd.private_devices,
                      "capabilityBoundingSet": list(hd.capability_bounding_set),
                      "ambientCapabilities": list(hd.ambient_capabilities),
                      "readWritePaths": list(hd.read_write_paths)} if hd else None,
        "dataDir": h.data_dir,
        "binary": {"path": b.path, "present": b.present, "sha256": b.sha256, "version": b.version,
                   "expectedVersion": b.expected_version, "expectedSha256": b.expected_sha256} if b else None,
        "user": dict(h.user),
        "listening": [dict(x) for x in h.listening],
        "firewall": dict(h.firewall),
    }


_NO_STORAGE = {"measured": False, "encrypted": None, "detail": "the provider reported no storage facts"}
_NO_CONTAINER = ContainerFacts(present=False)


def node_facts(plan: NetworkPlan, status: NodeStatus, now_ns: int,
               storage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    n = plan.node(status.name)
    c = status.container or _NO_CONTAINER
    running = status.state == "running"
    rpc = _rpc(status.rpc or _rpc_from_status(status), now_ns)
    image = c.image
    reported = status.facts.get("image")
    if status.container is None and isinstance(reported, list | tuple) and reported:
        image = ImageFacts(reference=reported[0])  # providers that report only the image reference
    res = c.resources or ResourceLimits()
    return {
        "name": status.name,
        "org": status.org,
        "role": status.role,
        "resource": status.resource,
        "path": n.node.path,
        "expected": {
            "image": n.node.image,
            "nodeId": n.keys.node_id,
            "validatorAddress": n.keys.validator_address,
            "power": n.node.power,
            "storageEncrypted": n.node.storage.encrypted,
        },
        "present": status.present,
        "state": status.state or "absent",
        "health": status.health,
        "running": running,
        "up": running and rpc["reachable"],
        "restartCount": c.restart_count,
        "image": _image(image),
        "user": c.user,
        "uid": _uid(c.user),
        "readOnlyRootFs": c.read_only_rootfs,  # null where the provider does not say
        "privileged": c.privileged,
        "capDrop": sorted(c.cap_drop),
        "capAdd": sorted(c.cap_add),
        "noNewPrivileges": c.no_new_privileges,
        "mounts": [{"type": m.type, "name": m.name, "destination": m.destination, "rw": m.rw} for m in c.mounts],
        "keyFiles": _files(c.key_files),
        "ports": _ports(c.ports),
        "resources": {"memoryBytes": res.memory_bytes, "nanoCpus": res.nano_cpus, "pidsLimit": res.pids_limit},
        "labels": dict(c.labels),
        "rpc": rpc,
        "storage": dict(storage or _NO_STORAGE),  # where its data lives and whether that is encrypted
        # what only a host has (its unit and hardening, binary, firewall; policies/runtime/host.rego)
        **({"host": _host(status.host)} if status.host is not None else {}),
    }


def _undeclared(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": raw.get("kind", "container"),
        "name": raw.get("name", ""),
        "id": raw.get("id", ""),
        "node": raw.get("node"),
        "state": raw.get("state"),
        "labels": dict(raw.get("labels") or {}),
        "image": (raw.get("image") or {}).get("reference")
        if isinstance(raw.get("image"), Mapping)
        else raw.get("image"),
        "ports": _ports(port_bindings(raw.get("published_ports"))),
    }


def chain_reads(obs: Observation) -> dict[str, Any]:
    """Validator set (and the node it was read from) and recent commit signers: the provider's chain-level
    read (``facts["chain"]``, one node per observation) or, from providers that report them per node, the
    highest node's validator set and the distinct last commits the nodes report."""
    raw = obs.facts.get("chain")
    if isinstance(raw, Mapping):
        validators = list(raw.get("validators") or ())
        source = raw.get("source") if validators else None
        commits = {int(c["height"]): sorted(c.get("signers") or ()) for c in raw.get("commits") or ()}
    else:
        live = [(s.name, s.rpc) for s in obs.nodes if s.rpc is not None and s.rpc.reachable]
        best = max((x for x in live if x[1].validators), key=lambda x: x[1].height or 0, default=None)
        source = best[0] if best else None
        validators = [{"address": v.address, "power": v.power} for v in best[1].validators] if best else []
        commits = {r.last_commit.height: sorted(r.last_commit.signers) for _, r in live if r.last_commit}
    return {
        # an empty list means "not read" (a chain always has a validator)
        "validatorSet": sorted(validators, key=lambda v: v.get("address", "")),
        "validatorSetFrom": source,
        "recentCommits": [{"height": h, "signers": s} for h, s in sorted(commits.items())],
    }


def _chain(
    plan: NetworkPlan,
    nodes: Sequence[Mapping[str, Any]],
    reads: Mapping[str, Any],
    previous: Previous | None,
    now_ns: int,
) -> dict[str, Any]:
    interval = _ns(plan.consortium.spec.chain.block_interval)
    live = [n["rpc"] for n in nodes if n["rpc"]["reachable"]]
    heights = [r["height"] for r in live if isinstance(r["height"], int)]
    ages = [r["latestBlockAgeNs"] for r in live if isinstance(r["latestBlockAgeNs"], int)]
    height = max(heights) if heights else None
    elapsed = now_ns - previous.time_ns if previous else None
    advanced = None
    if previous is not None and previous.height is not None and height is not None:
        advanced = height > previous.height
    return {
        "height": height,
        "reachableNodes": len(live),
        "blockIntervalNs": interval,
        "stallAfterNs": STALL_INTERVALS * interval + FAILED_ROUND_NS,
        "blockAgeLimitNs": STALL_INTERVALS * interval + FAILED_ROUND_NS + BLOCK_AGE_ALLOWANCE_NS,
        "latestBlockAgeNs": min(ages) if ages else None,
        "previous": {"sweepId": previous.sweep_id, "height": previous.height, "elapsedNs": elapsed}
        if previous
        else None,
        "heightAdvanced": advanced,
        **reads,
    }


def build_facts(
    plan: NetworkPlan,
    obs: Observation,
    *,
    sweep_id: str,
    now: dt.datetime,
    environment: str | None = None,
    previous: Previous | None = None,
    audit_log: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fact document of one sweep (see policies/runtime/README.md); ``extra`` adds the sections the sweep
    measures itself (``phi``, ``attestations``)."""
    c = plan.consortium
    now_ns = int(now.timestamp() * 1_000_000) * 1000
    by_name = {s.name: s for s in obs.nodes}
    storage = obs.facts.get("storage") or {}
    nodes = [node_facts(plan, by_name[n.name], now_ns, storage.get(n.name)) for n in plan.nodes
             if n.name in by_name]
    for n in nodes:
        n["image"]["previousId"] = previous.image_ids.get(n["name"]) if previous else None
    pin = IMAGE_REF.match(c.spec.chain.image)
    return {
        "apiVersion": "hcops/v1alpha1",
        "kind": "AuditFacts",
        "network": plan.name,
        "environment": environment,
        "tier": plan.loaded.tier.value if plan.loaded.tier else None,
        "provider": obs.facts.get("provider"),
        "sweep": {
            "id": sweep_id,
            "time": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "timeNs": now_ns,
        },
        "spec": {
            "chainId": c.spec.chain.chain_id,
            "image": c.spec.chain.image,
            "imageDigest": pin.group("digest") if pin else None,
            "rpc": {"exposure": c.spec.network.rpc.exposure.value, "tls": c.spec.network.rpc.tls},
            "data": {"phiOnChain": c.spec.data.phi_on_chain, "txIndex": c.spec.data.tx_index},
            "audit": {
                "enabled": c.spec.audit.enabled,
                "intervalNs": _ns(c.spec.audit.interval),
                "retentionDays": c.spec.audit.retention_days,
                "anchorToChain": c.spec.audit.anchor_to_chain,
            },
            "validators": [
                {
                    "name": n.name,
                    "org": n.node.org,
                    "address": n.keys.validator_address,
                    "pubKey": n.keys.validator_pub_key,
                    "power": n.node.power,
                }
                for n in plan.members  # with --org, every member's: the validator set is the consortium's
                if n.node.is_validator
            ],
            "nodeIds": {n.name: n.keys.node_id for n in plan.members},
        },
        "nodes": nodes,
        "undeclared": [_undeclared(u) for u in obs.undeclared],
        "chain": _chain(plan, nodes, chain_reads(obs), previous, now_ns),
        "audit": _audit(c.spec.audit.interval, previous, now_ns, audit_log),
        "phi": {"policy": c.spec.data.phi_on_chain, "hits": [], "complete": False, "error": "not scanned"},
        "attestations": {"active": [], "expired": []},
        **(extra or {}),
    }


def _audit(
    interval: dt.timedelta, previous: Previous | None, now_ns: int, audit_log: Mapping[str, Any] | None
) -> dict[str, Any]:
    log = dict(audit_log or {})
    return {
        "intervalNs": _ns(interval),
        "overdueAfterNs": OVERDUE_INTERVALS * _ns(interval),
        "previousSweepId": previous.sweep_id if previous else None,
        "previousSweepAgeNs": now_ns - previous.time_ns if previous else None,
        "logIntact": bool(log.get("intact", True)),
        "logBreak": log.get("break"),
    }


def summary(facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the sweep record keeps for the next sweep and what ``nodes`` shows: never secrets."""
    return {
        "id": facts["sweep"]["id"],
        "timeNs": facts["sweep"]["timeNs"],
        "chain": {"height": facts["chain"]["height"], "reachableNodes": facts["chain"]["reachableNodes"]},
        "imageIds": {n["name"]: n["image"]["id"] for n in facts["nodes"] if n["image"]["id"]},
    }


def nodes_summary(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": n["name"],
            "org": n["org"],
            "role": n["role"],
            "resource": n["resource"],
            "state": n["state"],
            "health": n["health"],
            "up": n["up"],
            "height": n["rpc"]["height"],
            "catchingUp": n["rpc"]["catchingUp"],
            "peers": len(n["rpc"]["peers"]),
            "image": n["image"]["reference"],
            "imageId": n["image"]["id"],
            "restartCount": n["restartCount"],
            "nodeId": n["rpc"]["nodeId"],
            "storage": {k: (n.get("storage") or {}).get(k) for k in ("measured", "encrypted", "method", "detail")},
        }
        for n in facts["nodes"]
    ]
