from __future__ import annotations

from typing import Any

import pytest

from hcops.errors import EnvironmentProblem, HcopsError, InvalidInput
from hcops.policy.engines import (
    AutoEngine,
    EmbeddedEngine,
    Engine,
    OpaLocalEngine,
    OpaManagedEngine,
    OpaServerEngine,
    WasmEngine,
    make_engine,
)
from hcops.policy.engines.auto import WASM_MAX_INPUT
from hcops.policy.engines.base import analyse, entry_module
from hcops.policy.engines.embedded import parse_sexpr_errors
from hcops.policy.engines.opa_server import policy_id
from hcops.policy.sources import collect_policies, modules_of

from .conftest import PACK, SELFTEST, UNSUPPORTED, USER


def pack_modules(*dirs: Any, tests: bool = False) -> dict[str, str]:
    return modules_of(collect_policies(list(dirs), builtin_dir=PACK, include_tests=tests))


def test_every_engine_satisfies_the_protocol() -> None:
    for engine in (EmbeddedEngine(), OpaServerEngine("http://127.0.0.1:8181"), OpaLocalEngine(), WasmEngine(),
                   OpaManagedEngine(), AutoEngine()):
        assert isinstance(engine, Engine)
    assert [e.name for e in (EmbeddedEngine(), OpaServerEngine("http://x:1"), OpaLocalEngine(), WasmEngine(),
                             OpaManagedEngine())] == ["embedded", "opa-server", "opa", "wasm", "opa-managed"]


def test_policy_packages_are_those_defining_deny_or_warn() -> None:
    analysis = analyse(pack_modules(USER, tests=True))
    assert analysis.packages == {
        "acme.consortium": (("acme", "consortium"), ("deny", "warn")),
        "hcops.fixture.access": (("hcops", "fixture", "access"), ("deny", "warn")),
    }
    entry = entry_module(analysis)
    assert '"hcops.fixture.access": {"deny": [x | x := data.hcops.fixture.access.deny]' in entry
    assert "lib" not in entry and "runtime" not in entry and "_test" not in entry


def test_embedded_evaluates_every_package_in_one_query(violating: dict[str, Any]) -> None:
    result = EmbeddedEngine().evaluate(pack_modules(USER), violating, {"acme": {"max_power": 50}})
    assert result.engine == "embedded"
    by_pkg = {p.package: p for p in result.packages}
    assert [f["id"] for f in by_pkg["hcops.fixture.access"].deny] == [
        "HC-FX-RPC-PUBLIC", "HC-FX-STORAGE-UNENCRYPTED", "HC-FX-STORAGE-UNENCRYPTED"]
    assert [f["id"] for f in by_pkg["hcops.fixture.access"].warn] == ["HC-FX-POWER-SHARE"]
    assert [f["resource"] for f in by_pkg["acme.consortium"].deny] == ["node/d-val-0"]


def test_embedded_compliant_input_has_no_findings(compliant: dict[str, Any]) -> None:
    result = EmbeddedEngine().evaluate(pack_modules(), compliant, {})
    assert result.raw() == []


def test_embedded_ignores_test_modules(compliant: dict[str, Any]) -> None:
    modules = pack_modules(tests=True)
    modules["zz_test.rego"] = "package zz_test\n\nimport rego.v1\n\ndeny contains 1\n"
    assert EmbeddedEngine().evaluate(modules, compliant, {}).raw() == []


def test_embedded_syntax_error_has_file_line() -> None:
    modules = {"bad.rego": "package p\n\n# é\ndeny contains f if {\n  input.x ==\n}\n"}
    with pytest.raises(InvalidInput) as err:
        EmbeddedEngine().evaluate(modules, {}, {})
    (diag,) = err.value.diagnostics
    assert diag.location is not None and (diag.location.file, diag.location.line) == ("bad.rego", 5)


def test_embedded_fails_closed_on_unsupported_builtin(violating: dict[str, Any]) -> None:
    modules = modules_of(collect_policies([UNSUPPORTED]))
    with pytest.raises(HcopsError) as err:
        EmbeddedEngine().evaluate(modules, violating, {})
    (diag,) = err.value.diagnostics  # type: ignore[attr-defined]
    assert "net.cidr_contains()" in diag.message
    assert str(diag.location).endswith("unsupported/cidr.rego:8:6")


@pytest.mark.parametrize("body", [
    "f := 1 / input.zero",                # builtin error (strict)
    'f := to_number("not a number")',     # builtin error (strict)
    "f := undefined_function(1)",         # unknown function
])
def test_embedded_fails_closed_on_evaluation_errors(body: str) -> None:
    modules = {"e.rego": f"package p\n\nimport rego.v1\n\ndeny contains f if {{\n\t{body}\n}}\n"}
    with pytest.raises(HcopsError):
        EmbeddedEngine().evaluate(modules, {"zero": 0}, {})


def test_deny_that_is_not_a_set_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="must be a set of findings"):
        EmbeddedEngine().evaluate({"c.rego": "package p\n\ndeny := true\n"}, {}, {})


def test_module_without_package_is_rejected() -> None:
    with pytest.raises(InvalidInput) as err:
        EmbeddedEngine().evaluate({"x.rego": "deny contains 1\n"}, {}, {})
    assert str(err.value.diagnostics[0].location) == "x.rego:1:1"


def test_embedded_test_runner_reports_each_test() -> None:
    modules = modules_of(collect_policies([SELFTEST], include_tests=True))
    results = {r.name: r for r in EmbeddedEngine().run_tests(modules, {})}
    assert {n: r.status for n, r in results.items()} == {
        "test_double": "pass",
        "test_double_wrong": "fail",
        "test_big_value_denied": "pass",
        "test_division_by_zero": "error",
        "todo_test_later": "skip",
    }
    assert results["test_double_wrong"].file.endswith("selftest/math_test.rego")
    assert results["test_double_wrong"].line == 11
    assert "divide by zero" in results["test_division_by_zero"].message


def test_fixture_pack_tests_pass_embedded() -> None:
    results = EmbeddedEngine().run_tests(pack_modules(tests=True), {})
    assert [(r.name, r.status) for r in results] == [
        ("test_public_rpc_denied", "pass"), ("test_internal_rpc_allowed", "pass")]


def test_opa_engine_unreachable_is_an_environment_problem(compliant: dict[str, Any]) -> None:
    engine = OpaServerEngine("http://127.0.0.1:9", timeout=2)
    with pytest.raises(EnvironmentProblem) as err:
        engine.evaluate(pack_modules(), compliant, {})
    assert "\n" not in err.value.message
    assert "not reachable" in err.value.message


@pytest.mark.parametrize("url", ["ftp://x", "localhost:8181", "http://host:8181/v1"])
def test_opa_engine_rejects_bad_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        OpaServerEngine(url)


def test_policy_ids_are_namespaced() -> None:
    assert policy_id("policies/access_control.rego") == "hcops/policies/access_control.rego"
    assert policy_id("/abs/dir with space/../x.rego") == "hcops/abs/dir_with_space/x.rego"


def test_make_engine_reads_the_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCOPS_OPA_URL", raising=False)
    assert isinstance(make_engine(), AutoEngine)
    assert isinstance(make_engine("http://127.0.0.1:8181"), OpaServerEngine)
    monkeypatch.setenv("HCOPS_OPA_URL", "http://127.0.0.1:8181")
    engine = make_engine()
    assert isinstance(engine, OpaServerEngine) and engine.url == "http://127.0.0.1:8181"


def test_make_engine_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCOPS_OPA_URL", raising=False)
    assert isinstance(make_engine(engine="wasm"), WasmEngine)
    assert isinstance(make_engine(engine="opa"), OpaLocalEngine)
    assert isinstance(make_engine(engine="opa-managed"), OpaManagedEngine)
    assert isinstance(make_engine(engine="embedded"), EmbeddedEngine)
    with pytest.raises(InvalidInput, match="unknown engine"):
        make_engine(engine="fast")
    with pytest.raises(InvalidInput, match="exclude each other"):
        make_engine("http://127.0.0.1:8181", engine="embedded")


def test_auto_picks_wasm_for_the_shipped_pack_else_opa_else_embedded(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Any) -> None:
    from hcops.policy.engines import opa_binary

    builtin = modules_of(collect_policies(builtin_dir=PACK.parents[3] / "policies"))
    user = pack_modules()
    auto = AutoEngine()
    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path))  # no module compiled earlier
    monkeypatch.setattr(opa_binary, "find_opa", lambda _settings=None: tmp_path / "opa")
    assert auto.choose(builtin) == "wasm"
    assert auto.choose(builtin, WASM_MAX_INPUT + 1) == "opa"  # large inputs: the OPA binary scales better
    assert auto.choose(user) == "opa"
    assert auto.choose(None) == "opa"  # policy tests
    monkeypatch.setattr(opa_binary, "find_opa", lambda _settings=None: None)
    assert auto.choose(builtin, WASM_MAX_INPUT + 1) == "wasm"
    assert auto.choose(user) == "embedded"
    assert auto.choose(None) == "embedded"


def test_auto_names_the_engine_that_evaluated(compliant: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Any) -> None:
    from hcops.policy.engines import opa_binary

    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path))
    monkeypatch.setattr(opa_binary, "find_opa", lambda _settings=None: None)
    auto = AutoEngine()
    assert auto.evaluate(pack_modules(), compliant, {}).raw() == []
    assert auto.name == "embedded"
    auto.close()


def test_parse_sexpr_errors() -> None:
    text = "(rego-errorseq\n  (error 8:bad.rego|11|45\n    (errormsg 12:Syntax error)\n    (errorast))\n" \
           "  (error\n    (errormsg 23:Function not found: foo)))"
    assert parse_sexpr_errors(text) == [("bad.rego", 11, "Syntax error"),
                                        (None, None, "Function not found: foo")]
