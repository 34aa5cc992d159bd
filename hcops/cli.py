"""The command line: parse arguments, call one use case, print through ``hcops.output``.

This is the only module that catches ``HcopsError`` and turns it into an exit code.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hcops import __version__, output
from hcops.errors import ExitCode, HcopsError, InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

spec_option = click.option("-f", "--file", "spec_file", required=True, metavar="SPEC",
                           type=click.Path(path_type=Path, dir_okay=False),
                           help="Consortium spec (YAML).")
env_option = click.option("--env", "environment", metavar="ENV", default=None,
                          help="Merge environments/ENV.yaml (next to the spec) over the spec.")
state_option = click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                            envvar="HCOPS_STATE_DIR", default=None,
                            help="State directory (keys, state, audit log). Default: .hcops/")


def output_option(*choices: str) -> Callable[[F], F]:
    return click.option("--output", "-o", "fmt", type=click.Choice(choices), default=choices[0],
                        show_default=True, help="Output format.")


def _crash_log(exc: BaseException) -> Path:
    folder = Path(os.environ.get("HCOPS_STATE_DIR") or ".hcops")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder
    except OSError:
        probe = Path(tempfile.gettempdir())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = probe / f"crash-{stamp}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def run(func: Callable[..., int | None]) -> Callable[..., int | None]:
    """Map every outcome of a command to its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int | None:
        try:
            code = func(*args, **kwargs)
        except InvalidInput as exc:
            if exc.diagnostics:
                output.diagnostics(exc.diagnostics)
                n = sum(1 for d in exc.diagnostics if d.severity == "error")
                output.text(f"{n} error(s)", err=True)
            else:
                output.error(exc.message, exc.hint)
            raise SystemExit(exc.exit_code) from None
        except HcopsError as exc:
            output.error(exc.message, exc.hint)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise SystemExit(130) from None
        except Exception as exc:  # the boundary for unexpected failures: short message + where details went
            log = _crash_log(exc)
            output.error(f"internal error: {exc.__class__.__name__}: {exc}",
                         f"details written to {log}; please report it")
            raise SystemExit(ExitCode.INTERNAL) from None
        raise SystemExit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="hcops")
def cli() -> None:
    """hcops: compliance-as-code for healthcare blockchain consortia.

    Describe the consortium in one spec; validate it, render manifests, gate releases on HIPAA
    policies, run the validators and audit them.
    """


@cli.command()
@output_option("text", "json")
@run
def version(fmt: str) -> int:
    """Print the hcops version."""
    if fmt == "json":
        output.as_json({"version": __version__, "python": sys.version.split()[0]})
    else:
        output.text(f"hcops {__version__}")
    return 0


@cli.command()
@run
def schema() -> int:
    """Print the JSON Schema of the spec (for editors via yaml-language-server)."""
    from hcops.usecases.spec import json_schema_text

    output.raw(json_schema_text())
    return 0


@cli.command()
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
        except InvalidInput as exc:
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


@cli.command()
@spec_option
@env_option
@state_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory.")
@click.option("--target", type=click.Choice(["docker", "kubernetes", "ansible", "all"]), default="all",
              show_default=True)
@run
def render(spec_file: Path, environment: str | None, state_dir: Path | None, out_dir: Path, target: str) -> int:
    """Render manifests (compose, Kubernetes, Ansible) and per-node CometBFT config."""
    from hcops.render import TARGETS
    from hcops.usecases.render import render as render_manifests

    targets = list(TARGETS) if target == "all" else [target]
    result = render_manifests(spec_file, environment, out_dir, targets, state_dir)
    output.text(f"rendered {len(result.files)} files for {', '.join(targets)} into {out_dir}")
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="hcops", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
    except click.exceptions.Abort:
        output.error("aborted")
        raise SystemExit(130) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
