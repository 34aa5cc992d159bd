"""The ``certs`` commands (registered on the group in ``hcops.cli`` by ``register``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hcops import output


def _run(func: Callable[..., int]) -> Callable[..., None]:
    """``hcops.cli.run`` (exit codes for every outcome), looked up when the command runs: hcops.cli imports
    this module to register its commands."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from hcops.cli import run

        run(func)(*args, **kwargs)

    return wrapper


@click.group(name="certs")
def certs_group() -> None:
    """The RPC's TLS certificates (spec.network.rpc.tls): one CA per network, one certificate per node."""


@certs_group.command(name="rotate")
@click.option("-f", "--file", "spec_file", required=True, metavar="SPEC",
              type=click.Path(path_type=Path, dir_okay=False), help="Consortium spec (YAML).")
@click.option("--env", "environment", metavar="ENV", default=None,
              help="Merge environments/ENV.yaml (next to the spec) over the spec.")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), envvar="HCOPS_STATE_DIR",
              default=None, help="State directory (keys, certificates, state). Default: .hcops/")
@click.option("--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
              help="Seconds to wait for each restarted node to be ready and sign again.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for another apply/destroy of this network to finish.")
@_run
def rotate_command(spec_file: Path, environment: str | None, state_dir: Path | None, timeout: float,
                   lock_timeout: float) -> int:
    """Renew every node's RPC server certificate with a rolling restart.

    One node at a time (observers first): a new key and certificate from the network's CA, the node
    restarted with them, then a wait until the network is ready and every validator signs again, so
    that the chain keeps committing. The CA stays: clients need nothing new. The policy gate judges the
    plan first; a network with other pending changes is refused (apply them first).
    """
    from hcops.providers.base import ApplyOptions
    from hcops.usecases.certs import rotate
    from hcops.usecases.check import CheckOptions, make_gate

    def gate_report(report: Any, _recording: Any) -> None:
        s = report.summary
        output.text(f"policy gate {'passed' if report.passed else 'FAILED'}: {s.deny} deny, {s.warn} warn, "
                    f"{s.waived} waived", err=True)

    gate = make_gate(CheckOptions(environment=environment, state_dir=state_dir), on_report=gate_report)
    outcome = rotate(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                     options=ApplyOptions(timeout=timeout), gate=gate, lock_timeout=lock_timeout)
    for cert in outcome.renewed:
        output.text(f"{cert.node}: certificate {cert.fingerprint[:16]} valid until "
                    f"{cert.not_after:%Y-%m-%dT%H:%M:%SZ}")
    output.text(f"rotated {len(outcome.renewed)} certificate(s) of network {outcome.plan.name}")
    return 0


def register(group: click.Group) -> None:
    group.add_command(certs_group)
