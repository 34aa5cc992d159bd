"""The consortium spec as frozen, typed models. Parsed once at the boundary; nothing downstream reads raw dicts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic_core import PydanticCustomError

from hcops.spec.diagnostics import quote
from hcops.spec.providers.ansible import AnsibleSettings
from hcops.spec.providers.docker import DockerSettings
from hcops.spec.providers.kubernetes import KubernetesSettings, OrganizationKubernetes
from hcops.spec.types import ChainId, Cpu, Duration, Image, Matching, Memory, Name, Origin, PositiveInt, Text

API_VERSION = "hcops/v1alpha1"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=camel)


class Tier(StrEnum):
    """What the network is for: the gate is strictest in production, validation most lenient in development."""

    development = "development"
    staging = "staging"
    production = "production"


# Environment names that meant a tier before spec.tier existed; any other name says nothing about the tier.
_TIER_OF_ENVIRONMENT = {"prod": Tier.production, "production": Tier.production,
                        "dev": Tier.development, "development": Tier.development,
                        "staging": Tier.staging, "stage": Tier.staging}


def effective_tier(declared: Tier | None, environment: str | None) -> Tier | None:
    """``spec.tier`` when the spec (or its overlay) sets one, else what the environment's name implies."""
    if declared is not None:
        return declared
    return _TIER_OF_ENVIRONMENT.get(environment.lower()) if environment else None


class OrgRole(StrEnum):
    provider = "provider"
    payer = "payer"
    pharmacy = "pharmacy"
    laboratory = "laboratory"
    regulator = "regulator"
    research = "research"


class NodeRole(StrEnum):
    validator = "validator"
    observer = "observer"


class Exposure(StrEnum):
    """How far the RPC endpoint reaches: the node's host only, the consortium's private network,
    the members' networks, or anyone."""

    host = "host"
    internal = "internal"
    consortium = "consortium"
    public = "public"


class Chain(Model):
    engine: Literal["cometbft"] = "cometbft"
    version: Annotated[str, Matching(r"[0-9]+\.[0-9]+\.[0-9]+", 'a version such as "0.38.17"')]
    image: Image
    chain_id: ChainId
    block_interval: Duration = Field(default=dt.timedelta(seconds=1), description="CometBFT timeout_commit.")
    app: Literal["kvstore"] = "kvstore"


class Resources(Model):
    cpu: Cpu = "500m"
    memory: Memory = "512Mi"


class Storage(Model):
    size: Memory = "10Gi"
    encrypted: bool = True


class Defaults(Model):
    resources: Resources = Resources()
    storage: Storage = Storage()


class Baa(Model):
    signed: bool
    signed_on: dt.date | None = None


class Contact(Model):
    break_glass: Annotated[str, Text(3, 254)] | None = None


class Node(Model):
    name: Name
    role: NodeRole = NodeRole.validator
    power: PositiveInt | None = None
    image: Image | None = Field(None, description="Overrides spec.chain.image for this node.")
    resources: Resources | None = None
    storage: Storage | None = None


class Organization(Model):
    name: Name
    role: OrgRole
    covered_entity: bool = False
    baa: Baa | None = None
    contact: Contact | None = None
    nodes: tuple[Node, ...] = ()
    kubernetes: OrganizationKubernetes | None = None

    @model_serializer(mode="wrap")
    def _without_unset_kubernetes(self, handler: SerializerFunctionWrapHandler) -> Any:
        # As spec.tier: an organization that declares no place keeps the spec hash it had before the field.
        data = handler(self)
        if self.kubernetes is None and isinstance(data, dict):
            data.pop("kubernetes", None)
        return data


class Rpc(Model):
    exposure: Exposure = Exposure.internal
    tls: bool = False
    cors: tuple[Origin, ...] = ()
    unsafe: bool = False


class P2p(Model):
    pex: bool = False
    addr_book_strict: bool = True
    allow_duplicate_ip: bool = False


class Network(Model):
    rpc: Rpc = Rpc()
    p2p: P2p = P2p()


class Data(Model):
    phi_on_chain: Literal["none", "hashes-only", "allowed"] = "none"
    tx_index: Literal["off", "kv"] = "off"


class Audit(Model):
    enabled: bool = True
    interval: Duration = dt.timedelta(seconds=30)
    retention_days: int = Field(2190, ge=1)
    anchor_to_chain: bool = False


_CRON_FIELD = r"[0-9A-Za-z*/,?#-]+"


def _cron(value: str) -> str:
    """Beyond the shape: field ranges and names, as the backup scheduler (croniter) will read them."""
    from croniter import croniter  # loaded only for specs that set a schedule

    if not croniter.is_valid(value):
        raise PydanticCustomError("cron", "expected a valid cron schedule (minute 0-59, hour 0-23, day 1-31, "
                                  "month 1-12 or jan-dec, weekday 0-7 or sun-sat), got {got}", {"got": quote(value)})
    return value


class Backup(Model):
    enabled: bool = False
    schedule: Annotated[str, Matching(rf"@[A-Za-z]+|{_CRON_FIELD}(?:[ \t]+{_CRON_FIELD}){{4}}",
                                      'a cron schedule of five fields such as "0 2 * * *", or "@daily"'),
                        AfterValidator(_cron)] | None = None
    retention_days: int = Field(2190, ge=1)


class Provider(Model):
    type: Literal["docker", "kubernetes", "ansible"] = "docker"
    docker: DockerSettings = DockerSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    ansible: AnsibleSettings = AnsibleSettings()


class Metadata(Model):
    name: Name
    labels: dict[Annotated[str, Text(1, 253)], Annotated[str, Text(0, 256)]] = Field(default_factory=dict)


class ConsortiumSpec(Model):
    tier: Tier | None = Field(None, description="development, staging or production; when absent, derived from "
                              "the --env name (prod/production, dev/development, staging/stage).")
    chain: Chain
    defaults: Defaults = Defaults()
    organizations: tuple[Organization, ...] = Field(min_length=1)
    network: Network = Network()
    data: Data = Data()
    audit: Audit = Audit()
    backup: Backup = Backup()
    provider: Provider = Provider()

    @model_serializer(mode="wrap")
    def _without_unset_tier(self, handler: SerializerFunctionWrapHandler) -> Any:
        # The spec hash is taken over this dump: a spec that sets no tier keeps the hash (and the
        # hcops.spec-hash labels of running nodes) it had before the field existed.
        data = handler(self)
        if self.tier is None and isinstance(data, dict):
            data.pop("tier", None)
        return data


class ResolvedNode(BaseModel):
    """A node with the defaults applied and its place in the spec."""

    model_config = ConfigDict(frozen=True)

    name: str
    org: str
    org_role: OrgRole
    role: NodeRole
    power: int
    image: str
    resources: Resources
    storage: Storage
    index: int  # position among all nodes, stable for port and address allocation
    path: str  # e.g. spec.organizations[0].nodes[0]

    @property
    def is_validator(self) -> bool:
        return self.role is NodeRole.validator


class Consortium(Model):
    api_version: Literal["hcops/v1alpha1"]
    kind: Literal["Consortium"]
    metadata: Metadata
    spec: ConsortiumSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @cached_property
    def nodes(self) -> tuple[ResolvedNode, ...]:
        out: list[ResolvedNode] = []
        d = self.spec.defaults
        for oi, org in enumerate(self.spec.organizations):
            for ni, node in enumerate(org.nodes):
                out.append(ResolvedNode(
                    name=node.name, org=org.name, org_role=org.role, role=node.role,
                    power=(node.power or 0) if node.role is NodeRole.validator else 0,
                    image=node.image or self.spec.chain.image,
                    resources=node.resources or d.resources, storage=node.storage or d.storage,
                    index=len(out), path=f"spec.organizations[{oi}].nodes[{ni}]"))
        return tuple(out)

    @property
    def validators(self) -> tuple[ResolvedNode, ...]:
        return tuple(n for n in self.nodes if n.is_validator)

    def kube_place(self, org: str) -> tuple[str | None, str]:
        """(kubeconfig context, namespace) of an organization's nodes on Kubernetes: its own when
        ``spec.organizations[].kubernetes`` says so, else the network's."""
        k = self.spec.provider.kubernetes
        return self._kube_places.get(org, (k.context, k.namespace or self.name))

    @cached_property
    def _kube_places(self) -> dict[str, tuple[str | None, str]]:
        # Asked once per node and peer while rendering (tens of thousands of times at 1,000 nodes).
        k = self.spec.provider.kubernetes
        out: dict[str, tuple[str | None, str]] = {}
        for o in self.spec.organizations:
            own = o.kubernetes
            if o.name not in out:  # the first organization of a name, as a search in spec order finds
                out[o.name] = ((own.context if own is not None else None) or k.context,
                               (own.namespace if own is not None else None) or k.namespace or self.name)
        return out

    def node(self, name: str) -> ResolvedNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)
