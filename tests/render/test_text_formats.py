"""The two hand-written serialisers: TOML (byte-identical to tomli_w) and the YAML filter (round-trips)."""

from __future__ import annotations

from typing import Any

import pytest
import tomli_w
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hcops.render import toml
from hcops.render.base import to_json, to_yaml, yaml_key

KEYS = st.text(max_size=12)
SCALARS = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=40))
ARRAYS = st.recursive(st.lists(SCALARS, max_size=4), lambda inner: st.lists(inner, max_size=3), max_leaves=8)
TABLES = st.recursive(st.dictionaries(KEYS, st.one_of(SCALARS, ARRAYS), max_size=5),
                      lambda inner: st.dictionaries(KEYS, st.one_of(SCALARS, ARRAYS, inner), max_size=4),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(doc=TABLES)
def test_toml_is_byte_identical_to_tomli_w(doc: dict[str, Any]) -> None:
    assert toml.dumps(doc) == tomli_w.dumps(doc)


@pytest.mark.parametrize("doc", [
    {"a": 1.5}, {"when": __import__("datetime").date(2026, 1, 1)}, {"aot": [{"a": 1}, {"b": 2}]},
    {"inline": [{"a": 1}, 2]}, {"s": "tab\there", "ctl": "\x01\x7f", "quote": 'say "hi" \\'},
])
def test_toml_falls_back_to_tomli_w(doc: dict[str, Any]) -> None:
    assert toml.dumps(doc) == tomli_w.dumps(doc)


def test_toml_of_a_real_config_is_identical(tmp_path: Any) -> None:
    from tests.render.helpers import fixture_plan

    plan = fixture_plan(tmp_path)
    for node in plan.nodes:
        for config in (plan.docker_config(node), plan.host_config(node), plan.kubernetes_config(node, "x")):
            assert toml.dumps(config) == tomli_w.dumps(config)


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
              st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
                       min_size=2, max_size=5).map(lambda lines: "\n".join(lines) + "\n")),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(value=YAML_VALUES, indent=st.integers(2, 8))
def test_yaml_filter_round_trips(value: Any, indent: int) -> None:
    text = "root:" + to_yaml(value, indent) + "\n"  # nested deeper than its key: YAML only needs "more"
    assert yaml.safe_load(text) == {"root": value}


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=15), value=st.text(max_size=30))
def test_keys_and_strings_are_never_reinterpreted(key: str, value: str) -> None:
    assert yaml.safe_load(f"{yaml_key(key)}: {to_json(value)}\n") == {key: value}


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF", "y", "n", "true", "null", "~", "1", "1e3", "0x1f",
                                  ".inf", "-", "a: b", "#x", "&a", "*a", "!tag", "<<", "=", "2026-01-01"])
def test_yaml_special_words_stay_strings(word: str) -> None:
    assert yaml.safe_load(f"{yaml_key(word)}: {to_json(word)}\n") == {word: word}
