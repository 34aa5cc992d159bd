"""Evidence classes: how each control of the catalogue is known.

* **verified**: a sweep measured it on the running network (its evidence records say "measured" for every
  node) and, where gate rules judge it, the gate judged the spec that sweep audited;
* **attested**: a person stated it in an attestation that is signed off and unexpired;
* **declared**: only the spec says so (gate rules over the spec, nothing measured);
* **none**: nothing speaks for it.

A control is as strong as its weakest part (``catalogue.yaml`` ``parts``). Only the sweep's evidence
records make a part verified: they are computed here from the fact document (``records``), written into
every sweep record of the audit log, and read back by the report and the metrics. A measurement hcops
does not make yet can be listed in ``PENDING``: its parts stay declared until a probe of that name is
added to ``PROBES``, and nothing else has to change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcops.audit import catalogue
from hcops.audit.catalogue import EVIDENCE_CLASSES, Control, Part

Record = dict[str, Any]  # {"measured": bool, "detail": str}
PENDING: dict[str, str] = {}


def _record(measured: bool, detail: str) -> Record:
    return {"measured": bool(measured), "detail": detail}


def _count(nodes: Sequence[Mapping[str, Any]], ok: Callable[[Mapping[str, Any]], bool], what: str) -> Record:
    good = sum(1 for n in nodes if ok(n))
    missing = sorted(n["name"] for n in nodes if not ok(n))
    detail = f"{what}: {good}/{len(nodes)} nodes"
    if missing:
        detail += " (not: " + ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "") + ")"
    return _record(bool(nodes) and good == len(nodes), detail)


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "[::1]", "localhost")


def _ports(doc: Mapping[str, Any]) -> Record:
    return _count(doc["nodes"], lambda n: bool(n.get("present")), "published ports read")


def _identity(doc: Mapping[str, Any]) -> Record:
    return _count(doc["nodes"], lambda n: n["rpc"]["reachable"] and isinstance(n["rpc"].get("nodeId"), str),
                  "node identity read over RPC")


def _key_files(doc: Mapping[str, Any]) -> Record:
    def ok(n: Mapping[str, Any]) -> bool:
        files = n.get("keyFiles") or []
        return any(k.get("present") for k in files) and not any(k.get("error") for k in files)

    return _count(doc["nodes"], ok, "key file modes and owners read")


def _image(doc: Mapping[str, Any]) -> Record:
    return _count(doc["nodes"], lambda n: bool(n["image"].get("id")), "running image content read")


def _peers(doc: Mapping[str, Any]) -> Record:
    return _count(doc["nodes"], lambda n: bool(n["rpc"]["reachable"]), "connected peers read")


def _liveness(doc: Mapping[str, Any]) -> Record:
    chain = doc["chain"]
    up = sum(1 for n in doc["nodes"] if n.get("present"))
    ok = isinstance(chain.get("height"), int)
    return _record(ok, f"chain height {chain.get('height')} read from {chain.get('reachableNodes', 0)} node(s); "
                       f"{up}/{len(doc['nodes'])} nodes found")


def _validator_set(doc: Mapping[str, Any]) -> Record:
    chain = doc["chain"]
    src, commits = chain.get("validatorSetFrom"), chain.get("recentCommits") or []
    return _record(isinstance(src, str) and bool(commits),
                   f"validator set and {len(commits)} recent commit(s) read from {src or 'no node'}")


def _audit_log(doc: Mapping[str, Any]) -> Record:
    a = doc["audit"]
    return _record(True, "hash chain verified before the sweep: " + ("intact" if a.get("logIntact") else "BROKEN"))


def _cadence(doc: Mapping[str, Any]) -> Record:
    age = doc["audit"].get("previousSweepAgeNs")
    return _record(isinstance(age, int), "previous sweep " + (f"{age / 1e9:.0f}s before" if isinstance(age, int)
                                                               else "not recorded yet (first sweep)"))


def _inventory(doc: Mapping[str, Any]) -> Record:
    return _record(True, f"objects with the network's labels listed: {len(doc['undeclared'])} undeclared")


def _waivers(doc: Mapping[str, Any]) -> Record:
    return _record(True, "waivers checked against the sweep's date")


def _phi(doc: Mapping[str, Any]) -> Record:
    p = doc.get("phi") or {}
    s = p.get("scanned") or {}
    if p.get("coveredTo") is None:
        return _record(False, f"no block read yet ({p.get('error') or 'no node answered'})")
    detail = (f"heights {p.get('coveredFrom')}-{p.get('coveredTo')} read"
              f"{' from the first block' if p.get('fromStart') else ''}; this sweep {s.get('blocks', 0)} "
              f"block(s), {s.get('txs', 0)} transaction(s); {p.get('hitsTotal', 0)} hit(s)")
    if not p.get("caughtUp"):
        detail += f"; behind the head ({p.get('head')})"
    if p.get("error"):
        detail += f"; stopped: {p['error']}"
    return _record(bool(p.get("complete")), detail)


def _storage(doc: Mapping[str, Any]) -> Record:
    nodes = doc["nodes"]
    rec = _count(nodes, lambda n: (n.get("storage") or {}).get("encrypted") is True, "storage measured encrypted")
    methods = sorted({str((n.get("storage") or {}).get("method")) for n in nodes
                      if (n.get("storage") or {}).get("encrypted") is True})
    if methods:
        rec["detail"] += f" ({', '.join(methods)})"
    return rec


def _rpc_transport(doc: Mapping[str, Any]) -> Record:
    """Verified when no RPC leaves the host, or every node that publishes it beyond the host completed a TLS
    handshake that verified against the network CA and refused plain HTTP (nodes[].rpc.tls)."""
    exposed = sorted({n["name"] for n in doc["nodes"] for p in n.get("ports") or ()
                      if p.get("service") == "rpc" and not _loopback(str(p.get("hostIp")))})
    if not exposed:  # nothing leaves the host: there is no transmission to encrypt
        rec = _ports(doc)
        return _record(rec["measured"], "RPC published on loopback only; " + rec["detail"])
    tls = {n["name"]: (n["rpc"].get("tls") or {}) for n in doc["nodes"]}
    bad = [name for name in exposed if not (tls[name].get("verified") is True
                                            and tls[name].get("plaintextRefused") is True)]
    if bad:
        return _record(False, f"RPC published beyond the host without a verified TLS handshake: {', '.join(bad[:5])}")
    return _record(True, f"TLS verified against the network CA, plain HTTP refused, on {len(exposed)} published RPC")


def _backups(doc: Mapping[str, Any]) -> Record:
    """Measured when the last successful backup is within twice the schedule's interval and every retained
    archive still verifies against its recorded digest (the sweep re-hashes them: hcops.backup.evidence)."""
    b = doc.get("backup") or {}
    if not b.get("enabled"):
        return _record(False, "backups are not enabled in the spec")
    last, overdue = b.get("lastSuccess"), b.get("overdueAfterNs")
    if not last:
        return _record(False, "no successful backup recorded yet")
    archives = b.get("archives") or []
    bad = [a["id"] for a in archives if a.get("verified") is not True]
    detail = (f"last backup {last.get('id')} of {last.get('node')} at height {last.get('height')}, "
              f"{last.get('ageNs', 0) / 3.6e12:.1f} h ago; {len(archives) - len(bad)}/{len(archives)} "
              "retained archive(s) verified")
    if bad:
        detail += " (not: " + ", ".join(bad[:5]) + ")"
    recent = isinstance(overdue, int) and last.get("ageNs", overdue + 1) <= overdue
    if not recent:
        detail += "; overdue"
    return _record(recent and not bad, detail)


def _restore_drill(doc: Mapping[str, Any]) -> Record:
    d = (doc.get("backup") or {}).get("drill") or {}
    last = d.get("lastSuccess")
    if not last:
        return _record(False, "no successful restore drill recorded")
    age, limit = last.get("ageNs", 0), d.get("maxAgeNs")
    within = isinstance(limit, int) and age <= limit
    return _record(within, f"last successful drill {age / 8.64e13:.1f} days ago (backup {last.get('backupId')})"
                   + ("" if within else "; older than allowed"))


PROBES: Mapping[str, Callable[[Mapping[str, Any]], Record]] = {
    "ports": _ports, "identity": _identity, "keyFiles": _key_files, "image": _image, "peers": _peers,
    "liveness": _liveness, "validatorSet": _validator_set, "auditLog": _audit_log, "sweepCadence": _cadence,
    "inventory": _inventory, "waivers": _waivers, "phi": _phi, "storageEncryption": _storage,
    "rpcTransport": _rpc_transport, "backups": _backups, "restoreDrill": _restore_drill,
}


def records(doc: Mapping[str, Any]) -> dict[str, Record]:
    """The sweep's evidence records, one per probe, from its fact document."""
    return {name: probe(doc) for name, probe in PROBES.items()}


# ------------------------------------------------------------------------------------ classes
@dataclass(frozen=True)
class Basis:
    """What the classes are computed from."""

    records: Mapping[str, Record] | None  # the last sweep's, None: no usable sweep
    gate_judged: bool  # the gate judged the spec the sweep audited
    attested: Collection[str] = ()  # controls with an attestation in effect
    tier: str | None = None
    sweep_note: str = ""  # why the records are not used, when they are not


@dataclass(frozen=True)
class PartEvidence:
    part: Part
    evidence: str
    detail: tuple[str, ...]
    gate_rules: tuple[str, ...] = ()
    runtime_rules: tuple[str, ...] = ()

    @property
    def meets_production(self) -> bool:
        return not self.part.production or self.evidence in self.part.production

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part.id, "what": self.part.what, "evidence": self.evidence, "detail": list(self.detail),
                "gateRules": list(self.gate_rules), "runtimeRules": list(self.runtime_rules),
                "measures": list(self.part.measures), "attestable": self.part.attestable,
                "production": list(self.part.production)}


def classify_part(part: Part, basis: Basis, control_id: str, gate_ids: Collection[str] = (),
                  runtime_ids: Collection[str] = ()) -> PartEvidence:
    gate = tuple(part.judges(gate_ids, part.gate_rules))
    runtime = tuple(part.judges(runtime_ids, part.runtime_rules))
    detail: list[str] = []
    measured = bool(part.measures)
    for name in part.measures:
        rec = (basis.records or {}).get(name)
        if name in PENDING:
            detail.append(f"{name}: {PENDING[name]}")
            measured = False
        elif rec is None:
            detail.append(f"{name}: {basis.sweep_note or 'no audit sweep recorded'}")
            measured = False
        else:
            detail.append(f"{name}: {rec['detail']}")
            measured = measured and bool(rec["measured"])
    judged = not part.gate_rules or basis.gate_judged
    if part.measures and measured and not judged:
        detail.append("the gate has not judged the spec this sweep audited")
    if measured and judged:
        cls = "verified"
    elif part.attestable and control_id in basis.attested:
        cls = "attested"
        detail.append(f"attested (attestation of {control_id} in effect)")
    elif part.gate_rules:
        cls = "declared"
        detail.append("declared in the spec, judged by the gate" if basis.gate_judged else "declared in the spec")
    else:
        cls = "none"
        detail.append("nothing measures it" + ("; no attestation in effect" if part.attestable else ""))
    return PartEvidence(part, cls, tuple(detail), gate, runtime)


def weakest(classes: Sequence[str]) -> str:
    return max(classes, key=EVIDENCE_CLASSES.index) if classes else "none"


def classify(control: Control, basis: Basis, gate_ids: Collection[str] = (),
             runtime_ids: Collection[str] = ()) -> tuple[str, list[PartEvidence]]:
    parts = [classify_part(p, basis, control.id, gate_ids, runtime_ids) for p in control.parts]
    return weakest([p.evidence for p in parts]), parts


def production_gaps(parts: Sequence[PartEvidence], tier: str | None) -> list[str]:
    """Parts whose evidence the production tier does not accept (a declared-only storage encryption)."""
    if tier != "production":
        return []
    return [f"production requires {' or '.join(p.part.production)} evidence for {p.part.id}, it is {p.evidence}"
            for p in parts if not p.meets_production]


def control_classes(basis: Basis) -> dict[str, str]:
    """Control id -> evidence class (the metrics' view: no rule lists needed)."""
    return {c.id: classify(c, basis)[0] for c in catalogue.controls()}
