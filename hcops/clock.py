"""The clock and the UTC time formats hcops writes.

Everything that stamps a time asks ``now()`` (or a ``Clock`` it was given, so that tests can fix the time)
and writes it with one of the formats below, never with a strftime of its own: a record, a state file and
a report must agree on how a time reads, and ``parse_time`` must read back whatever hcops wrote.

This module is at the bottom layer: it imports nothing from hcops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]

# Seconds are what a person compares (state files, genesis, reports); records keep microseconds so that
# two records of one second still sort in the order they were written.
_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"
# No separators: it becomes part of file names and ids.
_STAMP = "%Y%m%dT%H%M%SZ"


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today's date where hcops runs: waivers and birth-date checks are written as calendar dates."""
    return dt.date.today()


def format_time(t: dt.datetime) -> str:
    """``2026-01-01T00:00:00Z``: to the second (genesis times, state files, reports)."""
    return t.astimezone(dt.UTC).strftime(_SECONDS)


def now_text(t: dt.datetime | None = None) -> str:
    """``2026-01-01T00:00:00.000000Z``: an audit record's time (``t``, else now), to the microsecond."""
    return (t or now()).astimezone(dt.UTC).strftime(_MICROSECONDS)


def stamp(t: dt.datetime) -> str:
    """``20260101T000000Z``: the time part of file names and ids (sweeps, backups, runs, crash logs)."""
    return t.astimezone(dt.UTC).strftime(_STAMP)


def parse_time(text: object) -> dt.datetime | None:
    """A time hcops wrote (either format above), or None when ``text`` is not one: the audit database is
    user-writable, and a tampered time must give a finding, not a crash. A time without a zone is UTC,
    as hcops writes them."""
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
