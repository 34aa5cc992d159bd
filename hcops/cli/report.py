"""The ``report`` command: the compliance report, one row per HIPAA control."""

from __future__ import annotations

from pathlib import Path

import click

from hcops import output
from hcops.cli.app import audit_db_option, env_option, pass_settings, run, spec_option, state_option
from hcops.settings import Settings


@click.command(name="report")
@spec_option
@env_option
@state_option
@audit_db_option
@click.option("--format", "fmt", type=click.Choice(["html", "json", "md"]), default="html", show_default=True)
@click.option("-o", "--out", "out_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Report file to write.")
@click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Waivers file, listed in the report and applied to the gate evaluation.")
@click.option("--attestations", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Attestations file. Default: attestations.yaml next to the spec, when present.")
@pass_settings
@run
def report_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                   audit_db: Path | None, fmt: str, out_file: Path, waivers: Path | None,
                   attestations: Path | None) -> int:
    """Write the compliance report: one row per HIPAA control with its rules, status and evidence."""
    from hcops.usecases.report import write_report

    result = write_report(spec_file, environment, state_dir, audit_db=audit_db, fmt=fmt, out=out_file,
                          waivers=waivers, attestations=attestations, settings=settings)
    output.text(f"wrote {out_file}: {result.summary}")
    return 0


COMMANDS = (report_command,)
