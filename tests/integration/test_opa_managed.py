"""The managed OPA server (hcops.policy.engines.opa_managed) with the real OPA binary: private, answers only
for its own pack, fails closed, and never outlives its engine or hcops. (Its findings on the whole corpus:
tests/integration/test_policy_engines.py.)"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.policy.engines import AutoEngine, OpaManagedEngine
from tests.integration.requirements import binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICY = {"p.rego": 'package acme\n\ndeny contains "no name" if not input.name\n'}


@pytest.fixture(scope="module")
def opa_binary() -> Path:
    return binary("opa", "opa")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    """The OPA server processes among ``pid``'s children (the lifeline shell also runs a watcher)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            pids = [int(x) for x in fh.read().split()]
    except FileNotFoundError:
        return []
    servers = []
    for child in pids:
        try:
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if args[:2] != [b"/bin/sh", b"-c"] and b"--server" in args:  # the watcher is a copy of the shell
                servers.append(child)
        except OSError:
            pass
    return servers


def test_the_server_is_private_and_stops_with_the_engine(opa_binary: Path) -> None:
    engine = OpaManagedEngine(binary=opa_binary)
    try:
        result = engine.evaluate(POLICY, {}, {})
        assert result.engine == "opa-managed"
        assert [p.deny for p in result.packages] == [("no name",)]
        assert engine.evaluate(POLICY, {"name": "x"}, {}).packages[0].deny == ()
        server = engine._server
        assert server is not None
        assert stat.S_IMODE(server.folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(os.stat(server.socket).st_mode) & 0o077 == 0
        shell, folder = server.proc.pid, server.folder
        (opa,) = _children(shell)
    finally:
        engine.close()
    assert not _alive(shell) and not _alive(opa)
    assert not folder.exists()


def test_an_answer_for_another_pack_is_refused(opa_binary: Path) -> None:
    """A socket that leads to a server with another pack (here: another engine's) is not trusted."""
    engine, other = OpaManagedEngine(binary=opa_binary), OpaManagedEngine(binary=opa_binary)
    try:
        other.evaluate({"q.rego": 'package acme\n\ndeny contains "other" if true\n'}, {}, {})
        engine.evaluate(POLICY, {}, {})
        assert engine._server is not None and other._server is not None
        engine._server.socket = other._server.socket
        with pytest.raises(InvalidInput, match="did not answer for the pack"):
            engine.evaluate(POLICY, {}, {})
    finally:
        engine.close()
        other.close()


def test_a_pack_that_does_not_compile_is_reported_with_its_location(opa_binary: Path) -> None:
    engine = OpaManagedEngine(binary=opa_binary)
    try:
        with pytest.raises(InvalidInput) as err:
            engine.evaluate({"bad.rego": "package acme\n\ndeny contains x if { x := undefined_fn(1) }\n"}, {}, {})
        assert any(d.location is not None and d.location.file == "bad.rego" for d in err.value.diagnostics)
    finally:
        engine.close()
    assert engine._server is None


def test_builtin_errors_fail_closed(opa_binary: Path) -> None:
    engine = OpaManagedEngine(binary=opa_binary)
    try:
        with pytest.raises(InvalidInput):
            engine.evaluate({"p.rego": 'package acme\n\ndeny contains x if { x := to_number(input.n) }\n'},
                            {"n": "not a number"}, {})
    finally:
        engine.close()


def test_data_is_part_of_the_pack(opa_binary: Path) -> None:
    policy = {"p.rego": "package acme\n\ndeny contains x if { x := data.limits.max }\n"}
    engine = OpaManagedEngine(binary=opa_binary)
    try:
        assert engine.evaluate(policy, {}, {"limits": {"max": 1}}).packages[0].deny == (1,)
        first = engine._server
        assert engine.evaluate(policy, {}, {"limits": {"max": 2}}).packages[0].deny == (2,)
        assert engine._server is not first  # other data: another server, the first one stopped
        assert first is not None and not first.folder.exists()
    finally:
        engine.close()


def test_auto_starts_it_ahead_for_a_large_network_only(opa_binary: Path) -> None:
    settings_env = {**os.environ, "HCOPS_OPA_BIN": str(opa_binary)}
    from hcops.settings import Settings

    settings = Settings.from_env(settings_env)
    auto = AutoEngine(settings=settings)
    try:
        auto.prepare(POLICY, {}, 10)
        assert "opa-managed" not in auto._engines
        auto.prepare(POLICY, {}, 1000)
        assert "opa-managed" in auto._engines
        doc = {"pad": "x" * 1_100_000}  # above WASM_MAX_INPUT: the OPA binary, here the server started ahead
        assert auto.evaluate(POLICY, doc, {}).engine == "opa-managed"
        assert auto.name == "opa-managed"
    finally:
        auto.close()


def test_a_staged_document_is_evaluated_in_groups_and_a_lost_part_goes_in_the_request(opa_binary: Path) -> None:
    policy = {**POLICY, "q.rego": 'package beta\n\nwarn contains n.name if { some n in input.nodes; n.bad }\n'}
    engine = OpaManagedEngine(binary=opa_binary)
    try:
        engine.prepare(policy, {})
        sink = engine.input_sink()
        assert sink is not None
        doc = {"nodes": [{"name": "n1", "bad": True}, {"name": "n2"}]}
        sink.part((), {})
        sink.part(("nodes",), doc["nodes"])
        sink.done(doc)
        staged = engine.evaluate(policy, doc, {})
        assert engine.last_mode == "staged"
        assert staged.comparable() == {"acme": {"deny": ['"no name"'], "warn": []},
                                       "beta": {"deny": [], "warn": ['"n1"']}}
        assert engine.evaluate(policy, {"name": "x", "nodes": []}, {}).comparable()["acme"]["deny"] == []
        assert engine.last_mode == "request"  # not the staged document: sent in the request

        sink.part((), {"nodes": 1})
        sink.part(("nodes", "deeper"), "x")  # OPA refuses a path under a number: the part does not arrive
        lost: dict[str, object] = {"nodes": []}
        sink.done(lost)
        assert engine.evaluate(policy, lost, {}).comparable()["acme"]["deny"] == ['"no name"']
        assert engine.last_mode == "request"
    finally:
        engine.close()


def _large_spec(folder: Path) -> Path:
    """30 organizations of 10 nodes: above the size at which the default engine starts the server ahead."""
    orgs = []
    for o in range(30):
        nodes = "\n".join(f"      - {{name: n-{o}-{i}, role: {'validator, power: 10' if i == 0 else 'observer'}}}"
                          for i in range(10))
        orgs.append(f"  - name: org-{o}\n    role: provider\n    baa: {{signed: true, signedOn: 2026-01-15}}\n"
                    f"    nodes:\n{nodes}")
    spec = folder / "network.yaml"
    spec.write_text("apiVersion: hcops/v1alpha1\nkind: Consortium\nmetadata: {name: big}\nspec:\n"
                    '  chain: {version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: big-1}\n'
                    "  organizations:\n" + "\n".join(orgs) + "\n  provider: {type: docker}\n")
    return spec


def test_the_default_check_of_a_large_network_stages_its_input(opa_binary: Path, tmp_path: Path) -> None:
    """The gate with the default engine on 300 nodes, as `hcops check` runs it (prepare, plan, evaluate):
    the input goes to the server while it is built, and the findings are those of `opa eval` on the whole
    document."""
    from hcops.plan.desired import KeyMode, build_plan
    from hcops.settings import Settings
    from hcops.spec.loader import load_spec
    from hcops.usecases.check import CheckOptions, evaluate, prepare

    spec = _large_spec(tmp_path)
    settings = Settings.from_env({**os.environ, "HCOPS_OPA_BIN": str(opa_binary)})
    options = CheckOptions(state_dir=tmp_path / "state", record=False, settings=settings)
    loaded = load_spec(spec)
    auto = AutoEngine(settings=settings)
    try:
        prepare(auto, options, loaded, settings)
        plan = build_plan(loaded, options.state_dir, keys=KeyMode.existing, settings=settings)
        default = evaluate(plan, options, auto)
        assert default.engine == "opa-managed" and auto.last_mode == "staged"
    finally:
        auto.close()
    oneshot = evaluate(plan, CheckOptions(state_dir=tmp_path / "state", record=False, settings=settings,
                                          engine="opa"))
    assert oneshot.engine == "opa"
    assert default.findings == oneshot.findings and default.findings


def test_check_returns_with_the_run_recorded_and_the_server_gone(opa_binary: Path, tmp_path: Path) -> None:
    """`hcops check` stops the server while it records the run; both are over when it returns."""
    from hcops.settings import Settings
    from hcops.usecases.check import CheckOptions, check

    spec = _large_spec(tmp_path)
    settings = Settings.from_env({**os.environ, "HCOPS_OPA_BIN": str(opa_binary)})
    folders = set(Path(tempfile.gettempdir()).glob("hcops-opa-*"))
    outcome = check(spec, CheckOptions(state_dir=tmp_path / "state", settings=settings))
    assert outcome.report.engine == "opa-managed" and outcome.report.findings
    assert outcome.recording.error is None and outcome.recording.path is not None
    assert outcome.recording.path.exists()
    assert set(Path(tempfile.gettempdir()).glob("hcops-opa-*")) == folders  # the server's folder is removed


def test_the_server_dies_with_hcops(opa_binary: Path, tmp_path: Path) -> None:
    """A SIGKILLed hcops leaves no server behind: the shell holding the pipe stops it."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from hcops.policy.engines import OpaManagedEngine\n"
        f"e = OpaManagedEngine(binary=Path({str(opa_binary)!r}))\n"
        f"e.evaluate({POLICY!r}, {{}}, {{}})\n"
        "print(json.dumps([e._server.proc.pid, str(e._server.folder)]), flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        shell, folder = json.loads(proc.stdout.readline())
        (opa,) = _children(shell)
        assert _alive(opa)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while _alive(opa) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(opa)
    while Path(folder).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(folder).exists()
