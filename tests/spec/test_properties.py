"""Property-based: random corruptions of a valid spec always give exit 2 with FILE:LINE, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tests.cli_helpers import run_cli
from tests.conftest import SMALL_SPEC

POSITION = re.compile(r"^\S+\.yaml:\d+:\d+: error: ", re.MULTILINE)


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, here + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, here + (i,))
    return out


BASE = YAML(typ="safe").load(SMALL_SPEC)
PATHS = _paths(BASE)
REQUIRED = [("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("spec",), ("spec", "chain"),
            ("spec", "chain", "image"), ("spec", "chain", "chainId"), ("spec", "chain", "version"),
            ("spec", "organizations"), ("spec", "organizations", 0, "name"), ("spec", "organizations", 1, "role")]
WRONG_VALUES = st.sampled_from([[1, 2], {"x": 1}, "not-a-valid value!", -7, 3.5, True])


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _dump(doc: Any, path: Path) -> None:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w") as fh:
        yaml.dump(doc, fh)


def _check(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    r = run_cli(capsys, "validate", "-f", str(spec))
    assert r.code == 2, r.out + r.err
    assert "Traceback" not in r.out + r.err
    assert POSITION.search(r.err), r.err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(REQUIRED))
def test_deleting_a_required_key(capsys: pytest.CaptureFixture[str], tmp_path: Path, path: tuple[Any, ...]) -> None:
    doc = YAML(typ="safe").load(SMALL_SPEC)
    del _get(doc, path[:-1])[path[-1]]
    _dump(doc, tmp_path / "spec.yaml")
    _check(capsys, tmp_path / "spec.yaml")


TYPED_LEAVES = [p for p in PATHS if isinstance(_get(BASE, p), bool | int) or p[-1] in
                ("chainId", "image", "version", "blockInterval", "role", "name", "apiVersion", "kind")]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(TYPED_LEAVES), value=WRONG_VALUES)
def test_wrong_types(capsys: pytest.CaptureFixture[str], tmp_path: Path, path: tuple[Any, ...], value: Any) -> None:
    doc = YAML(typ="safe").load(SMALL_SPEC)
    if _get(doc, path) == value or (path[-1] == "signed" and isinstance(value, bool)):
        return
    if path[-1] == "power" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return
    _get(doc, path[:-1])[path[-1]] = value
    _dump(doc, tmp_path / "spec.yaml")
    r = run_cli(capsys, "validate", "-f", str(tmp_path / "spec.yaml"))
    if r.code == 0:
        # some substitutions stay valid (e.g. a string name that is still DNS-1123); nothing to assert
        return
    assert r.code == 2 and "Traceback" not in r.err and POSITION.search(r.err), r.err


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(org=st.integers(0, 3), kind=st.sampled_from(["org", "node"]))
def test_duplicated_names(capsys: pytest.CaptureFixture[str], tmp_path: Path, org: int, kind: str) -> None:
    doc = YAML(typ="safe").load(SMALL_SPEC)
    orgs = doc["spec"]["organizations"]
    if kind == "org":
        orgs[(org + 1) % 4]["name"] = orgs[org]["name"]
    else:
        orgs[(org + 1) % 4]["nodes"][0]["name"] = orgs[org]["nodes"][0]["name"]
    _dump(doc, tmp_path / "spec.yaml")
    _check(capsys, tmp_path / "spec.yaml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, len(SMALL_SPEC) - 1), junk=st.sampled_from(["[", "{", ": :", "\t", "'", "- -\n  x: [", "&a *b"]))
def test_broken_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path, cut: int, junk: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL_SPEC[:cut] + junk + SMALL_SPEC[cut:])
    r = run_cli(capsys, "validate", "-f", str(spec))
    assert r.code in (0, 2), r.err
    assert "Traceback" not in r.out + r.err
    if r.code == 2:
        assert POSITION.search(r.err), r.err
