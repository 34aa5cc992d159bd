"""The kubernetes provider's fragment of the spec (``spec.provider.kubernetes``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hcops.spec.types import Name


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: Name | None = Field(None, description="Defaults to metadata.name.")
    storage_class: str | None = Field(None, alias="storageClass")
    context: str | None = Field(None, description="kubeconfig context; in-cluster config when absent.")
