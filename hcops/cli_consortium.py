"""The consortium commands: `hcops org init` and `hcops genesis assemble` (registered in ``hcops.cli``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hcops import output
from hcops.errors import InvalidInput


def _run(func: Callable[..., int]) -> Callable[..., None]:
    """``hcops.cli.run``, looked up when the command runs (hcops.cli imports this module)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from hcops.cli import run

        run(func)(*args, **kwargs)

    return wrapper


_spec = click.option("-f", "--file", "spec_file", required=True, metavar="SPEC",
                     type=click.Path(path_type=Path, dir_okay=False), help="Consortium spec (YAML).")
_env = click.option("--env", "environment", metavar="ENV", default=None,
                    help="Merge environments/ENV.yaml (next to the spec) over the spec.")
_state = click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), envvar="HCOPS_STATE_DIR",
                      default=None, help="State directory (this organization's keys). Default: .hcops/")


@click.group(name="org")
def org_group() -> None:
    """One organization's side of the consortium: its own keys and join request."""


@org_group.command(name="init")
@_spec
@_env
@_state
@click.option("--org", "organization", required=True, metavar="NAME", help="The organization (spec name).")
@click.option("--endpoint", "endpoints", multiple=True, metavar="NODE=HOST:PORT",
              help="The P2P address other members dial for NODE (repeatable; default: as the provider plans it).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Join request file. Default: join-<org>.json next to the spec.")
@_run
def org_init_command(spec_file: Path, environment: str | None, state_dir: Path | None, organization: str,
                     endpoints: tuple[str, ...], out: Path | None) -> int:
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
    outcome = org_init(spec_file, environment, state_dir, organization, out=out, endpoints=pairs)
    nodes = ", ".join(n.name for n in outcome.request.nodes)
    output.text(f"keys of {organization} ({nodes}) are in {outcome.state_dir}; keep them there, back them up")
    output.text(f"join request written to {outcome.path}: send it to the member assembling the genesis")
    return 0


@click.group(name="genesis")
def genesis_group() -> None:
    """The genesis ceremony of a new chain."""


@genesis_group.command(name="assemble")
@_spec
@_env
@click.argument("requests", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@_run
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


def register(cli: click.Group) -> None:
    cli.add_command(org_group)
    cli.add_command(genesis_group)
