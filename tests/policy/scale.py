"""Scale a policy input document to many nodes (for speed checks): every organization's nodes,
docker services and Kubernetes objects are cloned under new names."""

from __future__ import annotations

import copy
import json
import re
from typing import Any


def _rename(value: Any, old: str, new: str) -> Any:
    pattern = re.compile(re.escape(old) + r"(?![0-9])")
    return json.loads(pattern.sub(new, json.dumps(value)))


def scale_input(doc: dict[str, Any], nodes: int) -> dict[str, Any]:
    """A copy of ``doc`` with about ``nodes`` nodes, spread evenly over its organizations."""
    out = copy.deepcopy(doc)
    base_nodes = doc["nodes"]
    per_base = max(1, nodes // len(base_nodes))
    new_nodes: list[dict[str, Any]] = []
    services: dict[str, Any] = {}
    k8s: list[dict[str, Any]] = [o for o in doc["manifests"].get("kubernetes", [])
                                 if o["kind"] == "NetworkPolicy"]
    spec_orgs = out["spec"]["organizations"]
    for base in base_nodes:
        org_index = next(i for i, o in enumerate(spec_orgs) if o["name"] == base["org"])
        spec_orgs[org_index]["nodes"] = []
        for k in range(per_base):
            name = re.sub(r"-0$", f"-{k}", base["name"]) if k else base["name"]
            node = _rename(base, base["name"], name)
            node["path"] = f"spec.organizations[{org_index}].nodes[{k}]"
            new_nodes.append(node)
            services[name] = _rename(doc["manifests"]["docker"]["services"][base["name"]], base["name"], name)
            for obj in doc["manifests"].get("kubernetes", []):
                if obj["kind"] != "NetworkPolicy" and obj["metadata"]["name"].startswith(base["name"]):
                    k8s.append(_rename(obj, base["name"], name))
    for i, org in enumerate(spec_orgs):
        org["nodes"] = [
            {**next(n for n in doc["spec"]["organizations"][i]["nodes"]), "name": n["name"]}
            for n in new_nodes if n["org"] == org["name"]
        ]
    for org in out["organizations"]:
        mine = [n for n in new_nodes if n["org"] == org["name"]]
        org["nodeCount"] = len(mine)
        org["validators"] = sum(1 for n in mine if n["role"] == "validator")
        org["votingPower"] = sum(n["power"] for n in mine)
    validators = [n for n in new_nodes if n["role"] == "validator"]
    out["chain"] = {
        "validators": len(validators),
        "totalPower": sum(n["power"] for n in validators),
        "organizationsWithValidators": len({n["org"] for n in validators}),
    }
    out["nodes"] = new_nodes
    out["manifests"]["docker"]["services"] = services
    out["manifests"]["kubernetes"] = k8s
    return out
