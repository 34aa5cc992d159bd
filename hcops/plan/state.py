"""Where a network's local state lives: ``.hcops/<network>/`` unless told otherwise."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from hcops.errors import InvalidInput
from hcops.fsutil import read_file, write_private

STATE_ENV = "HCOPS_STATE_DIR"
# RFC 3339 in UTC, as CometBFT writes genesis times (fractional seconds down to nanoseconds).
_GENESIS_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z")


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
    data = read_file(marker)  # never through a link: it would copy another file into genesis.json
    if data is not None:
        # the content is not echoed: whatever the file holds, it goes into every node's genesis
        text = data.decode("utf-8", "replace").strip()
        if not _valid_time(text):
            raise InvalidInput(f"{marker}: expected the network's genesis time in UTC, such as "
                               "2026-01-01T00:00:00Z (chosen once, when the network was first planned)",
                               hint="restore the file from backup; the genesis time must not change once "
                                    "nodes have started")
        return text
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_private(marker, now.encode())
    return now


def _valid_time(text: str) -> bool:
    m = _GENESIS_TIME.fullmatch(text)
    if m is None:
        return False
    try:
        dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")  # the regex lets 2026-13-45 through
    except ValueError:
        return False
    return True
