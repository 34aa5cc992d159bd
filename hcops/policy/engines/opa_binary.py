"""Finding the OPA binary: ``$HCOPS_OPA_BIN``, else ``$HCOPS_CACHE/bin/opa`` (what scripts/bootstrap
builds; HCOPS_CACHE defaults to ~/.cache/hcops), else ``opa`` on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hcops.settings import Settings, resolve


def find_opa(settings: Settings | None = None) -> Path | None:
    settings = resolve(settings)
    if settings.opa_bin is not None:
        path = settings.opa_bin
        return path if path.is_file() and os.access(path, os.X_OK) else None
    candidate = settings.cache / "bin" / "opa"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("opa")
    return Path(found) if found else None
