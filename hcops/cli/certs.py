"""The ``certs`` commands: the RPC's TLS certificates."""

from __future__ import annotations

from pathlib import Path

import click

from hcops import output
from hcops.cli.app import (
    env_option,
    lock_timeout_option,
    pass_settings,
    run,
    spec_option,
    state_option_for,
    timeout_option,
)
from hcops.cli.check import gate_verdict
from hcops.clock import format_time
from hcops.settings import Settings


@click.group(name="certs")
def certs_group() -> None:
    """The RPC's TLS certificates (spec.network.rpc.tls): one CA per network, one certificate per node."""


@certs_group.command(name="rotate")
@spec_option
@env_option
@state_option_for("keys, certificates, state")
@timeout_option(180.0, "Seconds to wait for each restarted node to be ready and sign again.")
@lock_timeout_option
@pass_settings
@run
def rotate_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                   timeout: float, lock_timeout: float) -> int:
    """Renew every node's RPC server certificate with a rolling restart.

    One node at a time (observers first): a new key and certificate from the network's CA, the node
    restarted with them, then a wait until the network is ready and every validator signs again, so
    that the chain keeps committing. The CA stays: clients need nothing new. The policy gate judges the
    plan first; a network with other pending changes is refused (apply them first).
    """
    from hcops.providers.base import ApplyOptions
    from hcops.usecases.certs import rotate
    from hcops.usecases.check import CheckOptions, make_gate

    gate = make_gate(CheckOptions(environment=environment, state_dir=state_dir, settings=settings),
                     on_report=lambda report, _recording: gate_verdict(report))
    outcome = rotate(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                     options=ApplyOptions(timeout=timeout), gate=gate, lock_timeout=lock_timeout, settings=settings)
    for cert in outcome.renewed:
        output.text(f"{cert.node}: certificate {cert.fingerprint[:16]} valid until {format_time(cert.not_after)}")
    output.text(f"rotated {len(outcome.renewed)} certificate(s) of network {outcome.plan.name}")
    return 0


COMMANDS = (certs_group,)
