"""The command line: each command parses its arguments, calls one use case (``hcops.usecases``) and prints
through ``hcops.output``.

``hcops.cli.app`` holds the root group, the shared options and the exit-code mapping (the one place where an
``HcopsError`` becomes an exit code); each command group has its module, whose commands join the root here.
"""

from __future__ import annotations

from hcops.cli import audit, backup, certs, check, consortium, deploy, init, report, spec
from hcops.cli.app import cli, main

for _group in (spec, check, deploy, audit, report, init, consortium, backup, certs):
    for _command in _group.COMMANDS:
        cli.add_command(_command)

__all__ = ["cli", "main"]
