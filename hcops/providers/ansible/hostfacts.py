"""A host's facts (the role's ``hcops_host_facts`` module) as the typed facts the audit reads.

Two views of the same facts:

* ``ContainerFacts``: what the Docker provider fills (hcops.audit.facts reads it for every provider), where
  they mean the same on a host: the user the node runs as, key file modes and owners, sockets listening
  beyond loopback as "published" ports, ``ProtectSystem=strict`` as a read-only root file system,
  ``NoNewPrivileges``, an empty capability bounding set as "cap_drop ALL". So the runtime rules on those
  (HC-RT-AC1-RPC-EXPOSED, HC-RT-AC5-KEY-FILE-*, HC-RT-IN1-ROOTFS-WRITABLE) apply unchanged.
* ``HostFacts``: what only a host has (the unit and all of its hardening, the binary's digest and version, the
  firewall as it is loaded), for policies/runtime/host.rego.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hcops.plan.cometbft import METRICS_PORT, P2P_PORT, RPC_PORT
from hcops.providers.facts import (
    BinaryFacts,
    ContainerFacts,
    Hardening,
    HostFacts,
    ImageFacts,
    KeyFile,
    UnitFacts,
    port_bindings,
)

PORTS = {"rpc": RPC_PORT, "p2p": P2P_PORT, "metrics": METRICS_PORT}


def node_state(unit: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(present, state): present when hcops' unit is installed; "running" as the Docker provider says it."""
    if not unit or not unit.get("installed"):
        return False, "absent"
    if unit.get("active_state") == "active" and unit.get("sub_state") == "running":
        return True, "running"
    return True, str(unit.get("sub_state") or unit.get("active_state") or "unknown")


def container_view(facts: Mapping[str, Any], unit_name: str) -> ContainerFacts:
    unit = facts.get("unit") or {}
    hardening = unit.get("hardening") or {}
    user = facts.get("user") or {}
    runs_as = hardening.get("user") or "root"
    uid = user.get("uid") if user.get("exists") and user.get("name") == runs_as else (0 if runs_as == "root"
                                                                                        else None)
    caps = list(hardening.get("capability_bounding_set") or ())
    published: dict[str, list[dict[str, Any]]] = {}
    for s in facts.get("listening") or ():
        published.setdefault(f"{s['port']}/tcp", []).append({"host_ip": s["address"],
                                                             "host_port": str(s["port"])})
    present, state = node_state(unit)
    sha = (facts.get("binary") or {}).get("sha256")
    return ContainerFacts(
        present=present,
        # No image on a host: the binary's digest is the running content (the audit's "image content read").
        image=ImageFacts(reference="", id=f"sha256:{sha}" if sha else ""),
        name=unit_name,
        state=state,
        restart_count=unit.get("n_restarts", 0),
        user=f"{uid}:{user.get('gid')}" if isinstance(uid, int) and user.get("exists") else runs_as,
        # Without hardening facts these read as False (not unknown), as the fact document has always had them.
        read_only_rootfs=hardening.get("protect_system") == "strict",
        no_new_privileges=bool(hardening.get("no_new_privileges")),
        cap_drop=("ALL",) if hardening and not caps else (),
        cap_add=tuple(c.upper() for c in hardening.get("ambient_capabilities") or ()),
        privileged=bool(hardening) and uid == 0,
        ports=port_bindings(published),
        key_files={p: KeyFile.of(meta) for p, meta in (facts.get("key_files") or {}).items()},
    )


def _matches(expr: Sequence[Mapping[str, Any]]) -> tuple[set[int] | None, list[str], str | None, bool]:
    """(ports, sources, verdict, understood) of one nftables rule in ``nft -j`` form."""
    ports: set[int] | None = None
    sources: list[str] = []
    verdict: str | None = None
    understood = True
    for e in expr:
        if "match" in e:
            m = e["match"]
            left, right = m.get("left") or {}, m.get("right")
            if m.get("op", "==") not in ("==", "in"):
                understood = False
            elif (left.get("payload") or {}).get("field") == "dport":
                values = (right.get("set") if isinstance(right, Mapping) else [right]) or []
                ports = {v for v in values if isinstance(v, int)}
            elif (left.get("meta") or {}).get("key") in ("iif", "iifname") and right == "lo":
                sources.append("loopback")
            elif (left.get("payload") or {}).get("field") == "saddr":
                if isinstance(right, Mapping) and "prefix" in right:
                    p = right["prefix"]
                    sources.append(f"{p.get('addr')}/{p.get('len')}")
                else:
                    sources.append(str(right))
            else:
                understood = False
        elif "accept" in e:
            verdict = "accept"
        elif "drop" in e or "reject" in e:
            verdict = "drop"
        elif "counter" not in e:
            understood = False
    return ports, sources, verdict, understood


def port_access(nft: Sequence[Mapping[str, Any]], port: int) -> dict[str, Any]:
    """Who the table lets reach ``port``: {"reach": "loopback" | "listed" | "any" | "unknown", "allowed":
    sources accepted before the rule that drops the rest}. Only this table's input chains are read."""
    sets = {o["set"]["name"]: list(o["set"].get("elem") or ()) for o in nft if "set" in o}
    chains = {o["chain"]["name"] for o in nft if "chain" in o and o["chain"].get("hook") == "input"}
    allowed: list[str] = []
    for o in nft:
        rule = o.get("rule")
        if not rule or rule.get("chain") not in chains:
            continue
        ports, sources, verdict, understood = _matches(rule.get("expr") or ())
        if ports is not None and port not in ports:
            continue
        if not understood:
            return {"reach": "unknown", "allowed": allowed}
        if verdict == "accept":
            if not sources:
                return {"reach": "any", "allowed": [*allowed, "any"]}
            allowed += sources
        elif verdict == "drop" and not sources:
            addresses = [a for s in allowed if s.startswith("@") for a in sets.get(s[1:], [])]
            listed = [s for s in allowed if s != "loopback" and not s.startswith("@")] + addresses
            return {"reach": "listed" if listed else "loopback",
                    "allowed": sorted({"loopback" for s in allowed if s == "loopback"} | {str(a) for a in listed})}
    return {"reach": "any", "allowed": [*allowed, "any"]}


def firewall_view(facts: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    fw = facts.get("firewall") or {}
    unit = facts.get("firewall_unit") or {}
    out: dict[str, Any] = {"enabled": enabled, "table": fw.get("table"), "present": bool(fw.get("present")),
                           "unitActive": unit.get("active_state") == "active",
                           "unitEnabled": unit.get("unit_file_state") == "enabled"}
    if fw.get("present"):
        nft = fw.get("nftables") or []
        out.update({name: port_access(nft, port) for name, port in PORTS.items()})
    return out


def host_view(facts: Mapping[str, Any], *, firewall: bool, data_dir: str, expected_version: str,
              expected_sha256: str | None) -> HostFacts:
    unit = facts.get("unit") or {}
    h = unit.get("hardening") or {}
    binary = facts.get("binary") or {}
    return HostFacts(
        unit=UnitFacts(name=unit.get("name"), installed=bool(unit.get("installed")),
                       active_state=unit.get("active_state"), sub_state=unit.get("sub_state"),
                       enabled=unit.get("unit_file_state") == "enabled", restarts=unit.get("n_restarts", 0),
                       drop_ins=tuple(unit.get("drop_in_paths") or ()),
                       restart_pending=bool(facts.get("restart_pending"))),
        hardening=Hardening(user=h.get("user"), no_new_privileges=h.get("no_new_privileges"),
                            protect_system=h.get("protect_system"), protect_home=h.get("protect_home"),
                            private_tmp=h.get("private_tmp"), private_devices=h.get("private_devices"),
                            capability_bounding_set=tuple(h.get("capability_bounding_set") or ()),
                            ambient_capabilities=tuple(h.get("ambient_capabilities") or ()),
                            read_write_paths=tuple(h.get("read_write_paths") or ())) if h else None,
        data_dir=data_dir,
        binary=BinaryFacts(path=binary.get("path"), present=bool(binary.get("present")),
                           sha256=binary.get("sha256"), version=binary.get("version"),
                           expected_version=expected_version, expected_sha256=expected_sha256),
        user=dict(facts.get("user") or {}),
        listening=tuple(facts.get("listening") or ()),
        firewall=firewall_view(facts, firewall),
    )
