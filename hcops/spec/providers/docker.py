"""The docker provider's fragment of the spec (``spec.provider.docker``)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hcops.spec.diagnostics import quote
from hcops.spec.types import Matching

# hcops.plan.desired.node_ip gives node i the address network + FIRST_NODE_HOST + i; the addresses below
# are the network address, the gateway and a few kept free for tools, and the last one is the broadcast.
FIRST_NODE_HOST = 10


def addresses_needed(nodes: int) -> int:
    """The size of the smallest subnet that holds ``nodes`` nodes as hcops numbers them."""
    return FIRST_NODE_HOST + nodes + 1


def _subnet(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise PydanticCustomError("subnet", 'expected an IPv4 network in CIDR form such as "10.42.0.0/24", got '
                                  "{got}", {"got": quote(value)}) from None
    if net.version != 4:
        raise PydanticCustomError("subnet", "expected an IPv4 network: each node gets an IPv4 address on it "
                                  "(compose ipv4_address), got {got}", {"got": quote(value)})
    if str(net) != value:
        raise PydanticCustomError("subnet", 'expected a network address with no host bits set, "{net}", got {got}',
                                  {"net": str(net), "got": quote(value)})
    if any(n.is_loopback or n.is_multicast or n.is_link_local or n.is_unspecified or n.is_reserved
           for n in (net, net.network_address)):
        raise PydanticCustomError("subnet", "expected a private or public unicast network for the containers, "
                                  "got {got}", {"got": quote(value)})
    if net.num_addresses < addresses_needed(1):
        raise PydanticCustomError("subnet", "expected a network with room for at least one node (a /28 or larger:"
                                  " node addresses start at the 11th), got {got}", {"got": quote(value)})
    return value


class DockerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rpc_host_port_base: int = Field(26657, alias="rpcHostPortBase", ge=1024, le=65000,
                                    description="Node i publishes its RPC on 127.0.0.1:(base + i).")
    subnet: Annotated[str, AfterValidator(_subnet)] | None = Field(
        None, description="IPv4 subnet of the consortium network (CIDR); derived when omitted.")
    restart: Annotated[str, Matching(r"no|always|unless-stopped|on-failure(?::[0-9]+)?",
                                     'one of "no", "always", "unless-stopped", "on-failure[:N]"')] = "unless-stopped"
    image_pull: Literal["never", "missing"] = Field(
        "never", alias="imagePull",
        description="never: the node image must already be in the engine (built by `scripts/bootstrap image` "
                    "or loaded); missing: let the engine pull it when absent.")
    pids_limit: int = Field(512, alias="pidsLimit", ge=32,
                            description="Process/thread limit per node container.")
    stop_timeout: int = Field(20, alias="stopTimeout", ge=1, le=600,
                              description="Seconds a node gets to stop cleanly before it is killed.")
