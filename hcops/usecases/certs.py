"""``hcops certs rotate``: new RPC server certificates for every node, rolled out one node at a time.

The network's CA stays (clients keep trusting it); each node gets a new key and certificate
(``hcops.plan.certs.renew``) and is then brought to the new state by a normal apply, which touches only
that node (its handed files changed) and waits, as every apply does, until the network is ready again and
the validators sign: one node restarts at a time and the chain keeps committing. Observers go first,
then validators, in spec order.

Rotation changes nothing else: it refuses while the network has other pending changes (apply them first),
and the policy gate judges the plan once before anything is renewed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hcops.errors import InvalidInput
from hcops.plan import certs
from hcops.plan.certs import NodeCertificate
from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter, SilentReporter
from hcops.providers.base import ApplyOptions, Provider
from hcops.providers.state import DEFAULT_LOCK_TIMEOUT, network_lock
from hcops.settings import Settings, resolve
from hcops.usecases.deploy import apply, load_plan, provider_for

Gate = Callable[[NetworkPlan], None]


@dataclass(frozen=True)
class RotateOutcome:
    plan: NetworkPlan
    renewed: tuple[NodeCertificate, ...]


def rotate(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
           reporter: Reporter | None = None, options: ApplyOptions | None = None, gate: Gate | None = None,
           provider: Provider | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
           settings: Settings | None = None) -> RotateOutcome:
    reporter = reporter or SilentReporter()
    settings = resolve(settings)
    plan = load_plan(spec_file, environment, state_dir, settings=settings)
    if not certs.tls_enabled(plan):
        raise InvalidInput(f"network {plan.name} has no RPC certificates: spec.network.rpc.tls is off",
                           hint="set spec.network.rpc.tls: true and run `hcops apply`")
    prov = provider_for(plan, provider)
    pending = prov.plan(plan).pending
    if pending:
        names = ", ".join(sorted({c.node or c.name for c in pending}))
        raise InvalidInput(f"network {plan.name} does not match the spec ({len(pending)} pending change(s): "
                           f"{names}); rotation would roll those out too",
                           hint="run `hcops apply` first, then rotate")
    if gate is not None:
        gate(plan)
    renewed: list[NodeCertificate] = []
    order = sorted(plan.nodes, key=lambda n: (n.node.is_validator, n.node.index))
    for i, node in enumerate(order, 1):
        with network_lock(plan.state_dir, plan.name, lock_timeout):
            cert = certs.renew(plan, node)
        renewed.append(cert)
        reporter.step(f"rotating {node.name} ({i}/{len(order)}): new certificate "
                      f"{cert.fingerprint[:16]}, valid until {cert.not_after:%Y-%m-%d}")
        apply(spec_file, environment, state_dir, reporter=reporter, options=options, provider=prov,
              lock_timeout=lock_timeout, settings=settings)
    return RotateOutcome(plan, tuple(renewed))
