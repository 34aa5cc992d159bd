"""The consortium's commands: ``org init`` (one member's side) and ``genesis assemble``."""

from __future__ import annotations

from pathlib import Path

import click

from hcops import output
from hcops.cli.app import env_option, pass_settings, run, spec_option, state_option_for
from hcops.errors import InvalidInput
from hcops.settings import Settings


@click.group(name="org")
def org_group() -> None:
    """One organization's side of the consortium: its own keys and join request."""


@org_group.command(name="init")
@spec_option
@env_option
@state_option_for("this organization's keys")
@click.option("--org", "organization", required=True, metavar="NAME", help="The organization (spec name).")
@click.option("--endpoint", "endpoints", multiple=True, metavar="NODE=HOST:PORT",
              help="The P2P address other members dial for NODE (repeatable; default: as the provider plans it).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Join request file. Default: join-<org>.json next to the spec.")
@pass_settings
@run
def org_init_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                     organization: str, endpoints: tuple[str, ...], out: Path | None) -> int:
    """Create this organization's node keys locally and write its signed join request.

    Only the organization's own nodes get keys; the request holds public identities and P2P endpoints,
    signed by each node's node key, so that any change to it on its way is detected.
    """
    from hcops.usecases.consortium import org_init

    pairs = {}
    for item in endpoints:
        node, sep, address = item.partition("=")
        if not sep or not node or ":" not in address:
            raise InvalidInput(f"--endpoint {item!r}: expected NODE=HOST:PORT")
        pairs[node] = address
    outcome = org_init(spec_file, environment, state_dir, organization, out=out, endpoints=pairs, settings=settings)
    nodes = ", ".join(n.name for n in outcome.request.nodes)
    output.text(f"keys of {organization} ({nodes}) are in {outcome.state_dir}; keep them there, back them up")
    output.text(f"join request written to {outcome.path}: send it to the member assembling the genesis")
    return 0


@click.group(name="genesis")
def genesis_group() -> None:
    """The genesis ceremony of a new chain."""


@genesis_group.command(name="assemble")
@spec_option
@env_option
@click.argument("requests", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@run
def genesis_assemble_command(spec_file: Path, environment: str | None, requests: tuple[Path, ...]) -> int:
    """Check every organization's join request and write the genesis into the lock file.

    Refused: a request altered after it was signed, another chain id or network, nodes, roles or powers
    other than the spec's, duplicate node IDs or keys, a missing organization, or a validator set that
    breaks the consensus rules (outside the development tier).
    """
    from hcops.usecases.consortium import genesis_assemble

    outcome = genesis_assemble(spec_file, environment, requests)
    output.text(f"genesis of chain {outcome.lock.chain_id} assembled from {len(outcome.organizations)} join "
                f"request(s) ({', '.join(outcome.organizations)}); sha256 {outcome.lock.genesis_sha256}")
    output.text(f"written to {outcome.path}: commit it; every member applies from it")
    return 0


COMMANDS = (org_group, genesis_group)
