"""Property tests for the pure parts of the policy layer."""

from __future__ import annotations

import re
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from hcops.errors import Location
from hcops.policy.engines.base import EngineResult, PackageResult
from hcops.policy.findings import build_findings, locate_path, parent_path
from hcops.policy.formats import escape_data, escape_property
from hcops.policy.regosrc import offset_to_position, scan

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
raw_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(["id", "msg", "resource", "path", "x"]), inner,
                                            max_size=4), max_leaves=8)


@given(st.text())
def test_escapes_are_reversible_and_safe(text: str) -> None:
    data, prop = escape_data(text), escape_property(text)
    assert "\n" not in data and "\r" not in data
    assert not re.search(r"[\r\n:,]", prop)
    assert unquote(data) == text and unquote(prop) == text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
@settings(max_examples=200)
def test_scanner_never_raises(source: str) -> None:
    info = scan("fuzz.rego", source)
    assert all(r.line >= 1 for r in info.rules)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), st.data())
def test_offset_to_position_agrees_with_characters(source: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(source)))
    line, col = offset_to_position(source, len(source[:index].encode("utf-8")))
    before = source[:index]
    assert line == before.count("\n") + 1
    assert col == index - (before.rfind("\n") + 1) + 1


path_segments = st.lists(
    st.sampled_from(["organizations", "nodes", "power", "network", "rpc"]).map(lambda s: "." + s)
    | st.integers(0, 9).map(lambda i: f"[{i}]"), max_size=6)


@given(path_segments, st.sets(st.integers(0, 6)))
def test_locate_uses_the_longest_locatable_prefix(segments: list[str], known: set[int]) -> None:
    path = "spec" + "".join(segments)
    prefixes = ["spec" + "".join(segments[:i]) for i in range(len(segments) + 1)]
    table = {p: Location("f", i + 1) for i, p in enumerate(prefixes) if i in known}
    expected = max((i for i in known if i < len(prefixes)), default=None)
    loc = locate_path(table.get, path)
    assert loc == (None if expected is None else Location("f", expected + 1))
    if segments:
        assert parent_path(path) == prefixes[-2]


@given(st.lists(raw_values, max_size=8), st.lists(raw_values, max_size=8))
def test_no_raw_finding_is_dropped(deny: list[object], warn: list[object]) -> None:
    result = EngineResult("x", (PackageResult("p", tuple(deny), tuple(warn)),))
    findings = build_findings(result, {}, lambda _: None)
    if deny:
        assert any(f.level == "deny" for f in findings)
    if warn:
        assert any(f.level == "warn" for f in findings)
    assert all(f.severity == "high" and f.control == "unknown" for f in findings)
    assert findings == sorted(findings, key=lambda f: f.sort_key())
