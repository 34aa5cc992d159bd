"""The docker provider's fragment of the spec (``spec.provider.docker``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DockerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rpc_host_port_base: int = Field(26657, alias="rpcHostPortBase", ge=1024, le=65000,
                                    description="Node i publishes its RPC on 127.0.0.1:(base + i).")
    subnet: str | None = Field(None,
                               description="IPv4 subnet of the consortium network; derived when omitted.")
    restart: str = Field("unless-stopped", pattern=r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
    image_pull: Literal["never", "missing"] = Field(
        "never", alias="imagePull",
        description="never: the node image must already be in the engine (built by `scripts/bootstrap image` "
                    "or loaded); missing: let the engine pull it when absent.")
    pids_limit: int = Field(512, alias="pidsLimit", ge=32,
                            description="Process/thread limit per node container.")
    stop_timeout: int = Field(20, alias="stopTimeout", ge=1, le=600,
                              description="Seconds a node gets to stop cleanly before it is killed.")
