"""Where a network's local state lives: ``.hcops/<network>/`` unless told otherwise."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from hcops.plan.keys import write_private

STATE_ENV = "HCOPS_STATE_DIR"


def state_root(override: Path | None = None) -> Path:
    if override is not None:
        return override
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else Path(".hcops")


def network_dir(network: str, override: Path | None = None) -> Path:
    return state_root(override) / network


def genesis_time(folder: Path) -> str:
    """Chosen once per network and kept, so that every render of the same spec is identical."""
    marker = folder / "genesis_time"
    if marker.exists():
        return marker.read_text().strip()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_private(marker, now.encode())
    return now
