"""Where the built-in policy pack and the templates are: ``hcops/_<name>`` in an installed wheel (see setup.py),
``<repository>/<name>`` in a checkout or an editable install."""

from __future__ import annotations

from pathlib import Path
from typing import Literal


def bundled(name: Literal["policies", "templates"]) -> Path:
    here = Path(__file__).resolve().parent
    installed = here / f"_{name}"
    return installed if installed.is_dir() else here.parent / name
