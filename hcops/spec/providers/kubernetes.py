"""The kubernetes provider's fragment of the spec (``spec.provider.kubernetes``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hcops.spec.types import Name, Subdomain, Text


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: Name | None = Field(None, description="Defaults to metadata.name.")
    storage_class: Subdomain | None = Field(None, alias="storageClass",
                                            description="StorageClass of the nodes' volumes (a DNS-1123 subdomain).")
    context: Annotated[str, Text(1, 253)] | None = Field(
        None,
        description="kubeconfig context ($KUBECONFIG or ~/.kube/config); without one, the kubeconfig's "
        "current context, else the in-cluster service account.",
    )
    wait_for_ready: bool = Field(
        True,
        alias="waitForReady",
        description="apply waits until every pod is ready and every validator signs blocks; false: apply the "
        "objects only (for clusters that cannot run the pods, e.g. policy or review clusters).",
    )
    revert_drift: bool = Field(
        True,
        alias="revertDrift",
        description="apply re-takes fields that imperative edits (kubectl edit/patch/set/scale) changed "
        "behind hcops' back, and reports each one; false: fail instead. Fields owned by another "
        "server-side-apply manager always fail the apply (never overwritten).",
    )


class OrganizationKubernetes(BaseModel):
    """Where one organization's nodes live on Kubernetes (``spec.organizations[].kubernetes``): its own
    namespace, reached through its own kubeconfig context, so that no one switches contexts by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: Name | None = Field(None, description="The organization's namespace; default: the network's "
                                   "(spec.provider.kubernetes.namespace, else metadata.name).")
    context: Annotated[str, Text(1, 253)] | None = Field(
        None, description="kubeconfig context hcops uses for this organization's objects; default: "
        "spec.provider.kubernetes.context.")
