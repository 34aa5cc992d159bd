"""The ansible provider's fragment of the spec (``spec.provider.ansible``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnsibleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str = Field("cometbft", description="System user that runs the node on each host.")
    home: str = Field("/var/lib/cometbft", description="CometBFT home directory on each host.")
