"""The managed OPA engine (the OPA binary, run one-shot by hcops): same answers as the embedded engine,
strict built-in errors, file:line diagnostics, limits, and nothing left behind (process, temp files).

Needs the OPA binary: fails under CI=true without it, skips elsewhere.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.policy.engines import EmbeddedEngine, OpaLocalEngine
from hcops.policy.engines.limits import EngineLimitExceeded, EngineLimits
from hcops.policy.sources import collect_policies, modules_of
from tests.integration.requirements import binary

from .conftest import PACK, SELFTEST, USER


@pytest.fixture(autouse=True)
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The engine's temporary directories go below the test's own, to be checked for leftovers."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    # Session fixtures of other suites (a control plane, an OPA server) are children too: only new ones count.
    _BEFORE[:] = children()
    return folder


_BEFORE: list[int] = []


@pytest.fixture(scope="module")
def opa() -> Path:
    return binary("opa", "opa")


def children() -> list[int]:
    """Live child processes of this process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            out.append(int(entry))
    return out


def nothing_left(tmp: Path) -> None:
    assert [pid for pid in children() if pid not in _BEFORE] == []
    assert list(tmp.iterdir()) == []


def test_evaluates_like_the_embedded_engine(opa: Path, violating: dict[str, Any], private_tmp: Path) -> None:
    modules = modules_of(collect_policies([USER], builtin_dir=PACK))
    data = {"acme": {"max_power": 50}}
    result = OpaLocalEngine(binary=opa).evaluate(modules, violating, data)
    assert result.engine == "opa"
    assert result.comparable() == EmbeddedEngine().evaluate(modules, violating, data).comparable()
    nothing_left(private_tmp)


def test_syntax_error_has_file_line(opa: Path, private_tmp: Path) -> None:
    modules = {"bad.rego": "package p\n\nimport rego.v1\n\ndeny contains f if {\n\tf := \n}\n"}
    with pytest.raises(InvalidInput) as err:
        OpaLocalEngine(binary=opa).evaluate(modules, {}, {})
    loc = err.value.diagnostics[0].location
    assert loc is not None and loc.file == "bad.rego" and loc.line in (6, 7)
    nothing_left(private_tmp)


def test_builtin_errors_are_strict(opa: Path, private_tmp: Path) -> None:
    modules = {"div.rego": "package p\n\nimport rego.v1\n\ndeny contains f if {\n\tf := 1 / input.zero\n}\n"}
    with pytest.raises(InvalidInput) as err:
        OpaLocalEngine(binary=opa).evaluate(modules, {"zero": 0}, {})
    assert "divide by zero" in err.value.diagnostics[0].message
    assert str(err.value.diagnostics[0].location).startswith("div.rego:6")
    nothing_left(private_tmp)


def test_builtins_regopy_lacks_are_evaluated(opa: Path, private_tmp: Path) -> None:
    modules = {"net.rego": 'package p\n\nimport rego.v1\n\ndeny contains "inside" if '
                           'net.cidr_contains("10.0.0.0/8", input.ip)\n'}
    result = OpaLocalEngine(binary=opa).evaluate(modules, {"ip": "10.1.2.3"}, {})
    assert [v for _, _, v in result.raw()] == ["inside"]


def test_a_missing_binary_is_an_environment_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HCOPS_OPA_BIN", str(tmp_path / "no-opa"))
    with pytest.raises(EnvironmentProblem, match="OPA binary"):
        OpaLocalEngine().evaluate(modules_of(collect_policies(builtin_dir=PACK)), {}, {})


SLOW = {"slow.rego": "package p\n\nimport rego.v1\n\ndeny contains i if {\n\tsome i in numbers.range(1, 1e9)\n"
                     "\ti < 0\n}\n"}


def test_the_time_limit_kills_the_process(opa: Path, private_tmp: Path) -> None:
    start = time.monotonic()
    with pytest.raises(EngineLimitExceeded, match="time limit"):
        OpaLocalEngine(EngineLimits(timeout_s=1.0), binary=opa).evaluate(SLOW, {}, {})
    assert time.monotonic() - start < 30
    nothing_left(private_tmp)


def test_cancel_and_close_kill_the_process(opa: Path, private_tmp: Path) -> None:
    engine = OpaLocalEngine(binary=opa)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.evaluate(SLOW, {}, {})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while not children() and time.monotonic() < deadline:
        time.sleep(0.02)
    engine.cancel()
    worker.join(30)
    engine.close()
    assert not worker.is_alive()
    assert errors and isinstance(errors[0], InvalidInput)
    nothing_left(private_tmp)


def test_policy_tests_report_errors_as_errors(opa: Path, private_tmp: Path) -> None:
    modules = modules_of(collect_policies([SELFTEST], include_tests=True))
    results = {r.name: r for r in OpaLocalEngine(binary=opa).run_tests(modules, {})}
    assert {n: r.status for n, r in results.items()} == {
        "test_double": "pass", "test_double_wrong": "fail", "test_big_value_denied": "pass",
        "test_division_by_zero": "error", "todo_test_later": "skip"}
    assert results["test_double_wrong"].file.endswith("selftest/math_test.rego")
    assert results["test_double_wrong"].line == 11
    assert "divide by zero" in results["test_division_by_zero"].message
    nothing_left(private_tmp)
