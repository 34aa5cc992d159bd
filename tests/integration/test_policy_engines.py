"""Differential test of every policy engine against a real OPA server, and `opa test policies/`.

OPA is the reference. The whole input corpus (policies/testdata: the examples and one variant per
rule) goes through every engine: the embedded engine (regopy), the wasm engine (the shipped module,
in-process), the OPA binary run one-shot, the OPA binary as a private server hcops starts and stops
(opa-managed, with the input in the request and staged in parts) and the OPA server engine; all must report
the same findings. Without the OPA binary or wasmtime the tests fail under CI=true and skip elsewhere
(`scripts/bootstrap opa python` installs them).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import InvalidInput, Location
from hcops.policy import EmbeddedEngine, OpaServerEngine, builtin_policy_dir, collect_policies, run_gate
from hcops.policy.engines import Engine, OpaLocalEngine, OpaManagedEngine
from hcops.policy.engines.base import EngineResult
from hcops.policy.findings import build_findings
from hcops.policy.gate import load_policy_set
from hcops.policy.metadata import rules_by_id
from hcops.policy.sources import modules_of
from tests.integration.requirements import binary, unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
TESTDATA = POLICIES / "testdata"
FIXTURE_PACK = ROOT / "tests" / "policy" / "fixtures" / "pack"


@pytest.fixture(scope="module")
def opa_binary() -> Path:
    """`$HCOPS_CACHE/bin/opa` (HCOPS_CACHE defaults to ~/.cache/hcops), else `opa` on PATH."""
    return binary("opa", "opa")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def opa_url(opa_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh OPA server on a free loopback port, stopped at the end of the module."""
    port = _free_port()
    log = tmp_path_factory.mktemp("opa") / "opa.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(opa_binary), "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"opa exited with {proc.returncode}: {log.read_text()[-2000:]}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"opa did not answer /health within 30s: {log.read_text()[-2000:]}",
                            pytrace=False)
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def corpus() -> list[tuple[str, Path]]:
    """(name, input document) for the examples and every rule's violation variant.

    Layout: testdata/<name>/input.json and testdata/violations/<RULE-ID>/input.json (one directory
    per document, so that `opa test policies/` can load them); flat <name>.json files are read too.
    """
    docs: list[tuple[str, Path]] = []
    for base in (TESTDATA, TESTDATA / "violations"):
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            if entry.name == "violations":
                continue
            if entry.is_dir() and (entry / "input.json").is_file():
                docs.append((entry.name, entry / "input.json"))
            elif entry.suffix == ".json":
                docs.append((entry.stem, entry))
    return docs


CORPUS = corpus()


def _no_location(_: str) -> Location | None:
    return None


@pytest.fixture(scope="module")
def builtin() -> tuple[dict[str, str], dict[str, Any]]:
    files, metas = load_policy_set(builtin_dir=builtin_policy_dir())
    return modules_of(files), rules_by_id(metas)


@pytest.fixture(scope="module")
def opa_engine(opa_url: str) -> Iterator[OpaServerEngine]:
    engine = OpaServerEngine(opa_url)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def wasm_engine() -> Iterator[Engine]:
    """The wasm engine, which must evaluate the shipped module (not compile one)."""
    try:
        from hcops.policy.engines.wasm_engine import WasmEngine
    except ImportError as exc:  # wasmtime missing
        unavailable(f"the wasm engine needs wasmtime ({exc}); run `scripts/bootstrap python`")
        raise
    engine = WasmEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def local_engine(opa_binary: Path) -> Iterator[OpaLocalEngine]:
    engine = OpaLocalEngine(binary=opa_binary)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def managed_engine(opa_binary: Path) -> Iterator[OpaManagedEngine]:
    engine = OpaManagedEngine(binary=opa_binary)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def engines(wasm_engine: Engine, local_engine: OpaLocalEngine, managed_engine: OpaManagedEngine) -> dict[str, Engine]:
    """Every engine but the reference (the OPA server)."""
    return {"embedded": EmbeddedEngine(), "wasm": wasm_engine, "opa": local_engine, "opa-managed": managed_engine}


def _ids(result: EngineResult, level: str) -> set[str]:
    return {v["id"] for pkg, lv, v in result.raw() if lv == level and isinstance(v, dict)}


def _staged(engine: OpaManagedEngine, modules: dict[str, str], doc: dict[str, Any]) -> EngineResult:
    """The managed server's way for a document sent in parts while it is built (as hcops.policy.input
    sends them): the head, the nodes, each manifest."""
    engine.prepare(modules, {})
    sink = engine.input_sink()
    assert sink is not None
    sink.part((), {**{k: v for k, v in doc.items() if k not in ("nodes", "manifests")}, "manifests": {}})
    if "nodes" in doc:
        sink.part(("nodes",), doc["nodes"])
    for key, value in doc.get("manifests", {}).items():
        sink.part(("manifests", key), value)
    sink.done(doc)
    return engine.evaluate(modules, doc, {})


def test_corpus_is_present() -> None:
    names = {name for name, _ in CORPUS}
    assert "example" in names, "policies/testdata/example is missing; run policies/testdata/generate.py"
    assert any(name.startswith("HC-") for name in names)


@pytest.mark.parametrize(("name", "path"), CORPUS, ids=[name for name, _ in CORPUS])
def test_engines_agree_on_the_corpus(
    name: str, path: Path, builtin: tuple[dict[str, str], dict[str, Any]], opa_engine: OpaServerEngine,
    engines: dict[str, Engine]
) -> None:
    modules, rules = builtin
    doc = json.loads(path.read_text())
    reference = opa_engine.evaluate(modules, doc, {})
    expected = build_findings(reference, rules, _no_location)
    for engine_name, engine in engines.items():
        result = engine.evaluate(modules, doc, {})
        assert result.engine == engine_name
        assert result.comparable() == reference.comparable(), engine_name
        assert build_findings(result, rules, _no_location) == expected, engine_name
    managed = engines["opa-managed"]
    assert isinstance(managed, OpaManagedEngine)
    staged = _staged(managed, modules, doc)
    assert managed.last_mode == "staged"
    assert staged.comparable() == reference.comparable(), "opa-managed, staged"
    assert build_findings(staged, rules, _no_location) == expected, "opa-managed, staged"
    assert getattr(engines["wasm"], "last_source", "") == "shipped", (
        "the shipped wasm module is stale (python -m hcops.policy.engines.wasm_pack)")
    if name.startswith("HC-"):  # violations/<RULE-ID>: the variant triggers its rule
        assert name in _ids(reference, "deny") | _ids(reference, "warn")
    elif name == "example":  # the compliant example passes the gate
        assert _ids(reference, "deny") == set()


def test_gate_reports_agree(opa_engine: OpaServerEngine, engines: dict[str, Engine]) -> None:
    names = dict(CORPUS)
    assert "example" in names, "policies/testdata/example/input.json is missing (policies/testdata/generate.py)"
    doc = json.loads(names["example"].read_text())
    reports = [
        run_gate(doc, policy_dirs=[], builtin_dir=builtin_policy_dir(), data_files=[], waivers=None,
                 engine=engine, locate=_no_location, environment=doc.get("environment"))
        for engine in (opa_engine, *engines.values())
    ]
    assert [r.engine for r in reports] == ["opa-server", "embedded", "wasm", "opa", "opa-managed"]
    for report in reports:
        assert report.passed
        assert report.findings == reports[0].findings
        assert report.pack == reports[0].pack  # the seal holds for every engine


def test_opa_test_passes_on_the_pack(opa_binary: Path) -> None:
    proc = subprocess.run([str(opa_binary), "test", str(POLICIES)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_fixture_pack_tests_agree(opa_engine: OpaServerEngine, engines: dict[str, Engine],
                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opa_binary: Path) -> None:
    monkeypatch.setenv("HCOPS_CACHE", str(tmp_path))  # the wasm engine compiles the tests: a private cache
    monkeypatch.setenv("HCOPS_OPA_BIN", str(opa_binary))
    modules = modules_of(collect_policies(builtin_dir=FIXTURE_PACK, include_tests=True))
    reference = [(r.name, r.status) for r in opa_engine.run_tests(modules, {})]
    expected = [("test_public_rpc_denied", "pass"), ("test_internal_rpc_allowed", "pass")]
    assert reference == expected
    for name, engine in engines.items():
        assert [(r.name, r.status) for r in engine.run_tests(modules, {})] == expected, name


def test_the_runtime_pack_agrees_on_every_engine(opa_engine: OpaServerEngine, engines: dict[str, Engine]) -> None:
    from hcops.audit.evaluate import load_runtime_pack

    pack = load_runtime_pack(builtin_policy_dir() / "runtime")
    for facts in ({}, {"network": "n", "nodes": []}):
        reference = opa_engine.evaluate(pack.modules, facts, {}).comparable()
        for name, engine in engines.items():
            assert engine.evaluate(pack.modules, facts, {}).comparable() == reference, name


def test_opa_engine_reports_policy_errors_with_file_line(opa_engine: OpaServerEngine) -> None:
    with pytest.raises(InvalidInput) as err:
        broken = "package p\n\nimport rego.v1\n\ndeny contains f if {\n\tf := \n}\n"
        opa_engine.evaluate({"broken.rego": broken}, {}, {})
    loc = err.value.diagnostics[0].location
    assert loc is not None and loc.file == "broken.rego" and loc.line in (6, 7)


def test_opa_engine_fails_closed_on_builtin_errors(opa_engine: OpaServerEngine) -> None:
    modules = {"div.rego": "package p\n\nimport rego.v1\n\ndeny contains f if {\n\tf := 1 / input.zero\n}\n"}
    with pytest.raises(InvalidInput) as err:
        opa_engine.evaluate(modules, {"zero": 0}, {})
    assert "divide by zero" in err.value.diagnostics[0].message


def test_opa_engine_replaces_its_modules_and_data(opa_engine: OpaServerEngine) -> None:
    first = {"one.rego": "package hcops.t\n\nimport rego.v1\n\ndeny contains data.lim.v if input.x\n"}
    assert _ids_plain(opa_engine.evaluate(first, {"x": True}, {"lim": {"v": "a"}})) == ["a"]
    second = {"two.rego": "package hcops.t\n\nimport rego.v1\n\nwarn contains data.lim.v if input.x\n"}
    result = opa_engine.evaluate(second, {"x": True}, {"lim": {"v": "b"}})
    assert [p.deny for p in result.packages] == [()]  # one.rego was removed from the server
    assert [p.warn for p in result.packages] == [("b",)]


def _ids_plain(result: EngineResult) -> list[Any]:
    return [v for _, _, v in result.raw()]


def _policy_ids(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/v1/policies", timeout=5) as resp:
        return {p["id"] for p in json.load(resp)["result"]}


def test_opa_engine_uploads_a_pack_once_and_again_when_it_changed_behind_its_back(opa_url: str) -> None:
    pack = {"one.rego": "package hcops.t\n\nimport rego.v1\n\ndeny contains \"d\" if input.x\n"}
    first = OpaServerEngine(opa_url)
    assert _ids_plain(first.evaluate(pack, {"x": True}, {})) == ["d"]
    first.close()
    assert "hcops/one.rego" in _policy_ids(opa_url)
    # A second engine trusts the digest stored with the pack: the same pack is neither listed nor uploaded.
    # A module deleted behind its back leaves the answer undefined, and the pack is uploaded again.
    second = OpaServerEngine(opa_url)
    calls: list[str] = []
    sync = second._sync_policies

    def counting(modules: Any) -> dict[str, str]:
        calls.append("sync")
        return sync(modules)

    second._sync_policies = counting  # type: ignore[method-assign]
    assert _ids_plain(second.evaluate(pack, {"x": True}, {})) == ["d"]
    assert calls == []  # same pack: no policy upload, no policy listing
    req = urllib.request.Request(f"{opa_url}/v1/policies/hcops/__hcops_engine_entry__.rego", method="DELETE")
    urllib.request.urlopen(req, timeout=5).close()
    assert _ids_plain(second.evaluate(pack, {"x": True}, {})) == ["d"]
    assert calls == ["sync"]  # the missing entry module was uploaded again
    changed = {"one.rego": pack["one.rego"].replace('"d"', '"e"')}
    assert _ids_plain(second.evaluate(changed, {"x": True}, {})) == ["e"]
    assert calls == ["sync", "sync"]
    second.close()
