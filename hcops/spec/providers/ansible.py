"""The ansible provider's fragment of the spec (``spec.provider.ansible``).

    provider:
      type: ansible
      ansible:
        user: cometbft                 # system user that runs the node on each host
        home: /var/lib/cometbft
        binary: bin/cometbft           # on this machine; default $HCOPS_CACHE/bin/cometbft, then PATH
        connection: {user: ops, privateKeyFile: ~/.ssh/hcops_ed25519, become: true}
        firewall: {enabled: true, rpcAllowFrom: ["10.20.0.0/16"]}
        hosts:
          stmary-val-0: {address: 10.20.0.11}

Pydantic reports a bad value at its FILE:LINE; ``check`` adds the rules that need the rest of the spec
(hosts that name no node, two nodes on one host), also at FILE:LINE.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hcops.spec.diagnostics import quote
from hcops.spec.types import Matching, Name

if TYPE_CHECKING:
    from hcops.errors import Diagnostic
    from hcops.spec.models import Consortium
    from hcops.spec.source import SourceMap

# Both end up in the rendered variables and in paths and commands on every host: plain names only.
User = Annotated[str, Matching(r"[a-z_][a-z0-9_-]{0,31}", "a system user name (lowercase letters, digits, "
                                                           '"_" and "-", at most 32)')]
Home = Annotated[str, Matching(r"(?!.*/\.\.?(?:/|$))/[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*/?",
                               'an absolute path of letters, digits, ".", "_" and "-" without "." or ".." '
                               'parts, such as "/var/lib/cometbft"')]
# A file on this machine (the controller): relative to the spec's folder, absolute, or under "~/". It reaches
# ssh's command line through Ansible, so no spaces, quotes or option-like first character.
LocalPath = Annotated[str, Matching(r"(?:~/|/|\.{0,2}/)?[A-Za-z0-9_+@][A-Za-z0-9._+@-]*(?:/[A-Za-z0-9._+@-]+)*",
                                    'a file path of letters, digits, ".", "_", "+", "@" and "-" (relative to '
                                    'the spec, absolute, or under "~/"), such as "~/.ssh/hcops_ed25519"')]
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in value.split(".")):
        return value
    raise PydanticCustomError("address", 'expected an IP address or a DNS host name such as "10.20.0.11" or '
                              '"node1.stmary.example", got {got}', {"got": quote(value)})


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise PydanticCustomError("cidr", 'expected an IP network in CIDR form with no host bits set, such as '
                                  '"10.20.0.0/16" or "192.0.2.7/32", got {got}', {"got": quote(value)}) from None
    return value


Address = Annotated[str, AfterValidator(_address)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Connection(BaseModel):
    """How hcops reaches every host: SSH (through Ansible), then sudo."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: User | None = Field(None, description="SSH login user; default: the user running hcops.")
    private_key_file: LocalPath | None = Field(
        None, alias="privateKeyFile",
        description="SSH private key on this machine (relative to the spec's folder); default: ssh's own.")
    port: Port = Field(22, description="SSH port of every host, unless the host sets one.")
    become: bool = Field(True, description="Run the tasks through sudo (needed unless the SSH user is root).")
    host_key_checking: Literal["strict", "accept-new"] = Field(
        "accept-new", alias="hostKeyChecking",
        description="strict: every host key must already be in knownHostsFile; accept-new: a host seen for the "
                    "first time is remembered there, a changed key is refused.")
    known_hosts_file: LocalPath | None = Field(
        None, alias="knownHostsFile",
        description="Known host keys; default: known_hosts in the network's state folder.")
    timeout: int = Field(30, ge=1, le=600, description="SSH connect timeout in seconds.")


class Host(BaseModel):
    """One node's host (``hosts.<node name>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: Address = Field(description="Where hcops connects to (SSH and the RPC tunnel).")
    port: Port | None = Field(None, description="SSH port; default connection.port.")
    peer_address: Address | None = Field(
        None, alias="peerAddress",
        description="Where the other nodes reach this one (P2P, firewall); default: address.")

    @property
    def peer(self) -> str:
        return self.peer_address or self.address


class Firewall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Manage an nftables table that limits who reaches the node's "
                                            "RPC, P2P and metrics ports (the host's other rules are untouched).")
    rpc_allow_from: tuple[Cidr, ...] = Field(
        (), alias="rpcAllowFrom",
        description="Networks, besides the consortium's hosts, that may call RPC when "
                    "spec.network.rpc.exposure is consortium.")


class AnsibleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: User = Field("cometbft", description="System user that runs the node on each host.")
    home: Home = Field("/var/lib/cometbft", description="CometBFT home directory on each host.")
    binary: LocalPath | None = Field(
        None, description="The CometBFT binary copied to every host (relative to the spec's folder); default "
                          "$HCOPS_CACHE/bin/cometbft, then cometbft on PATH. It must report spec.chain.version.")
    connection: Connection = Connection()
    firewall: Firewall = Firewall()
    hosts: dict[Name, Host] = Field(
        default_factory=dict, description="Per node: its host's address; a node not listed is reached at its "
                                          "name (which must then resolve on this machine and on every host).")
    keep_runs: int = Field(20, alias="keepRuns", ge=1, le=1000,
                           description="Ansible runs whose artifacts are kept in the state folder.")

    def host(self, node: str) -> Host:
        return self.hosts.get(node) or Host(address=node)


def check(c: Consortium, sources: SourceMap) -> Iterator[Diagnostic]:
    """Rules over ``hosts`` that need the node list: every entry names a node; one node per host."""
    from hcops.errors import Diagnostic
    from hcops.spec.paths import parse_path

    def diag(path: str, message: str) -> Diagnostic:
        return Diagnostic(message, path=path, location=sources.locate(parse_path(path)))

    settings = c.spec.provider.ansible
    names = [n.name for n in c.nodes]
    for host in settings.hosts:
        if host not in names:
            close = [n for n in names if n.split("-")[0] == host.split("-")[0]]
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            yield diag(f"spec.provider.ansible.hosts.{host}",
                       f'"{host}" is not a node of this consortium{hint}; hosts are keyed by node name')
    # A host holds one node: the unit, the home folder and the ports would collide.
    where = Counter((settings.host(n).address, settings.host(n).port or settings.connection.port) for n in names)
    for n in names:
        h = settings.host(n)
        if where[(h.address, h.port or settings.connection.port)] > 1 and n in settings.hosts:
            yield diag(f"spec.provider.ansible.hosts.{n}.address",
                       f"{h.address} also hosts another node; each node needs a host of its own")
