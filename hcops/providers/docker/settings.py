"""The docker provider's fragment of the spec (``spec.provider.docker``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DockerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rpc_host_port_base: int = Field(26657, alias="rpcHostPortBase", ge=1024, le=65000,
                                    description="Node i publishes its RPC on 127.0.0.1:(base + i).")
    subnet: str | None = Field(None, description="IPv4 /24 of the consortium network; derived when omitted.")
    restart: str = Field("unless-stopped", pattern=r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
