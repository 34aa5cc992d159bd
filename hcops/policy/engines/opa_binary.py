"""Finding the OPA binary: ``$HCOPS_OPA_BIN``, else ``$HCOPS_CACHE/bin/opa`` (what scripts/bootstrap
builds; HCOPS_CACHE defaults to ~/.cache/hcops), else ``opa`` on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_BIN = "HCOPS_OPA_BIN"


def find_opa() -> Path | None:
    override = os.environ.get(ENV_BIN, "").strip()
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() and os.access(path, os.X_OK) else None
    cache = Path(os.environ.get("HCOPS_CACHE") or Path.home() / ".cache" / "hcops")
    candidate = cache / "bin" / "opa"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("opa")
    return Path(found) if found else None
