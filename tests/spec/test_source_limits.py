"""Hostile YAML: every document is read or refused with a positioned InvalidInput, fast, never a crash."""

from __future__ import annotations

import datetime as dt
import gc
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcops.errors import Diagnostic, InvalidInput
from hcops.spec import limits
from hcops.spec.source import load_yaml, parse_yaml


def _refused(text: str, fname: str = "f.yaml") -> Diagnostic:
    with pytest.raises(InvalidInput) as info:
        parse_yaml(text, fname)
    first = info.value.diagnostics[0]
    assert first.location is not None and first.location.file == fname
    assert first.location.line >= 1 and first.location.column >= 1
    assert info.value.message == first.format()
    return first


def _where(d: Diagnostic) -> tuple[int, int]:
    assert d.location is not None
    return d.location.line, d.location.column


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# --- alias expansion ----------------------------------------------------------------------------------

def test_alias_bomb_is_refused_before_it_is_expanded() -> None:
    text = _bomb()
    assert len(text) < 3000
    start = time.perf_counter()
    d = _refused(text)
    assert time.perf_counter() - start < 2
    assert f"more than {limits.MAX_NODES:,} values and keys" in d.message and "alias" in d.message
    # a5 is the first anchor whose expansion (9^6 values) passes the limit
    assert _where(d) == (6, 5)


def test_alias_fan_out_within_the_limit_is_read_in_full() -> None:
    text = "base: &b [" + ", ".join(["x"] * 1000) + "]\nuses: [" + ", ".join(["*b"] * 100) + "]\n"
    data, where = parse_yaml(text, "f.yaml")
    assert len(data["uses"]) == 100 and all(len(u) == 1000 for u in data["uses"])
    assert data["uses"][0] is not data["uses"][1]  # expanded: each use is its own value with its own positions
    assert where.values[("uses", 99, 999)] == where.values[("base", 999)]


def test_a_plain_document_over_the_node_limit_is_refused_while_composed() -> None:
    n = limits.MAX_NODES + 10
    d = _refused("[" + ",".join(["a"] * n) + "]\n")
    assert f"more than {limits.MAX_NODES:,} values and keys" in d.message


def test_wide_and_deep_data_is_charged_per_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_PATH_STEPS", 50_000)
    wide_and_deep = "[" * 99 + ",".join(["0"] * 1000) + "]" * 99  # 1,000 values 99 levels down: 99,000 steps
    d = _refused(wide_and_deep)
    assert "once per level of nesting" in d.message and _where(d)[0] == 1
    assert parse_yaml("[" * 20 + ",".join(["0"] * 1000) + "]" * 20, "f.yaml")[0]  # 20,000 steps: read


def test_wide_and_deep_through_aliases_is_charged_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_PATH_STEPS", 50_000)
    text = "a: &a [" + ", ".join(["x"] * 100) + "]\nb: " + "[" * 150 + ", ".join(["*a"] * 5) + "]" * 150 + "\n"
    assert "once per level of nesting" in _refused(text).message


# --- depth ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 1000 + "]" * 1000, "{a: " * 1000 + "1" + "}" * 1000, "- " * 1000 + "x\n",
                                  "".join(" " * i + "a:\n" for i in range(1000)) + " " * 1000 + "1\n"])
def test_nesting_past_the_limit_is_refused_with_a_position(text: str) -> None:
    d = _refused(text)
    assert f"nested more than {limits.MAX_DEPTH} levels deep" in d.message


def test_nesting_up_to_the_limit_is_read() -> None:
    depth = limits.MAX_DEPTH
    data, _ = parse_yaml("[" * depth + "1" + "]" * depth, "f.yaml")  # the scalar sits at level 200
    for _ in range(depth):
        data = data[0]
    assert data == 1
    _refused("[" * (depth + 1) + "1" + "]" * (depth + 1))


def test_deep_alias_chains_count_as_the_nesting_they_produce() -> None:
    chain = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 300))
    assert "nested more than" in _refused(chain).message
    merges = "a0: &a0 {k: 1}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: 1}}\n" for i in range(1, 300))
    assert "nested more than" in _refused(merges).message


_DEEP_IN_A_CHILD = textwrap.dedent("""
    import json, sys
    from hcops.errors import InvalidInput
    from hcops.spec.source import parse_yaml
    n = int(sys.argv[1])
    texts = {"flow": "[" * n + "]" * n, "flow-map": "{a: " * n + "1" + "}" * n, "block": "- " * n + "x\\n",
             "mixed": "- " * n + "[" * n + "x" + "]" * n + "\\n"}
    out = {}
    for name, text in texts.items():
        try:
            parse_yaml(text, "deep.yaml")
            out[name] = "read"
        except InvalidInput as exc:
            out[name] = exc.diagnostics[0].format()
    print(json.dumps(out))
""")


@pytest.mark.parametrize("levels", [30_000, 100_000])
def test_very_deep_nesting_does_not_crash_the_interpreter(levels: int) -> None:
    # In a child: PyYAML's C composer used to overflow the C stack here (a segfault would end pytest).
    r = subprocess.run([sys.executable, "-c", _DEEP_IN_A_CHILD, str(levels)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    for name, message in json.loads(r.stdout).items():
        assert message.startswith("deep.yaml:1:") and "nested more than" in message, (name, message)


_EVENTS_IN_A_CHILD = textwrap.dedent("""
    import sys, yaml
    n = int(sys.argv[1])
    for text in ("- " * n + "x\\n", "[" * (n // 10) + "]" * (n // 10)):
        depth = deepest = 0
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            deepest = max(deepest, depth)
        print(deepest)
""")


def test_libyaml_parses_deep_nesting_without_recursing() -> None:
    # Why stopping inside the composer is enough: libyaml's parser keeps its own stacks (flow nesting
    # costs it time per level, not C stack), only PyYAML's composer recursed.
    r = subprocess.run([sys.executable, "-c", _EVENTS_IN_A_CHILD, "100000"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["100000", "10000"]


# --- tags ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "tag"), [
    ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system"),
    ("a: !!python/object:os.Foo {x: 1}\n", "!!python/object:os.Foo"),
    ("a: !foo {a: 1}\n", "!foo"),
    ("a: !!set {x, y}\n", "!!set"),
    ("a: !!omap [x: 1]\n", "!!omap"),
    ("a: !!pairs [x: 1]\n", "!!pairs"),
    ("a:\n  - !vault\n    k: v\n", "!vault"),
    ("!!python/name:os.system key: 1\n", "!!python/name:os.system"),
])
def test_explicit_tags_on_collections_and_keys_are_refused(text: str, tag: str) -> None:
    d = _refused(text)
    assert d.message.startswith(f"invalid YAML: unsupported tag {tag}")
    assert _where(d)[0] == text[:text.index(tag)].count("\n") + 1


def test_standard_collection_tags_are_what_they_say() -> None:
    data, _ = parse_yaml("a: !!map {x: 1}\nb: !!seq [1]\nc: ! [2]\n", "f.yaml")
    assert data == {"a": {"x": 1}, "b": [1], "c": [2]}


# --- scalars, recursion --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["2026-99-99", "banana", "2026-01-01 99:00:00", "2026-01-01 10:00:00 +99", ""])
def test_invalid_explicit_timestamps_are_errors_with_position(value: str) -> None:
    d = _refused(f"a: 1\nb: !!timestamp '{value}'\n")
    assert _where(d) == (2, 4) and "!!timestamp" in d.message


def test_valid_explicit_timestamps_still_read() -> None:
    data, _ = parse_yaml("a: !!timestamp 2026-01-31\nb: !!timestamp '2026-01-31 10:00:00Z'\n", "f.yaml")
    assert data["a"] == dt.date(2026, 1, 31) and data["b"].tzinfo is not None


@pytest.mark.parametrize(("text", "line", "column", "anchor"), [
    ("&a [*a]\n", 1, 5, "a"),
    ("&a {<<: *a}\n", 1, 9, "a"),
    ("a: &x {b: *x}\n", 1, 11, "x"),
    ("a: &x\n  b:\n    - c: 1\n    - *x\n", 4, 7, "x"),
    ("a: &x\n  <<: [{c: 1}, *x]\n", 2, 16, "x"),
])
def test_recursive_aliases_point_at_the_alias(text: str, line: int, column: int, anchor: str) -> None:
    d = _refused(text)
    assert _where(d) == (line, column)
    assert f"recursive alias *{anchor}" in d.message


def test_huge_scalars_are_shortened_in_messages() -> None:
    d = _refused("a: !!int '" + "9" * 100_000 + "'\n")
    assert len(d.message) < 300 and "more characters" in d.message


def test_a_flood_of_problems_stops_at_the_cap() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_yaml("{" + ", ".join(["a: 1"] * 5000) + "}\n", "f.yaml")
    assert len(info.value.diagnostics) == limits.MAX_PROBLEMS + 1
    assert info.value.diagnostics[-1].message == f"stopped after {limits.MAX_PROBLEMS} problems"


def test_the_garbage_collector_is_restored() -> None:
    assert gc.isenabled()
    parse_yaml("a: 1\n", "f.yaml")
    with pytest.raises(InvalidInput):
        parse_yaml("&a [*a]\n", "f.yaml")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_yaml("a: 1\n", "f.yaml")
        assert not gc.isenabled()  # someone else's choice is kept
    finally:
        gc.enable()


# --- hostile characters and bytes ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "column"), [
    ("a: 1\nb: x\x00y\n", 2, 5),
    ("a: 1\nbé: \x07\n", 2, 5),
    ("a: 1\nb: \ud800\n", 2, 4),
    ("a: 1\nb: \x1b[31m\n", 2, 4),
])
def test_forbidden_characters_are_errors_with_position(text: str, line: int, column: int) -> None:
    d = _refused(text)
    assert _where(d) == (line, column), d


def test_odd_but_valid_characters_are_read() -> None:
    assert parse_yaml("\ufeffa: 1\n", "f.yaml")[0] == {"a": 1}
    assert parse_yaml("a: 1\x85b: 2\n", "f.yaml")[0] == {"a": 1, "b": 2}  # NEL is a YAML 1.1 line break
    assert parse_yaml("a: 'x\u2028y'\n", "f.yaml")[0] == {"a": "x\u2028y"}
    big = "x" * 10_000_000
    assert parse_yaml(f"a: {big}\n", "f.yaml")[0] == {"a": big}


def test_several_documents_point_at_the_second(tmp_path: Path) -> None:
    d = _refused("a: 1\n---\nb: 2\n")
    assert "found 2" in d.message and _where(d)[0] == 3


@pytest.mark.parametrize(("raw", "line", "column"), [
    (b"a: 1\nb: caf\xe9\n", 2, 7),
    (b"\xff\xfea\x00:\x00", 1, 1),  # UTF-16
    (b"a: 1\n\xc3\xa9\xc3\n", 2, 2),
])
def test_files_that_are_not_utf8_point_at_the_first_bad_byte(tmp_path: Path, raw: bytes, line: int,
                                                               column: int) -> None:
    f = tmp_path / "spec.yaml"
    f.write_bytes(raw)
    with pytest.raises(InvalidInput) as info:
        load_yaml(f)
    (d,) = info.value.diagnostics
    assert "not UTF-8" in d.message and d.location is not None
    assert _where(d) == (line, column)


def test_a_symlink_loop_is_a_read_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(InvalidInput, match="cannot read spec file"):
        load_yaml(tmp_path / "a.yaml")


@pytest.mark.parametrize(("text", "expect"), [("", "is empty"), ("hello\n", "got a scalar"),
                                              ("- a\n", "got a list"), ("---\n...\n", "is empty")])
def test_documents_that_are_not_mappings(tmp_path: Path, text: str, expect: str) -> None:
    f = tmp_path / "spec.yaml"
    f.write_text(text)
    with pytest.raises(InvalidInput, match=expect):
        load_yaml(f)


# --- fuzzing -------------------------------------------------------------------------------------------

_TAGS = ["!!python/object/apply:os.system", "!foo", "!!set", "!!omap", "!!map", "!!seq", "!!str", "!!int",
         "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!", "!!merge", "!<tag:yaml.org,2002:str>"]
_WORDS = ["a", "1", "0x_", "2026-99-99", "banana", "~", "", "'q'", '"\\u0000"', '"\\udc80"', "<<", "-", "?", ":",
          "1e999", "9" * 5000, ".nan", "\u0085", "\ufeff", "\x00", "\x1b[31m", "\u2028", "&", "*", "|", ">", "#"]
_chars = st.text(st.characters(codec=None, exclude_categories=()), max_size=4)
_scalars = st.one_of(st.sampled_from(_WORDS), _chars)
_props = st.tuples(st.none() | st.sampled_from(_TAGS), st.none() | st.sampled_from("abc"))
_aliases = st.sampled_from("abcd").map(lambda a: "*" + a)


def _with_props(props: tuple[str | None, str | None], body: str) -> str:
    tag, anchor = props
    return " ".join([*([tag] if tag else []), *([f"&{anchor}"] if anchor else []), body])


_flow: st.SearchStrategy[str] = st.recursive(
    st.one_of(_scalars, _aliases),
    lambda inner: st.one_of(
        st.tuples(_props, st.lists(inner, max_size=4)).map(lambda t: _with_props(t[0], "[" + ", ".join(t[1]) + "]")),
        st.tuples(_props, st.lists(st.tuples(st.sampled_from(["<<", "k", "a"]) | inner, inner), max_size=4)).map(
            lambda t: _with_props(t[0], "{" + ", ".join(f"{k}: {v}" for k, v in t[1]) + "}")),
        st.tuples(st.integers(1, 400), inner).map(lambda t: "[" * t[0] + t[1] + "]" * t[0])),
    max_leaves=20)


def _block(items: list[tuple[str, str]], indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{key}:\n{pad}  {value}\n" if key == "-" else f"{pad}{key}: {value}\n"
                   for key, value in items)


_documents = st.one_of(
    _flow,
    st.lists(st.tuples(st.sampled_from(["a", "b", "<<", "-", "? x"]), _flow), min_size=1, max_size=5).map(
        lambda items: _block(items, 0)),
    st.tuples(_flow, st.integers(0, 200), st.sampled_from(["\x00", "\ud800", "\x85", "\ufeff", "---\n", "\n...\n",
                                                           "\t", "\r", "%YAML 1.1\n", "[" * 300, "- " * 300])).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=_documents)
def test_hostile_documents_are_read_or_refused_with_a_position(text: str) -> None:
    try:
        parse_yaml(text, "h.yaml")
    except InvalidInput as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.location is not None and d.location.file == "h.yaml"
            assert d.location.line >= 1 and d.location.column >= 1


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=64), prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"a: 1\n"]))
def test_hostile_bytes_are_read_or_refused_with_a_position(raw: bytes, prefix: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        f = Path(folder) / "spec.yaml"
        f.write_bytes(prefix + raw)
        try:
            load_yaml(f)
        except InvalidInput as exc:
            assert exc.diagnostics and all(d.location is not None for d in exc.diagnostics)
