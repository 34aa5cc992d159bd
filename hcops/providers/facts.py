"""What every provider observes about a node, typed: the contract between the providers and the audit.

Each provider fills these from its own engine (Docker's inspect, the pod template and its pod, a host's unit
and files); hcops.audit.facts turns them into the camelCase fact document the runtime policies read. A field
is ``None`` where the provider cannot tell; the audit then reports "unknown" rather than a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time only the audit reads it; base.py stays free of the RPC client's imports
    from hcops.providers.rpc import Validator


@dataclass(frozen=True)
class KeyFile:
    """Mode (octal text) and owner of a key file: never its content. All ``None`` when it is missing."""

    mode: str | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    error: str | None = None  # the provider could not read the file's metadata

    @classmethod
    def of(cls, meta: Mapping[str, Any] | None) -> KeyFile:
        meta = meta or {}
        return cls(meta.get("mode"), meta.get("uid"), meta.get("gid"), meta.get("size"), meta.get("error"))


@dataclass(frozen=True)
class PortBinding:
    container_port: int  # 0 where the engine's key is not a number
    protocol: str
    host_ip: str
    host_port: str


def port_bindings(published: Mapping[str, Any] | None) -> tuple[PortBinding, ...]:
    """Bindings from the engine's ``{"26657/tcp": [{"host_ip", "host_port"}]}`` form, in key order; a binding
    without an address listens on every interface, hence "0.0.0.0"."""
    out: list[PortBinding] = []
    for key, binds in sorted((published or {}).items()):
        port_text, _, proto = str(key).partition("/")
        port = int(port_text) if port_text.isdigit() else 0
        out += [PortBinding(port, proto or "tcp", b.get("host_ip") or "0.0.0.0", str(b.get("host_port") or ""))
                for b in binds or ()]
    return tuple(out)


@dataclass(frozen=True)
class Mount:
    type: str | None
    name: str | None
    destination: str | None
    rw: bool | None


@dataclass(frozen=True)
class ImageFacts:
    reference: str | None = None
    id: str = ""
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceLimits:
    memory_bytes: int | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class ContainerFacts:
    """The node's process as its engine runs it: a container, a pod's main container, or a systemd unit.
    ``present=False`` with everything else unset: the provider looked and found none."""

    present: bool
    name: str | None = None
    state: str | None = None
    image: ImageFacts | None = None
    restart_count: int | None = 0
    user: str = ""  # "uid:gid" or a user name
    read_only_rootfs: bool | None = None
    privileged: bool | None = None
    no_new_privileges: bool | None = None
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    key_files: Mapping[str, KeyFile] = field(default_factory=dict)  # path in the node's home -> metadata
    ports: tuple[PortBinding, ...] = ()
    resources: ResourceLimits | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    engine: Mapping[str, Any] = field(default_factory=dict)  # engine-only detail, shown by status, not audited


@dataclass(frozen=True)
class LastCommit:
    """Who signed the node's last commit (the full hcops.providers.rpc.Commit is not kept)."""

    height: int
    signers: tuple[str, ...]


@dataclass(frozen=True)
class RpcFacts:
    """The node as its RPC reports it; only ``reachable`` and ``url``/``error`` when it does not answer."""

    reachable: bool
    url: str | None = None
    error: str | None = None
    node_id: str | None = None
    moniker: str | None = None
    chain_id: str | None = None
    version: str | None = None
    height: int | None = None
    latest_block_time: str | None = None
    catching_up: bool | None = None
    validator_address: str | None = None
    voting_power: int | None = None
    peers: tuple[str, ...] = ()
    # Only from providers that read the chain per node rather than once per observation.
    validators: tuple[Validator, ...] = ()
    last_commit: LastCommit | None = None
    tls: Mapping[str, Any] | None = None  # TS-2 measurement, already camelCase (hcops.providers.tls)


@dataclass(frozen=True)
class UnitFacts:
    name: str | None
    installed: bool
    active_state: str | None
    sub_state: str | None
    enabled: bool
    restarts: int | None
    drop_ins: tuple[str, ...]
    restart_pending: bool


@dataclass(frozen=True)
class Hardening:
    """The unit's systemd sandboxing as systemd reports it (values pass through unchanged)."""

    user: str | None
    no_new_privileges: bool | None
    protect_system: str | None
    protect_home: str | None
    private_tmp: bool | None
    private_devices: bool | None
    capability_bounding_set: tuple[str, ...]
    ambient_capabilities: tuple[str, ...]
    read_write_paths: tuple[str, ...]


@dataclass(frozen=True)
class BinaryFacts:
    path: str | None
    present: bool
    sha256: str | None
    version: str | None
    expected_version: str
    expected_sha256: str | None


@dataclass(frozen=True)
class HostFacts:
    """What only a host has (policies/runtime/host.rego). With ``unit`` unset the host did not answer and
    ``error`` says why."""

    unit: UnitFacts | None = None
    hardening: Hardening | None = None
    data_dir: str | None = None
    binary: BinaryFacts | None = None
    user: Mapping[str, Any] = field(default_factory=dict)
    listening: tuple[Mapping[str, Any], ...] = ()
    firewall: Mapping[str, Any] = field(default_factory=dict)  # per-port reach, already camelCase
    error: str | None = None
