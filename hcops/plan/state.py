"""Where a network's local state lives: ``.hcops/<network>/`` unless told otherwise."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from hcops.clock import Clock, format_time, now
from hcops.errors import InvalidInput
from hcops.fsutil import read_file, write_private
from hcops.settings import Settings, resolve

# RFC 3339 in UTC, as CometBFT writes genesis times (fractional seconds down to nanoseconds).
_GENESIS_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z")


def state_root(override: Path | None = None, settings: Settings | None = None) -> Path:
    """``--state-dir`` (``override``), else what the settings say."""
    return override if override is not None else resolve(settings).state_root()


def network_dir(network: str, override: Path | None = None, settings: Settings | None = None) -> Path:
    return state_root(override, settings) / network


def genesis_time(folder: Path, clock: Clock = now) -> str:
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
    chosen = format_time(clock())
    write_private(marker, chosen.encode())
    return chosen


def _valid_time(text: str) -> bool:
    m = _GENESIS_TIME.fullmatch(text)
    if m is None:
        return False
    try:
        dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")  # the regex lets 2026-13-45 through
    except ValueError:
        return False
    return True
