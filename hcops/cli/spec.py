"""The spec's commands: ``schema``, ``validate`` and ``render``."""

from __future__ import annotations

from pathlib import Path

import click

from hcops import output
from hcops.cli.app import env_option, output_option, pass_settings, run, spec_option, state_option
from hcops.errors import ExitCode, InvalidInput
from hcops.settings import Settings


@click.command()
@run
def schema() -> int:
    """Print the JSON Schema of the spec (for editors via yaml-language-server)."""
    from hcops.usecases.spec import json_schema_text

    output.raw(json_schema_text())
    return 0


@click.command()
@spec_option
@env_option
@output_option("text", "json")
@run
def validate(spec_file: Path, environment: str | None, fmt: str) -> int:
    """Validate a spec (and its overlay): structure, types and consensus sanity."""
    from hcops.usecases.spec import validate as validate_spec

    if fmt == "json":
        try:
            loaded = validate_spec(spec_file, environment)
        except InvalidInput as exc:  # an invalid spec is this command's answer, not a failure to report
            output.as_json({"valid": False, "file": str(spec_file), "environment": environment,
                            "errors": [output.diagnostic_json(d) for d in exc.diagnostics]
                            or [{"severity": "error", "message": exc.message}]})
            return ExitCode.INVALID_INPUT
        output.as_json({"valid": True, "file": str(spec_file), "environment": environment,
                        "network": loaded.consortium.name, "nodes": len(loaded.consortium.nodes),
                        "validators": len(loaded.consortium.validators),
                        "warnings": [output.diagnostic_json(d) for d in loaded.warnings]})
        return 0
    loaded = validate_spec(spec_file, environment)
    output.diagnostics(loaded.warnings)
    c = loaded.consortium
    env = f" (env {environment})" if environment else ""
    output.text(f"{spec_file}{env}: valid — network {c.name}, {len(c.validators)} validators, "
                f"{len(c.nodes) - len(c.validators)} observers, {len(c.spec.organizations)} organizations")
    return 0


@click.command()
@spec_option
@env_option
@state_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory.")
@click.option("--target", type=click.Choice(["docker", "kubernetes", "ansible", "all"]), default="all",
              show_default=True)
@click.option("--generate-keys", is_flag=True,
              help="Create keys in the state folder for nodes that have no identity yet (else they must be there).")
@pass_settings
@run
def render(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None, out_dir: Path,
           target: str, generate_keys: bool) -> int:
    """Render manifests (compose, Kubernetes, Ansible) and per-node CometBFT config."""
    from hcops.render import TARGETS
    from hcops.usecases.render import render as render_manifests

    targets = list(TARGETS) if target == "all" else [target]
    result = render_manifests(spec_file, environment, out_dir, targets, state_dir, generate_keys=generate_keys,
                              settings=settings)
    output.text(f"rendered {len(result.files)} files for {', '.join(targets)} into {out_dir}")
    return 0


COMMANDS = (schema, validate, render)
