"""The wasm engine: the shipped modules are current, the host built-ins behave as OPA's, and the engine
evaluates like the embedded one, fails closed and stays within its limits.

Compiling policies other than the shipped packs needs the OPA binary: those tests fail under CI=true
without it and skip elsewhere (tests/integration/requirements.py).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import EnvironmentProblem, HcopsError, InvalidInput
from hcops.policy.engines import EmbeddedEngine, WasmEngine
from hcops.policy.engines.limits import EngineLimitExceeded, EngineLimits
from hcops.policy.engines.wasm_builtins import HOST_BUILTINS, parse_duration_ns, regex_split
from hcops.policy.engines.wasm_fmt import BuiltinError, Num, RSet, go_float_v, parse_value_dump, rego_text, sprintf
from hcops.policy.engines.wasm_pack import (
    EVAL_ENTRYPOINTS,
    REGENERATE,
    builtin_packs,
    find_shipped,
    policy_digest,
    shipped_manifest,
)
from hcops.policy.sources import collect_policies, modules_of
from tests.integration.requirements import binary

from .conftest import PACK, SELFTEST, USER

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def opa() -> Path:
    return binary("opa", "opa")


# ------------------------------------------------------------------------------------- the shipped modules
def test_the_shipped_modules_are_compiled_from_the_current_policies() -> None:
    manifest = shipped_manifest()
    for name, policy in builtin_packs(ROOT / "policies").items():
        entry = manifest["packs"][name]
        assert entry["digest"] == policy_digest(policy), (
            f"hcops/policy/engines/wasm/{name}.wasm is stale: policies/ changed since it was compiled; "
            f"run `{REGENERATE}`")
        assert find_shipped(entry["digest"]) is not None, f"{name}.wasm does not match its SHA-256; run {REGENERATE}"


def test_the_shipped_modules_need_only_host_builtins_hcops_provides() -> None:
    for entry in shipped_manifest()["packs"].values():
        assert set(entry["hostBuiltins"]) <= set(HOST_BUILTINS)
        assert entry["entrypoints"] == sorted(EVAL_ENTRYPOINTS)


def test_the_policy_digest_ignores_file_names_but_not_sources() -> None:
    assert policy_digest({"a.rego": "x", "b.rego": "y"}) == policy_digest({"q/b.rego": "x", "r.rego": "y"})
    assert policy_digest({"a.rego": "x"}) != policy_digest({"a.rego": "x "})


@pytest.mark.parametrize("parallel", [True, False])
def test_the_built_in_pack_evaluates_like_the_embedded_engine(parallel: bool) -> None:
    modules = modules_of(collect_policies(builtin_dir=ROOT / "policies"))
    engine = WasmEngine(parallel=parallel)
    for name in ("example", "violations/HC-AC1-RPC-PUBLIC", "violations/HC-CP1-BACKUP-SCHEDULE-MISSING"):
        path = ROOT / "policies" / "testdata" / name / "input.json"
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        result = engine.evaluate(modules, doc, {})
        assert engine.last_source == "shipped"
        assert result.engine == "wasm"
        assert result.comparable() == EmbeddedEngine().evaluate(modules, doc, {}).comparable(), name


def test_the_halves_of_the_entry_cover_every_package_once() -> None:
    from hcops.policy.engines.wasm_pack import PARTS_FILENAME

    policy = builtin_packs(ROOT / "policies")["gate"]
    parts = policy[PARTS_FILENAME]
    entry_lines = [ln for ln in policy["__hcops_engine_entry__.rego"].splitlines() if ln.startswith("\t")]
    part_lines = [ln for ln in parts.splitlines() if ln.startswith("\t")]
    assert sorted(entry_lines) == sorted(part_lines)
    assert "part0 := {" in parts and "part1 := {" in parts


# ------------------------------------------------------------------------------------- host built-ins
@pytest.mark.parametrize(("fmt", "args", "expected"), [
    ("node/%s", ["a"], "node/a"),
    ("%d of %d", [Num("3"), Num("10")], "3 of 10"),
    ("%v %v %v", [Num("1.50"), Num("1e3"), Num("7")], "1.5 1000 7"),
    ("%v", [[Num("1"), "a", None]], '[1, "a", null]'),
    ("%s", [RSet(("b", "a"))], '{"a", "b"}'),
    ("%v", [{"b": Num("1"), "a": True}], '{"a": true, "b": 1}'),
    ("%s", [Num("5")], "%!s(int=5)"),
    ("%d", ["x"], "%!d(string=x)"),
    ("%s %s", ["a"], "a %!s(MISSING)"),
    ("x", ["a", Num("2")], "x%!(EXTRA string=a, int=2)"),
    ("%5s|%-4d|%03d|%%", ["ab", Num("7"), Num("5")], "   ab|7   |005|%"),
    ("%q", ['a"b'], '"a\\"b"'),
    ("%.2f", [Num("1.005e1")], "10.05"),
    ("100%", [], "100%!(NOVERB)"),
])
def test_sprintf_formats_as_go(fmt: str, args: list[Any], expected: str) -> None:
    assert sprintf(fmt, args) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1000.0, "1000"), (1.5, "1.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-05, "1e-05"),
    (0.0001, "0.0001"), (-2.25, "-2.25"),
])
def test_go_float_formatting(value: float, expected: str) -> None:
    assert go_float_v(value) == expected


def test_sprintf_refuses_what_it_cannot_format_exactly() -> None:
    with pytest.raises(BuiltinError):
        sprintf("%[1]s", ["a"])
    with pytest.raises(BuiltinError):
        sprintf("%z", ["a"])
    with pytest.raises(BuiltinError):
        sprintf(1, [])


@pytest.mark.parametrize(("text", "ns"), [
    ("30s", 30 * 10**9), ("1h30m", 5400 * 10**9), ("1.5h", 5400 * 10**9), ("-2m", -120 * 10**9), ("0", 0),
    (".5s", 5 * 10**8), ("300ms", 3 * 10**8), ("1us", 1000), ("1\u00b5s", 1000),
    ("2562047h47m16.854775807s", 2**63 - 1),
])
def test_parse_duration_ns_as_go(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "5", "1x", "s", "1.s.", "2562047h47m16.854775808s", "+"])
def test_parse_duration_ns_errors_as_go(text: str) -> None:
    with pytest.raises(BuiltinError, match="time: "):
        parse_duration_ns(text)


def test_regex_split_as_go() -> None:
    assert regex_split(r"\s+", "a  b c") == ["a", "b", "c"]
    assert regex_split(",", "") == [""]
    assert regex_split(",", "a,,b,") == ["a", "", "b", ""]
    assert regex_split("x*", "axbc") == ["a", "b", "c"]
    with pytest.raises(BuiltinError):
        regex_split("(", "a")


def test_value_dump_parsing() -> None:
    assert parse_value_dump(b'["a", 1, 1.50, {"x": 2}]') == ["a", Num("1"), Num("1.50"), {"x": Num("2")}]
    assert parse_value_dump(b'{1, "x"}') == RSet((Num("1"), "x"))
    assert parse_value_dump(b"set()") == RSet(())
    assert rego_text(parse_value_dump(b'{"a": {1, "x"}, "s": set(), "l": ["\\u00e9\\n"]}')) == \
        '{"a": {1, "x"}, "l": ["\u00e9\\n"], "s": set()}'


# ------------------------------------------------------------------------------------- compiled at run time
def test_user_policies_are_compiled_once_and_cached(opa: Path, violating: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = modules_of(collect_policies([USER], builtin_dir=PACK))
    engine = WasmEngine()
    result = engine.evaluate(modules, violating, {"acme": {"max_power": 50}})
    assert engine.last_source == "compiled"
    assert result.comparable() == EmbeddedEngine().evaluate(modules, violating, {"acme": {"max_power": 50}}).comparable()
    assert len(list((tmp_path / "wasm").glob("*.wasm"))) == 1
    monkeypatch.setenv("HCOPS_OPA_BIN", str(tmp_path / "no-opa"))  # the cached module needs no compiler
    assert WasmEngine().evaluate(modules, violating, {"acme": {"max_power": 50}}).comparable() == result.comparable()


def test_without_the_opa_binary_other_policies_are_an_environment_problem(
        violating: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path))
    monkeypatch.setenv("HCOPS_OPA_BIN", str(tmp_path / "no-opa"))
    with pytest.raises(EnvironmentProblem, match="OPA binary"):
        WasmEngine().evaluate(modules_of(collect_policies(builtin_dir=PACK)), violating, {})


def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, opa: Path) -> None:
    """Compiled modules go to an empty cache of the test's own."""
    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path))
    monkeypatch.setenv("HCOPS_OPA_BIN", str(opa))


def _module(body: str, head: str = "deny contains f if") -> dict[str, str]:
    return {"p.rego": f"package p\n\nimport rego.v1\n\n{head} {{\n\t{body}\n}}\n"}


@pytest.mark.parametrize("body", [
    'f := time.parse_duration_ns("forever")',  # host built-in: strict
    'f := sprintf("%[1]s", ["a"])',             # a format the host refuses rather than guess
])
def test_host_builtin_errors_fail_closed(opa: Path, body: str, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = _module(body)
    with pytest.raises(InvalidInput, match="policy evaluation failed"):
        WasmEngine().evaluate(modules, {"k": 1}, {})


def test_conflicting_values_fail_closed(opa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = {"p.rego": "package p\n\nimport rego.v1\n\nv := 1 if input.a\n\nv := 2 if input.b\n\n"
                         "deny contains v\n"}
    with pytest.raises(HcopsError):
        WasmEngine().evaluate(modules, {"a": True, "b": True}, {})


def test_a_builtin_the_host_lacks_is_refused_before_evaluating(opa: Path, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = _module('f := crypto.x509.parse_certificates("x")')
    with pytest.raises(EnvironmentProblem, match="crypto.x509.parse_certificates"):
        WasmEngine().evaluate(modules, {}, {})


def test_the_time_limit_stops_an_evaluation(opa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = _module("some i in numbers.range(1, 100000000)\n\tf := i * 2\n\tf < 0")
    engine = WasmEngine(EngineLimits(timeout_s=1.0))
    start = time.monotonic()
    with pytest.raises(EngineLimitExceeded, match="time limit"):
        engine.evaluate(modules, {}, {})
    assert time.monotonic() - start < 30


def test_the_memory_limit_stops_an_evaluation(opa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = _module("xs := numbers.range(1, 50000000)\n\tf := count(xs)")
    with pytest.raises(EngineLimitExceeded):
        WasmEngine(EngineLimits(memory_mb=64)).evaluate(modules, {}, {})


def test_cancel_stops_an_evaluation(opa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = _module("some i in numbers.range(1, 100000000)\n\tf := i * 2\n\tf < 0")
    engine = WasmEngine()
    engine.evaluate(_module("f := 1"), {}, {})  # compiled and instantiated before the clock starts
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.evaluate(modules, {}, {})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while not engine._running and worker.is_alive() and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.05)
    engine.cancel()
    worker.join(60)
    assert not worker.is_alive()
    assert errors and isinstance(errors[0], InvalidInput)
    with pytest.raises(InvalidInput, match="cancelled"):  # as the embedded engine: cancelled for good
        engine.evaluate(_module("f := 1"), {}, {})


def test_policy_tests_run_on_the_wasm_engine(opa: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _private_cache(monkeypatch, tmp_path, opa)
    modules = modules_of(collect_policies([SELFTEST], include_tests=True))
    results = {r.name: r.status for r in WasmEngine().run_tests(modules, {})}
    # a built-in compiled into the module treats an error as undefined: the erring test fails instead
    assert results == {"test_double": "pass", "test_double_wrong": "fail", "test_big_value_denied": "pass",
                       "test_division_by_zero": "fail", "todo_test_later": "skip"}
