"""The YAML reader: YAML 1.2 core scalars, positions, duplicate keys, merge keys; checked against ruamel.yaml."""

from __future__ import annotations

import datetime as dt
import math
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from hcops.errors import InvalidInput, Location
from hcops.spec.source import load_yaml, parse_yaml

SCALARS = [
    "yes", "no", "on", "off", "y", "n", "true", "True", "TRUE", "tRue", "false", "null", "Null", "NULL", "~", "",
    "0755", "0o755", "0x1F", "0b101", "1_000", "+12", "-12", "012", "1.5", "1e3", "1.5e3", "-.inf", ".inf",
    "1.", "-0", ".5", "+.5", "1e+3", "1E3", "2026-01-01", "2026-01-01 10:00:00", "12:30:00", "1:20", "0o8",
    "'quoted'", '"123"', "!!int '7'", "!!float '1'", "!!bool 'true'", "!!null ''", "abc", "3.14.15", "1,000",
    "1e", "e3", "0b", "0x", "+", ".", "-.5e-3", "hcops/v1alpha1", "500m", "10Gi", "164.312(a)(1)",
]


def _ruamel(text: str) -> Any:
    return YAML(typ="rt").load(StringIO(text))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.utcoffset() == b.utcoffset()
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a == b
    return type(a) is type(b) or (isinstance(a, type(b)) or isinstance(b, type(a))) and a == b


@pytest.mark.parametrize("scalar", SCALARS)
def test_plain_scalars_follow_yaml_1_2_like_ruamel(scalar: str) -> None:
    text = f"k: {scalar}\n"
    ours, _ = parse_yaml(text, "t.yaml")
    theirs = _ruamel(text)["k"]
    assert ours["k"] == theirs or _same(ours["k"], theirs), (scalar, ours["k"], theirs)
    assert type(ours["k"]) in (type(theirs), *type(theirs).__mro__) or ours["k"] is None is theirs


def test_yaml_1_1_words_stay_strings() -> None:
    data, _ = parse_yaml("a: on\nb: yes\nc: 0755\nd: 0o755\ne: 2026-01-31\n", "t.yaml")
    assert data == {"a": "on", "b": "yes", "c": 755, "d": 0o755, "e": dt.date(2026, 1, 31)}


def test_positions_of_keys_values_and_items() -> None:
    data, where = parse_yaml("top:\n  list:\n    - one\n    - {x: 1}\n  key: value\n", "f.yaml")
    assert data == {"top": {"list": ["one", {"x": 1}], "key": "value"}}
    assert where.keys[("top", "key")] == Location("f.yaml", 5, 3)
    assert where.values[("top", "key")] == Location("f.yaml", 5, 8)
    assert where.values[("top", "list", 1)] == Location("f.yaml", 4, 7)
    assert where.values[("top", "list", 1, "x")] == Location("f.yaml", 4, 11)


def test_duplicate_keys_name_both_lines() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    (d,) = info.value.diagnostics
    assert d.location == Location("f.yaml", 4, 3)
    assert "duplicate key 'c'" in d.message and "line 3" in d.message


def test_merge_keys_expand_and_explicit_keys_win() -> None:
    data, where = parse_yaml("base: &b {cpu: 1, mem: 2}\nnode:\n  <<: *b\n  mem: 3\n", "f.yaml")
    assert data["node"] == {"mem": 3, "cpu": 1}
    assert where.values[("node", "cpu")] == Location("f.yaml", 1, 16)


def test_unknown_tags_are_errors_with_position() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_yaml("a: 1\nb: !vault secret\n", "f.yaml")
    assert info.value.diagnostics[0].location == Location("f.yaml", 2, 4)


def test_several_documents_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(InvalidInput, match="one YAML document"):
        load_yaml(f)


_keys = st.text(alphabet="abcxyz_-", min_size=1, max_size=6)
# libyaml follows YAML 1.1 in one corner: a plain scalar may not start with ":" (ruamel writes `[:0]` in flow
# style); every other string is compared.
_strings = st.text(alphabet="abc 019.:-#'\"", max_size=8).filter(lambda s: not s.startswith(":"))
_leaves = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.none(), st.sampled_from(SCALARS[:40]), _strings)
_docs = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(_keys, inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.dictionaries(_keys, _docs, min_size=1, max_size=4), flow=st.booleans())
def test_random_documents_read_like_ruamel(doc: dict[str, Any], flow: bool) -> None:
    out = StringIO()
    writer = YAML(typ="rt")
    writer.default_flow_style = flow
    writer.dump(doc, out)
    text = out.getvalue()
    ours, _ = parse_yaml(text, "r.yaml")
    assert ours == _ruamel(text)


def test_lone_surrogate_escapes_are_invalid_yaml_not_a_crash_later() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_yaml('cors: ["https://a\\udc80.example"]\n', "f.yaml")
    (d,) = info.value.diagnostics
    assert d.location is not None and d.location.line == 1 and "invalid YAML" in d.message


@pytest.mark.parametrize("scalar", ["0b_", "+0x_", "2026-13-45", "2026-02-30 25:61:00"])
def test_impossible_numbers_and_dates_are_errors_with_position(scalar: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_yaml(f"a: 1\nk: {scalar}\n", "f.yaml")
    (d,) = info.value.diagnostics
    assert d.location == Location("f.yaml", 2, 4) and "quote it" in d.message
