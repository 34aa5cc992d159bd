"""The getting-started commands: ``init`` (scaffold a consortium) and ``completion``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hcops import output
from hcops.cli.app import cli, pass_settings, run
from hcops.errors import InvalidInput
from hcops.settings import Settings


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask_orgs(default: int) -> tuple[tuple[str, ...], int | None]:
    answer = click.prompt("organizations: a number, or names separated by commas (NAME or NAME:ROLE)",
                          default=str(default), err=True).strip()
    if answer.isdigit():
        return (), int(answer)
    return tuple(o.strip() for o in answer.split(",") if o.strip()), None


@click.command(name="init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--name", default=None, help="Consortium name, a DNS-1123 label. Default: the folder's name.")
@click.option("--org", "orgs", multiple=True, metavar="NAME[:ROLE]",
              help="An organization (repeatable); ROLE: provider (default), payer, pharmacy, laboratory, "
                   "regulator, research.")
@click.option("--orgs", "org_count", type=int, default=None, metavar="N",
              help="Or this many organizations, named org-1 ... org-N. Default: 4.")
@click.option("--validators-per-org", type=int, default=None, metavar="N", help="Validators per organization. "
              "Default: 1.")
@click.option("--provider", type=click.Choice(["docker", "kubernetes"]), default=None,
              help="Where the nodes run. Default: docker.")
@click.option("--yes", "-y", is_flag=True, help="Ask no questions: defaults for everything not given.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@pass_settings
@run
def init_command(settings: Settings, directory: Path, name: str | None, orgs: tuple[str, ...],
                 org_count: int | None, validators_per_org: int | None, provider: str | None, yes: bool,
                 force: bool) -> int:
    """Scaffold a new consortium in DIRECTORY (default: here).

    Writes network.yaml (the spec), environments/{dev,staging,prod}.yaml, attestations.yaml, .gitignore
    and .github/workflows/hcops-gate.yml; refuses to overwrite existing files unless --force. Without
    --yes, on a terminal, asks for what the options leave open.
    """
    from hcops.usecases import init as uc

    if not yes and _interactive():  # ask for what the options leave open
        if name is None:
            name = click.prompt("consortium name (DNS-1123 label)", default=uc.default_name(directory), err=True)
        if not orgs and org_count is None:
            orgs, org_count = _ask_orgs(uc.DEFAULT_ORGS)
        if validators_per_org is None:
            validators_per_org = click.prompt("validators per organization", default=1, type=int, err=True)
        if provider is None:
            provider = click.prompt("provider", default="docker", type=click.Choice(uc.PROVIDERS), err=True)
    options = uc.make_options(name or uc.default_name(directory), orgs, org_count,
                              1 if validators_per_org is None else validators_per_org, provider or "docker", force)
    result = uc.init(directory, options, settings)
    for path in result.files:
        output.text(f"{'overwrote' if path in result.overwritten else 'wrote'} {path}")
    spec = directory / "network.yaml"
    n = len(options.orgs) * options.validators_per_org
    output.text(f"consortium {options.name}: {len(options.orgs)} organizations, {n} validators, "
                f"provider {options.provider}")
    for env, problem in result.pending:
        output.text(f"note: --env {env} does not validate yet: {problem}", err=True)
    for note in result.notes:
        output.text(f"note: {note}", err=True)
    output.text("next:\n"
                f"  hcops validate -f {spec} --env dev\n"
                f"  hcops check    -f {spec} --env dev\n"
                f"  hcops apply    -f {spec} --env dev\n"
                "before staging and prod: record the signed BAAs in network.yaml, pin the production image by "
                "digest and set break-glass contacts (environments/prod.yaml); the CI gate fails until then")
    return 0


SHELLS = ("bash", "zsh", "fish")


@click.command(name="completion")
@click.argument("shell", type=click.Choice(SHELLS))
@run
def completion_command(shell: str) -> int:
    """Print the shell completion script for SHELL.

    \b
    bash: eval "$(hcops completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(hcops completion zsh)"    (in ~/.zshrc)
    fish: hcops completion fish > ~/.config/fish/completions/hcops.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click always has these three
        raise InvalidInput(f"no completion for {shell}")
    output.raw(cls(cli, {}, "hcops", "_HCOPS_COMPLETE").source())
    return 0


COMMANDS = (init_command, completion_command)
