"""Semantic checks that span fields: names, validator set, consensus sanity."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction

from hcops.errors import Diagnostic
from hcops.spec.models import Consortium, NodeRole, Tier, effective_tier
from hcops.spec.providers.docker import addresses_needed
from hcops.spec.source import SourceMap

BFT_MIN_VALIDATORS = 4
# A StatefulSet's pods carry a controller-revision-hash label "<name>-<10 chars>", limited to 63 characters.
K8S_STATEFULSET_NAME_MAX = 52


def _diag(sources: SourceMap, path: str, message: str, severity: str = "error") -> Diagnostic:
    from hcops.spec.paths import parse_path

    return Diagnostic(message, path=path, location=sources.locate(parse_path(path)), severity=severity)


def _names(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    orgs = Counter(o.name for o in c.spec.organizations)
    nodes = Counter(n.name for o in c.spec.organizations for n in o.nodes)
    seen_orgs: set[str] = set()
    seen_nodes: set[str] = set()
    for oi, org in enumerate(c.spec.organizations):
        if orgs[org.name] > 1 and org.name in seen_orgs:
            yield _diag(sources, f"spec.organizations[{oi}].name",
                        f'duplicate organization name "{org.name}"; names must be unique')
        seen_orgs.add(org.name)
        for ni, node in enumerate(org.nodes):
            if nodes[node.name] > 1 and node.name in seen_nodes:
                yield _diag(sources, f"spec.organizations[{oi}].nodes[{ni}].name",
                            f'duplicate node name "{node.name}"; node names must be unique across the consortium')
            seen_nodes.add(node.name)
            if len(node.name) > K8S_STATEFULSET_NAME_MAX:
                kubernetes = c.spec.provider.type == "kubernetes"
                yield _diag(sources, f"spec.organizations[{oi}].nodes[{ni}].name",
                            f'node name "{node.name}" has {len(node.name)} characters; Kubernetes accepts at most '
                            f"{K8S_STATEFULSET_NAME_MAX} for the node's StatefulSet"
                            + ("" if kubernetes else " (the kubernetes render target will not apply)"),
                            "error" if kubernetes else "warning")


def _powers(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    for oi, org in enumerate(c.spec.organizations):
        for ni, node in enumerate(org.nodes):
            path = f"spec.organizations[{oi}].nodes[{ni}]"
            if node.role is NodeRole.validator and node.power is None:
                yield _diag(sources, path, "expected a positive integer power for a validator, got none")
            if node.role is NodeRole.observer and node.power is not None:
                yield _diag(sources, f"{path}.power",
                            f"an observer has no voting power; remove power (got {node.power})")


def _consensus(c: Consortium, sources: SourceMap, tier: Tier | None) -> Iterator[Diagnostic]:
    validators = c.validators
    if not validators:
        yield _diag(sources, "spec.organizations", "expected at least one validator, got none")
        return
    # Relaxed for the development tier only; an environment merely named like dev (./dev, dev-eu) is not it.
    strict = tier is not Tier.development
    level = "error" if strict else "warning"
    suffix = "" if not strict else " (allowed only in the development tier: spec.tier: development, or --env dev)"
    if len(validators) < BFT_MIN_VALIDATORS:
        yield _diag(sources, "spec.organizations",
                    f"{len(validators)} validator(s) cannot tolerate a faulty one; BFT needs at least "
                    f"{BFT_MIN_VALIDATORS}{suffix}", level)
    total = sum(v.power for v in validators)
    by_org: Counter[str] = Counter()
    for v in validators:
        by_org[v.org] += v.power
    for oi, org in enumerate(c.spec.organizations):
        share = Fraction(by_org.get(org.name, 0), total) if total else Fraction(0)
        if share > Fraction(2, 3) and len(by_org) > 1:
            yield _diag(sources, f"spec.organizations[{oi}]",
                        f'organization "{org.name}" holds {float(share):.0%} of voting power (> 2/3): '
                        f"it alone can commit blocks{suffix}", level)
        elif share >= Fraction(1, 3) and len(by_org) > 1:
            yield _diag(sources, f"spec.organizations[{oi}]",
                        f'organization "{org.name}" holds {float(share):.0%} of voting power (>= 1/3): '
                        "it alone can halt the chain", "warning")


def _ports(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    base = c.spec.provider.docker.rpc_host_port_base
    if base + len(c.nodes) > 65535:
        yield _diag(sources, "spec.provider.docker.rpcHostPortBase",
                    f"{len(c.nodes)} nodes need ports {base}..{base + len(c.nodes) - 1}, beyond 65535")


def _subnet(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    subnet = c.spec.provider.docker.subnet
    if subnet is None:
        return
    size = ipaddress.ip_network(subnet).num_addresses  # parsed and checked by DockerSettings already
    needed = addresses_needed(len(c.nodes))
    if size < needed:
        yield _diag(sources, "spec.provider.docker.subnet",
                    f"{len(c.nodes)} nodes need {needed} addresses (node addresses start at the 11th, the last is "
                    f"the broadcast address), subnet {subnet} has {size}")


def _kube_places(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    """An organization that declares a place of its own must not share its namespace with another
    organization, whatever the contexts (a context names credentials, not necessarily another cluster): its
    ``apply --org`` and ``destroy --org`` own everything in it."""
    places = {o.name: c.kube_place(o.name)[1] for o in c.spec.organizations if o.nodes}
    for oi, org in enumerate(c.spec.organizations):
        if org.kubernetes is None or not org.nodes:
            continue
        shared = [o for o, ns in places.items() if o != org.name and ns == places[org.name]]
        if shared:
            field = "namespace" if org.kubernetes.namespace is not None else "context"
            yield _diag(sources, f"spec.organizations[{oi}].kubernetes.{field}",
                        f'namespace "{places[org.name]}" is also where organization(s) {", ".join(shared)} '
                        "run their nodes; give each organization a namespace of its own")


def check(c: Consortium, sources: SourceMap, environment: str | None) -> list[Diagnostic]:
    tier = effective_tier(c.spec.tier, environment)
    return [*_names(c, sources), *_powers(c, sources), *_consensus(c, sources, tier),
            *_ports(c, sources), *_subnet(c, sources), *_kube_places(c, sources)]
