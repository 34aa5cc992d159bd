"""hcops.clock: the one clock and the UTC formats every record, state file and report is written in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hcops import clock
from hcops.plan.state import genesis_time

T = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
PARIS = dt.timezone(dt.timedelta(hours=1))


def test_now_is_aware_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    t = clock.now()
    assert t.tzinfo is dt.UTC and before <= t <= dt.datetime.now(dt.UTC)


def test_the_formats() -> None:
    assert clock.format_time(T) == "2026-03-04T05:06:07Z"
    assert clock.now_text(T) == "2026-03-04T05:06:07.891011Z"
    assert clock.stamp(T) == "20260304T050607Z"


def test_other_zones_are_written_in_utc() -> None:
    local = T.astimezone(PARIS)
    assert local.hour == 6
    assert (clock.format_time(local), clock.now_text(local), clock.stamp(local)) == (
        "2026-03-04T05:06:07Z", "2026-03-04T05:06:07.891011Z", "20260304T050607Z")


def test_now_text_defaults_to_now() -> None:
    before = clock.now_text()
    assert before <= clock.now_text() and before.endswith("Z") and len(before) == len("2026-03-04T05:06:07.891011Z")


@pytest.mark.parametrize("text", ["2026-03-04T05:06:07Z", "2026-03-04T05:06:07.891011Z"])
def test_parse_time_reads_back_what_hcops_writes(text: str) -> None:
    t = clock.parse_time(text)
    assert t is not None and t.tzinfo is not None
    assert clock.format_time(t) == "2026-03-04T05:06:07Z"


def test_parse_time_reads_a_time_without_zone_as_utc() -> None:
    assert clock.parse_time("2026-03-04T05:06:07") == T.replace(microsecond=0)
    assert clock.parse_time("2026-03-04T06:06:07+01:00") == T.replace(microsecond=0)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-45T00:00:00Z", None, 42])
def test_parse_time_gives_none_for_what_is_not_a_time(text: object) -> None:
    assert clock.parse_time(text) is None


def test_a_given_clock_decides_the_genesis_time(tmp_path: Path) -> None:
    assert genesis_time(tmp_path, clock=lambda: T) == "2026-03-04T05:06:07Z"
    assert genesis_time(tmp_path) == "2026-03-04T05:06:07Z"  # chosen once, then kept
