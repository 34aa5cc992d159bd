"""The policy input document (docs/policy-input.md): the merged spec, per organization and per node facts,
and the rendered manifests as data. Built from the same code as ``hcops render``, so the gate judges exactly
what would be written; linear in the number of nodes.

Which manifests: by default those of the targets the network is deployed with (``spec.provider.type``:
the compose services and the node container documents for ``docker``, the Kubernetes objects for
``kubernetes``, both for ``ansible``), so the gate judges what ``hcops apply`` would create (the Docker
provider creates its containers from exactly the ``dockerContainers`` documents); ``manifests="all"``
adds every target (what ``hcops render`` writes). At 1,000 nodes the Kubernetes objects alone are 7.6 MB of
JSON for the engine to read.

Built in parts, and handed part by part to an ``InputSink`` when the caller gives one: the managed OPA
engine sends each part to its server as soon as it is built, so that the server reads the document
while the rest is still being built (hcops.policy.engines.opa_stage). The parts, applied in order
(each replaces the value at its path), give exactly the returned document; ``done`` names that
document, so that an engine can tell it from any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal, Protocol

from hcops.plan.desired import NetworkPlan
from hcops.render.base import Context, no_gc
from hcops.render.docker import docker_compose, docker_containers
from hcops.render.kubernetes import kubernetes_objects
from hcops.spec.types import ImageRef


def _image_ref(image: str) -> dict[str, Any]:
    try:
        return asdict(ImageRef.parse(image))
    except ValueError:  # validated by the spec already; keep the gate working if that ever changes
        return {"repository": image, "tag": None, "digest": None}


ManifestScope = Literal["provider", "all"]
_PROVIDER_TARGETS = {"docker": ("docker",), "kubernetes": ("kubernetes",), "ansible": ("docker", "kubernetes")}


def manifest_targets(plan: NetworkPlan, scope: ManifestScope = "provider") -> tuple[str, ...]:
    """The render targets whose manifests go into the input document."""
    if scope == "all":
        return ("docker", "kubernetes")
    return _PROVIDER_TARGETS[plan.consortium.spec.provider.type]


class InputSink(Protocol):
    """Receives the input document part by part while it is built."""

    def part(self, path: tuple[str, ...], value: Any) -> None:
        """``value`` is the document's value at ``path`` (``()``: the document itself, replaced)."""

    def done(self, document: dict[str, Any]) -> None:
        """Every part was given; ``document`` is the document they make."""


class _NoSink:
    def part(self, path: tuple[str, ...], value: Any) -> None:
        pass

    def done(self, document: dict[str, Any]) -> None:
        pass


def build_input(plan: NetworkPlan, manifests: ManifestScope = "provider",
                sink: InputSink | None = None) -> dict[str, Any]:
    with no_gc():
        return _build(plan, manifest_targets(plan, manifests), sink or _NoSink())


def _build(plan: NetworkPlan, targets: tuple[str, ...], sink: InputSink) -> dict[str, Any]:
    c = plan.consortium
    head: dict[str, Any] = {
        "apiVersion": c.api_version,
        "kind": c.kind,
        "metadata": c.metadata.model_dump(mode="json", by_alias=True),
        "environment": plan.loaded.environment,  # for display; rules decide on the tier
        "tier": tier.value if (tier := plan.loaded.tier) else None,
        "spec": c.spec.model_dump(mode="json", by_alias=True),
    }
    sink.part((), {**head, "manifests": {}})
    ctx = Context(plan)
    docker_target = c.spec.provider.type == "docker"

    validators: dict[str, int] = {}
    power: dict[str, int] = {}
    count: dict[str, int] = {}
    nodes: list[dict[str, Any]] = []
    # Every member's nodes (the consensus rules are about the whole validator set); the manifests below are
    # the deployed ones only: with ``--org`` that organization's containers.
    for p in plan.members:
        n = p.node
        count[n.org] = count.get(n.org, 0) + 1
        if n.is_validator:
            validators[n.org] = validators.get(n.org, 0) + 1
            power[n.org] = power.get(n.org, 0) + n.power
        config = ctx.docker_config(p) if docker_target else ctx.kubernetes_config(p, plan.kube_namespace(p))
        nodes.append({
            "name": n.name, "org": n.org, "orgRole": n.org_role.value, "role": n.role.value, "power": n.power,
            "path": n.path, "image": n.image, "imageRef": _image_ref(n.image),
            "resources": n.resources.model_dump(mode="json", by_alias=True),
            "storage": n.storage.model_dump(mode="json", by_alias=True),
            "config": config,
        })
    sink.part(("nodes",), nodes)

    organizations = []
    for i, org in enumerate(c.spec.organizations):
        organizations.append({
            "name": org.name, "role": org.role.value, "coveredEntity": org.covered_entity,
            "baa": org.baa.model_dump(mode="json", by_alias=True) if org.baa else None,
            "contact": org.contact.model_dump(mode="json", by_alias=True) if org.contact else None,
            "path": f"spec.organizations[{i}]",
            "validators": validators.get(org.name, 0), "votingPower": power.get(org.name, 0),
            "nodeCount": count.get(org.name, 0),
        })

    chain = {"validators": sum(validators.values()), "totalPower": sum(power.values()),
             "organizationsWithValidators": len(validators)}
    sink.part(("organizations",), organizations)
    sink.part(("chain",), chain)

    manifests: dict[str, Any] = {}
    for key, build in _manifest_builders(plan, ctx, targets):
        manifests[key] = build()
        sink.part(("manifests", key), manifests[key])
    document = {**head, "organizations": organizations, "nodes": nodes, "chain": chain, "manifests": manifests}
    sink.done(document)
    return document


def _manifest_builders(plan: NetworkPlan, ctx: Context,
                       targets: tuple[str, ...]) -> list[tuple[str, Callable[[], Any]]]:
    builders: list[tuple[str, Callable[[], Any]]] = []
    if "docker" in targets:
        builders.append(("docker", lambda: docker_compose(plan, ctx)))
        # What `hcops apply` creates on Docker, one document per node container (hcops.render.docker_doc):
        # the compose file above is rendered from the same documents.
        builders.append(("dockerContainers", lambda: docker_containers(plan, ctx)))
    if "kubernetes" in targets:
        builders.append(("kubernetes", lambda: kubernetes_objects(plan, secrets=False, ctx=ctx)))
    return builders
