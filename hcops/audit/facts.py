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
from hcops.spec.types import IMAGE_REF

STALL_INTERVALS = 3  # the chain must advance within 3 x blockInterval
# A block's BFT time is when its predecessor was committed, and nodes are read while the sweep runs: the
# newest block's age gets this allowance on top of 3 x blockInterval.
BLOCK_AGE_ALLOWANCE_NS = 2_000_000_000
OVERDUE_INTERVALS = 2  # the audit must run within 2 x audit.interval
_SERVICES = {RPC_PORT: "rpc", P2P_PORT: "p2p", METRICS_PORT: "metrics"}
_FILE_KEYS = ("mode", "uid", "gid", "error")


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


def _ports(published: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, binds in sorted((published or {}).items()):
        port_text, _, proto = str(key).partition("/")
        port = int(port_text) if port_text.isdigit() else 0
        for b in binds or ():
            out.append(
                {
                    "containerPort": port,
                    "protocol": proto or "tcp",
                    "service": _SERVICES.get(port, "other"),
                    "hostIp": b.get("host_ip") or "0.0.0.0",
                    "hostPort": str(b.get("host_port") or ""),
                }
            )
    return out


def _image(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    raw = raw or {}
    return {
        "reference": raw.get("reference") or "",
        "id": raw.get("id") or "",
        "repoDigests": sorted(raw.get("repo_digests") or ()),
    }


def _files(raw: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"path": path, "present": "mode" in (meta or {}), **{k: (meta or {}).get(k) for k in _FILE_KEYS}}
            for path, meta in sorted((raw or {}).items())]


def _rpc(raw: Mapping[str, Any] | None, now_ns: int) -> dict[str, Any]:
    raw = raw or {}
    block_ns = parse_rfc3339_ns(raw.get("latest_block_time"))
    return {
        "reachable": bool(raw.get("reachable")),
        "error": raw.get("error"),
        "nodeId": raw.get("node_id"),
        "validatorAddress": raw.get("validator_address"),
        "chainId": raw.get("chain_id"),
        "version": raw.get("version"),
        "height": raw.get("height"),
        "catchingUp": raw.get("catching_up"),
        "latestBlockTime": raw.get("latest_block_time"),
        "latestBlockAgeNs": (now_ns - block_ns) if block_ns is not None else None,
        "peers": sorted(raw.get("peers") or ()),
        **({"tls": raw["tls"]} if raw.get("tls") is not None else {}),  # TS-2, camelCase (providers.tls)
    }


def _flag(facts: Mapping[str, Any], key: str) -> bool | None:
    return bool(facts[key]) if key in facts else None


def _rpc_from_status(status: NodeStatus) -> dict[str, Any]:
    """Providers without detailed RPC facts still fill the NodeStatus fields from /status."""
    if status.height is None:
        return {"reachable": False, "error": "no RPC facts reported"}
    return {
        "reachable": True,
        "height": status.height,
        "catching_up": status.catching_up,
        "latest_block_time": status.last_block_time,
        "voting_power": status.voting_power,
    }


_NO_STORAGE = {"measured": False, "encrypted": None, "detail": "the provider reported no storage facts"}


def node_facts(plan: NetworkPlan, status: NodeStatus, now_ns: int,
               storage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    n = plan.node(status.name)
    c: Mapping[str, Any] = status.facts.get("container") or {}
    running = status.state == "running"
    rpc = _rpc(status.facts.get("rpc") or _rpc_from_status(status), now_ns)
    image = c.get("image")
    if not c and isinstance(status.facts.get("image"), list | tuple) and status.facts["image"]:
        image = {"reference": status.facts["image"][0]}  # providers that report only the image reference
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
        "restartCount": c.get("restart_count", 0),
        "image": _image(image),
        "user": c.get("user", ""),
        "uid": _uid(c.get("user")),
        "readOnlyRootFs": _flag(c, "read_only_rootfs"),  # null where the provider does not say
        "privileged": _flag(c, "privileged"),
        "capDrop": sorted(c.get("cap_drop") or ()),
        "capAdd": sorted(c.get("cap_add") or ()),
        "noNewPrivileges": _flag(c, "no_new_privileges"),
        "mounts": [
            {
                "type": m.get("type"),
                "name": m.get("name"),
                "destination": m.get("destination"),
                "rw": m.get("rw"),
            }
            for m in c.get("mounts") or ()
        ],
        "keyFiles": _files(c.get("key_files")),
        "ports": _ports(c.get("published_ports")),
        "resources": {
            "memoryBytes": (c.get("resources") or {}).get("memory_bytes"),
            "nanoCpus": (c.get("resources") or {}).get("nano_cpus"),
            "pidsLimit": (c.get("resources") or {}).get("pids_limit"),
        },
        "labels": dict(c.get("labels") or {}),
        "rpc": rpc,
        "storage": dict(storage or _NO_STORAGE),  # where its data lives and whether that is encrypted
        # what only a host has (its unit and hardening, binary, firewall; policies/runtime/host.rego)
        **({"host": dict(status.facts["host"])} if isinstance(status.facts.get("host"), Mapping) else {}),
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
        "ports": _ports(raw.get("published_ports")),
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
        live = [(s.name, s.facts.get("rpc") or {}) for s in obs.nodes]
        live = [(name, r) for name, r in live if r.get("reachable")]
        best = max((x for x in live if x[1].get("validators")), key=lambda x: x[1].get("height") or 0,
                   default=None)
        source, validators = (best[0], list(best[1]["validators"])) if best else (None, [])
        commits = {int(r["last_commit"]["height"]): sorted(r["last_commit"].get("signers") or ())
                   for _, r in live if r.get("last_commit")}
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
        "stallAfterNs": STALL_INTERVALS * interval,
        "blockAgeLimitNs": STALL_INTERVALS * interval + BLOCK_AGE_ALLOWANCE_NS,
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
                for n in plan.nodes
                if n.node.is_validator
            ],
            "nodeIds": {n.name: n.keys.node_id for n in plan.nodes},
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
